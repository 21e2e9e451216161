//! Prediction intervals from parameter uncertainty.
//!
//! At the maximum-likelihood estimate `θ̂` of the log-parameters, the inverse Hessian of −LL is
//! their asymptotic covariance `Σ` ([`super::FitReport::covariance`]). Draw `θ_s ~ N(θ̂, Σ)`,
//! `s = 1..S`, score every customer under each draw, and take the 5th and 95th percentiles of
//! each customer's values. The purchase and spend models are drawn independently (they are
//! fitted separately). This is **parameter** uncertainty only: it says how well the data pin
//! the model down, not how many purchases one customer will actually make (that randomness is
//! not in the interval).
//!
//! Cost. Expected purchases and the CLV discount factor depend on `(x, T)` only, so they are
//! computed once per distinct pair and draw (the twelve month ends of the discount factor in
//! one batch of series that share their coefficients, the horizon's expectation from the same
//! batch when it is a month end, and for BG/NBD-type draws with `|a − 1| ≥ 1/64` the brackets
//! from tables of `(α_s + v)^{a_s − 1}` over the distinct `T` and `T` + month end, see
//! `tables`); P(alive) once per distinct
//! `(x, t_x, T)` and draw, from a table of `ln(α + t_x)` per draw for BG/NBD and MBG/NBD
//! (customers are processed sorted by that key, in chunks of pairs, so memory stays
//! `chunk × S`); the spend once per customer, as a line in its mean spend `m` whose two
//! coefficients per draw are computed once per pair. The percentiles need only the 11
//! smallest and largest of 200 values, found in one vectorized screen with the previous
//! customer's extreme draws as the bound (`BandSelector`). The bands are written in that
//! sorted order and read back once per customer into input order.
//!
//! Draws come from a fixed-seed generator, so reruns are bit-identical.

use rayon::prelude::*;

use crate::order::{from_total_key, total_key};

use super::clv::{
    discount_factor_and_expected, discount_factor_from, distinct_pairs, horizon_month, month_end,
    monthly_discounts, ClvOptions,
};
use super::distinct::shared_index;
use super::optimize::cholesky;
use super::purchase::{AliveTerms, PurchaseScore};
use super::special::exp_fast;
use super::{GammaGammaParams, ModelKind, PurchaseModel};
use tables::{LnAlphaTable, PowerTable};

/// SplitMix64 with Box–Muller normals: small, fast, and the same stream on every platform.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// `draws` vectors `θ̂ + L z`, `L` the lower Cholesky factor of `cov` (row-major `n×n`),
/// `z` standard normal. `None` if `cov` is not positive definite.
pub fn draw_log_params(
    theta_hat: &[f64],
    cov: &[f64],
    draws: usize,
    seed: u64,
) -> Option<Vec<Vec<f64>>> {
    let n = theta_hat.len();
    let l = cholesky(cov, n)?;
    let mut rng = Rng(seed);
    Some(
        (0..draws)
            .map(|_| {
                let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                (0..n)
                    .map(|i| theta_hat[i] + (0..=i).map(|k| l[i * n + k] * z[k]).sum::<f64>())
                    .collect()
            })
            .collect(),
    )
}

/// Linearly interpolated quantile of sorted values (numpy's default method).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl PurchaseModel {
    /// The fitted log-parameters, in the order of [`super::FitReport::covariance`].
    pub fn log_params(&self) -> Vec<f64> {
        match *self {
            PurchaseModel::BgNbd(p) => vec![p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()],
            PurchaseModel::MbgNbd(p) => vec![p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()],
            PurchaseModel::ParetoNbd(p) => vec![p.r.ln(), p.alpha.ln(), p.s.ln(), p.beta.ln()],
        }
    }

    /// The model of `kind` with parameters `exp(θ)`.
    pub fn from_log_params(kind: ModelKind, th: &[f64]) -> PurchaseModel {
        let e: Vec<f64> = th.iter().map(|v| v.exp()).collect();
        match kind {
            ModelKind::BgNbd => PurchaseModel::BgNbd(super::BgNbdParams {
                r: e[0],
                alpha: e[1],
                a: e[2],
                b: e[3],
            }),
            ModelKind::MbgNbd => PurchaseModel::MbgNbd(super::MbgNbdParams {
                r: e[0],
                alpha: e[1],
                a: e[2],
                b: e[3],
            }),
            ModelKind::ParetoNbd => PurchaseModel::ParetoNbd(super::ParetoNbdParams {
                r: e[0],
                alpha: e[1],
                s: e[2],
                beta: e[3],
            }),
        }
    }
}

impl GammaGammaParams {
    /// `(ln p, ln q, ln v)`.
    pub fn log_params(&self) -> Vec<f64> {
        vec![self.p.ln(), self.q.ln(), self.v.ln()]
    }
    /// The parameters `exp(θ)`.
    pub fn from_log_params(th: &[f64]) -> GammaGammaParams {
        GammaGammaParams {
            p: th[0].exp(),
            q: th[1].exp(),
            v: th[2].exp(),
        }
    }
}

/// 5th and 95th percentiles per customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Band {
    /// 5th percentile of each customer's values, in input order.
    pub p05: Vec<f64>,
    /// 95th percentile of each customer's values, in input order.
    pub p95: Vec<f64>,
}

/// The interval columns of every customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intervals {
    /// Band of the probability that the customer is alive at `T`.
    pub prob_alive: Band,
    /// Band of the expected purchases in the next `horizon` time units.
    pub expected_purchases: Band,
    /// With a spend model only.
    pub clv: Option<Band>,
}

/// The 5th and 95th percentiles of value vectors (as [`quantile`] of the sorted values), one
/// vector after another, without sorting.
///
/// The two quantiles need only the few smallest and largest values (11 of each for 200
/// draws). Consecutive customers are scored under the same draws, so the draws that gave one
/// customer's extremes usually give the next one's: the largest of the next customer's values
/// at the previous smallest draws bounds its own smallest values from above. One screen of
/// float comparisons (two lanes at a time, into bit masks) finds the values under that bound,
/// and only those are ordered (exact whatever the order, just slower when it changes). Falls
/// back to selection when a tail needs more than [`MAX_KEPT`] values.
#[derive(Debug, Default)]
struct BandSelector {
    /// The draws of the previous vector's smallest and largest values.
    low_draws: Vec<u32>,
    high_draws: Vec<u32>,
    /// Candidates of this vector: (total-order key, draw).
    low: Vec<(i64, u32)>,
    high: Vec<(i64, u32)>,
    scratch: Vec<f64>,
    /// The extreme draws of the last vector seen in each slot ([`Self::p05_p95_in`]).
    slots: Vec<(Vec<u32>, Vec<u32>)>,
}

impl BandSelector {
    fn p05_p95(&mut self, values: &[f64]) -> (f64, f64) {
        self.p05_p95_in(values, None)
    }

    /// [`Self::p05_p95`], where the caller also names a slot of vectors likely to share their
    /// draws' order (for CLV: customers of a similar mean spend, whose order the spend sets):
    /// the last extreme draws of that slot bound the tails too, with the previous vector's.
    fn p05_p95_in(&mut self, values: &[f64], slot: Option<usize>) -> (f64, f64) {
        let n = values.len();
        if n == 0 {
            return (f64::NAN, f64::NAN);
        }
        let pos_lo = 0.05 * (n - 1) as f64;
        let pos_hi = 0.95 * (n - 1) as f64;
        // Sorted positions needed: floor and ceil of each position.
        let keep_lo = pos_lo.ceil() as usize + 1; // the keep_lo smallest
        let keep_hi = n - pos_hi.floor() as usize; // the keep_hi largest
        if keep_lo > MAX_KEPT || keep_hi > MAX_KEPT {
            self.scratch.clear();
            self.scratch.extend_from_slice(values);
            return (
                select_quantile(&mut self.scratch, 0.05),
                select_quantile(&mut self.scratch, 0.95),
            );
        }
        // The previous vector's extreme draws bound this one's tails: at least keep_lo values
        // are at most the largest of its values at the previous smallest draws. Its largest
        // draws are as many, so they bound the low tail too, which is tighter when the draws'
        // order turned over (on the 10 M scale summary 3 % of the tails kept all 200 values
        // as candidates before this, 0.01 % after); likewise for the high tail. The tighter of
        // the two bounds is taken.
        let key_at = |s: &u32| total_key(values[*s as usize]);
        let (lo_ok, hi_ok) = (
            self.low_draws.len() == keep_lo,
            self.high_draws.len() == keep_hi,
        );
        let max_of = |d: &[u32]| d.iter().map(key_at).max();
        let min_of = |d: &[u32]| d.iter().map(key_at).min();
        let (slot_lo, slot_hi): (&[u32], &[u32]) = match slot.and_then(|k| self.slots.get(k)) {
            Some((l, h)) => (l, h),
            None => (&[], &[]),
        };
        let bound_lo = [
            lo_ok.then(|| max_of(&self.low_draws)).flatten(),
            (hi_ok && keep_hi >= keep_lo)
                .then(|| max_of(&self.high_draws))
                .flatten(),
            (slot_lo.len() == keep_lo)
                .then(|| max_of(slot_lo))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .min();
        let bound_hi = [
            hi_ok.then(|| min_of(&self.high_draws)).flatten(),
            (lo_ok && keep_lo >= keep_hi)
                .then(|| min_of(&self.low_draws))
                .flatten(),
            (slot_hi.len() == keep_hi)
                .then(|| min_of(slot_hi))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .max();
        let (bound_lo, bound_hi) = (bound_lo.unwrap_or(i64::MAX), bound_hi.unwrap_or(i64::MIN));
        // Values are screened with float comparisons (vectorized), which keep a superset of
        // the values under the bounds in the total order (they differ only on −0.0 = 0.0, and
        // on NaN, which passes both screens).
        let (flo, fhi) = (from_total_key(bound_lo), from_total_key(bound_hi));
        let (flo, fhi) = (
            if bound_lo == i64::MAX {
                f64::INFINITY
            } else {
                flo
            },
            if bound_hi == i64::MIN {
                f64::NEG_INFINITY
            } else {
                fhi
            },
        );
        // Bit masks of the values that pass each screen, 64 values a word, built without
        // branches; then only the set bits are visited.
        self.low.clear();
        self.high.clear();
        for (b, block) in values.chunks(64).enumerate() {
            let (lo_bits, hi_bits) = screen(block, flo, fhi);
            let base = b * 64;
            push_set(lo_bits, base, values, |k| k <= bound_lo, &mut self.low);
            push_set(hi_bits, base, values, |k| k >= bound_hi, &mut self.high);
        }
        let (low, high) = (&mut self.low[..], &mut self.high[..]);
        // The keep_lo smallest (ties by draw), in any order, and the two largest of them: the
        // sorted positions keep_lo − 1 and keep_lo − 2. Likewise the keep_hi largest and the
        // two smallest of them: sorted positions n − keep_hi and n − keep_hi + 1.
        let low = keep_smallest(low, keep_lo, |a, b| a.cmp(b));
        let high = keep_smallest(high, keep_hi, |a, b| b.cmp(a));
        self.low_draws.clear();
        self.low_draws.extend(low.iter().map(|c| c.1));
        self.high_draws.clear();
        self.high_draws.extend(high.iter().map(|c| c.1));
        if let Some(k) = slot {
            if self.slots.len() <= k {
                self.slots.resize_with(k + 1, Default::default);
            }
            let (l, h) = &mut self.slots[k];
            l.clone_from(&self.low_draws);
            h.clone_from(&self.high_draws);
        }
        let (lo_last, lo_before) = two_extremes(low, |a, b| a > b);
        let (hi_first, hi_after) = two_extremes(high, |a, b| a < b);
        let at = |p: usize| {
            from_total_key(match p {
                _ if p == keep_lo - 1 => lo_last,
                _ if p + 2 == keep_lo => lo_before,
                _ if p == n - keep_hi => hi_first,
                _ => hi_after,
            })
        };
        let interp = |pos: f64| {
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let (a, b) = (at(lo), at(hi));
            a + (b - a) * (pos - lo as f64)
        };
        (interp(pos_lo), interp(pos_hi))
    }
}

/// Bit masks of the values of `block` (at most 64) that are not above `flo` and not below
/// `fhi` (NaN passes both).
fn screen(block: &[f64], flo: f64, fhi: f64) -> (u64, u64) {
    debug_assert!(block.len() <= 64);
    let (mut lo, mut hi) = (0u64, 0u64);
    let pairs = block.chunks_exact(2);
    let rest = pairs.remainder();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpngt_pd, _mm_cmpnlt_pd, _mm_loadu_pd, _mm_movemask_pd, _mm_set1_pd,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always
        // available; each `p` holds two f64 (chunks_exact), read unaligned.
        unsafe {
            let (vlo, vhi) = (_mm_set1_pd(flo), _mm_set1_pd(fhi));
            for (j, p) in pairs.enumerate() {
                let v = _mm_loadu_pd(p.as_ptr());
                lo |= (_mm_movemask_pd(_mm_cmpngt_pd(v, vlo)) as u64) << (2 * j);
                hi |= (_mm_movemask_pd(_mm_cmpnlt_pd(v, vhi)) as u64) << (2 * j);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (j, p) in pairs.enumerate() {
        for (k, &v) in p.iter().enumerate() {
            lo |= u64::from(not_above(v, flo)) << (2 * j + k);
            hi |= u64::from(not_below(v, fhi)) << (2 * j + k);
        }
    }
    if let Some(&v) = rest.first() {
        let j = block.len() - 1;
        lo |= u64::from(not_above(v, flo)) << j;
        hi |= u64::from(not_below(v, fhi)) << j;
    }
    (lo, hi)
}

/// `v ≤ b` or unordered (NaN).
fn not_above(v: f64, b: f64) -> bool {
    v.partial_cmp(&b) != Some(std::cmp::Ordering::Greater)
}

/// `v ≥ b` or unordered (NaN).
fn not_below(v: f64, b: f64) -> bool {
    v.partial_cmp(&b) != Some(std::cmp::Ordering::Less)
}

/// Pushes `(total_key(values[base + j]), base + j)` for each set bit `j` of `bits` whose key
/// passes `keep`.
fn push_set(
    mut bits: u64,
    base: usize,
    values: &[f64],
    keep: impl Fn(i64) -> bool,
    out: &mut Vec<(i64, u32)>,
) {
    while bits != 0 {
        let s = base + bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let k = total_key(values[s]);
        if keep(k) {
            out.push((k, s as u32));
        }
    }
}

/// The `keep` first elements of `v` in the order `cmp` (ties by draw), in any order.
fn keep_smallest(
    v: &mut [(i64, u32)],
    keep: usize,
    cmp: impl Fn(&i64, &i64) -> std::cmp::Ordering,
) -> &[(i64, u32)] {
    let by = |a: &(i64, u32), b: &(i64, u32)| cmp(&a.0, &b.0).then(a.1.cmp(&b.1));
    if v.len() > keep {
        v.select_nth_unstable_by(keep - 1, by);
    }
    &v[..keep.min(v.len())]
}

/// The key of the first and second of `v` in the order `first` (`first(a, b)`: `a` comes
/// before `b`), ties by draw; the second is the first when `v` has one element.
fn two_extremes(v: &[(i64, u32)], first: impl Fn(&(i64, u32), &(i64, u32)) -> bool) -> (i64, i64) {
    let before = |a: &(i64, u32), b: &(i64, u32)| first(a, b) || (a.0 == b.0 && a.1 < b.1);
    let mut best = v[0];
    let mut second: Option<(i64, u32)> = None;
    for c in &v[1..] {
        if before(c, &best) {
            second = Some(best);
            best = *c;
        } else if second.is_none_or(|s| before(c, &s)) {
            second = Some(*c);
        }
    }
    (best.0, second.unwrap_or(best).0)
}

/// Most values [`BandSelector`] keeps per tail before it falls back to selection (enough for
/// up to about 600 draws).
const MAX_KEPT: usize = 32;

/// [`quantile`] of `v` without sorting it: the two order statistics around the position, by
/// `select_nth_unstable` (reorders `v`).
fn select_quantile(v: &mut [f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (left, &mut at_hi, _) = v.select_nth_unstable_by(hi, f64::total_cmp);
    let at_lo = if lo == hi {
        at_hi
    } else {
        left.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    at_lo + (at_hi - at_lo) * (pos - lo as f64)
}

/// Customers per parallel task when the bands go back to input order.
const OUT_CHUNK: usize = 1 << 14;

/// Most distinct `(x, T)` pairs scored per parallel task.
const PAIRS_PER_TASK: usize = 256;

/// Most customers per parallel task (unless one pair has more). Pairs of few purchases hold
/// many customers each: in tasks of 256 pairs, the last task to finish kept one core busy
/// alone for the last 0.4–0.5 s of the 50 M workload's 3 s of intervals.
const CUSTOMERS_PER_TASK: usize = 1 << 13;

/// The parallel tasks as ranges of consecutive pairs, `start[k]..start[k + 1]` being pair
/// `k`'s customers: each task as many pairs as fit in [`PAIRS_PER_TASK`] and
/// [`CUSTOMERS_PER_TASK`], and at least one.
fn task_pairs(start: &[usize]) -> Vec<std::ops::Range<usize>> {
    let pairs = start.len() - 1;
    let mut tasks = Vec::new();
    let mut lo = 0;
    while lo < pairs {
        let mut hi = lo + 1;
        while hi < pairs
            && hi - lo < PAIRS_PER_TASK
            && start[hi + 1] - start[lo] <= CUSTOMERS_PER_TASK
        {
            hi += 1;
        }
        tasks.push(lo..hi);
        lo = hi;
    }
    tasks
}

/// Percentile bands of P(alive), expected purchases over `horizon` time units and, with spend
/// draws, CLV, for every customer, under the parameter draws given.
#[allow(clippy::too_many_arguments)]
pub fn customer_intervals(
    purchase: &[PurchaseModel],
    spend: Option<&[GammaGammaParams]>,
    horizon: f64,
    x: &[f64],
    tx: &[f64],
    t: &[f64],
    m: &[f64],
    opts: &ClvOptions,
) -> Intervals {
    let n = x.len();
    let draws = purchase.len();
    let (pairs, pair_of) = distinct_pairs(x, t);
    // Customers sorted by (pair, t_x, m): equal (x, t_x, T) keys are adjacent, and within a
    // key (or a pair whose every draw says alive for sure, where t_x does not matter) by mean
    // spend, so that consecutive customers' CLV draws have nearly the same extremes and
    // `BandSelector`'s bound from the previous customer keeps few candidates. One parallel
    // sort of (pair and rank of t_x, m) keys (an indirect sort on one thread took 0.3 s of the
    // intervals of 1.8 M customers).
    let (_, tx_rank, _) = shared_index(tx, &[]);
    let certain_pair: Vec<bool> = pairs
        .par_iter()
        .map(|&(xk, _)| purchase.iter().all(|p| p.alive_for_sure(xk)))
        .collect();
    let mut keyed: Vec<(u64, i64, u32)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let pair = pair_of[i] as usize;
            let rank = if certain_pair[pair] { 0 } else { tx_rank[i] };
            (
                ((pair as u64) << 32) | rank as u64,
                total_key(m[i]),
                i as u32,
            )
        })
        .collect();
    keyed.par_sort_unstable();
    let order: Vec<u32> = keyed.into_par_iter().map(|(_, _, i)| i).collect();
    // Where each pair's customers start in `order`.
    let mut start = vec![0usize; pairs.len() + 1];
    for &i in &order {
        start[pair_of[i as usize] as usize + 1] += 1;
    }
    for k in 0..pairs.len() {
        start[k + 1] += start[k];
    }
    // ln(α_s + t_x) for every distinct t_x and draw s, when the model splits P(alive) that way
    // and the table is small: P(alive) then costs one exp per key and draw.
    let ln_alpha_tx = LnAlphaTable::new(purchase, tx);
    let discounts = monthly_discounts(opts);
    // With a spend model and the horizon a month end, each draw's expectations at the month
    // ends from tables of (α_s + v)^(a_s − 1) (one pass of a series per pair and draw, no
    // logarithm or exponential per month end).
    let horizon_j = horizon_month(horizon, discounts.len(), opts);
    let powers = match (spend, horizon_j) {
        (Some(_), Some(_)) => {
            let pair_t: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            PowerTable::new(purchase, &pair_t, discounts.len(), opts)
        }
        _ => None,
    };
    // The bands in `order`, each task writing the range of its pairs' customers.
    let mut in_order = vec![[f64::NAN; 6]; n];
    let mut ranges: Vec<(std::ops::Range<usize>, &mut [[f64; 6]])> = Vec::new();
    let mut rest = &mut in_order[..];
    for pairs in task_pairs(&start) {
        let (part, tail) = rest.split_at_mut(start[pairs.end] - start[pairs.start]);
        ranges.push((pairs, part));
        rest = tail;
    }
    ranges.into_par_iter().for_each(|(task_pairs, out)| {
        let mut out = out.iter_mut();
        let (mut pa, mut ep, mut cl) = (vec![0.0; draws], vec![0.0; draws], vec![0.0; draws]);
        let mut eif = vec![0.0; draws];
        // Each draw's spend for this pair's x, linear in m: (sa + sb·m), or pop (m or x 0).
        let (mut sa, mut sb, mut pop) = (vec![0.0; draws], vec![0.0; draws], vec![0.0; draws]);
        let mut factor = vec![0.0; draws];
        let mut terms = vec![AliveTerms::Other; draws];
        // c0 + (r+x) ln(α+T) per draw: the log-odds are this minus (r+x) ln(α+t_x).
        let mut odds_at_t = vec![0.0; draws];
        // r + x per draw, when every draw splits P(alive) as odds (`all_odds`).
        let mut rx_of = vec![0.0; draws];
        let mut weight = vec![0.0; draws];
        // The power-table rows of T plus each month end, and one draw's values at them.
        let months = discounts.len();
        let mut month_rows = vec![0usize; months];
        let (mut q_inv, mut inv) = (vec![0.0; months], vec![0.0; months]);
        let (mut sel_pa, mut sel_ep, mut sel_cl) = (
            BandSelector::default(),
            BandSelector::default(),
            BandSelector::default(),
        );
        for k in task_pairs {
            let (xk, tk) = pairs[k];
            // The table's rows for this pair (present by construction).
            let t_row = powers.as_ref().and_then(|tab| {
                for (j, r) in month_rows.iter_mut().enumerate() {
                    *r = tab.row(tk + month_end(j + 1, opts))?;
                }
                tab.row(tk)
            });
            for s in 0..draws {
                let tabled = powers
                    .as_ref()
                    .zip(t_row)
                    .and_then(|(tab, row)| Some((tab, row, tab.bg(s)?)));
                if let (Some((tab, row, bg)), Some(hj)) = (tabled, horizon_j) {
                    let q_t = tab.pow(row, s);
                    for ((q, v), &r) in q_inv.iter_mut().zip(inv.iter_mut()).zip(&month_rows) {
                        (*q, *v) = tab.pow_inv_and_inv(r, s);
                    }
                    let mut done = 0;
                    let (f, e) = discount_factor_from(opts, &discounts, Some(hj), |ts, cums| {
                        let part = done..done + ts.len();
                        bg.expected_purchases_if_alive_from_powers(
                            ts,
                            xk,
                            q_t,
                            &q_inv[part.clone()],
                            &inv[part],
                            cums,
                        );
                        done += ts.len();
                    });
                    (factor[s], eif[s]) = (f, e.expect("the horizon is a month end"));
                } else if spend.is_some() {
                    (factor[s], eif[s]) = discount_factor_and_expected(
                        &purchase[s],
                        xk,
                        tk,
                        opts,
                        &discounts,
                        horizon,
                    );
                } else {
                    eif[s] = purchase[s].expected_purchases_if_alive(horizon, xk, tk);
                }
                terms[s] = purchase[s].alive_terms(xk);
                if let Some(g) = spend {
                    (sa[s], sb[s]) = g[s].spend_line(xk);
                    pop[s] = g[s].population_mean();
                }
                if let AliveTerms::Odds { c0, rx, alpha } = terms[s] {
                    odds_at_t[s] = c0 + rx * (alpha + tk).ln();
                    rx_of[s] = rx;
                }
            }
            let all_odds = terms.iter().all(|t| matches!(t, AliveTerms::Odds { .. }));
            let mut last_tx = f64::NAN;
            // Bands that depend on (x, t_x, T) only are computed once per key; CLV per
            // customer only when the mean spend m matters (x > 0).
            let mut key_band = [f64::NAN; 6];
            // Where every draw says the customer is alive for sure (x = 0 in BG/NBD, every
            // customer at the no-dropout limit), P(alive) is 1 and the other two bands
            // depend on (x, T) only: computed once for the pair.
            let certain = certain_pair[k];
            debug_assert_eq!(
                certain,
                terms.iter().all(|t| matches!(t, AliveTerms::Certain))
            );
            let mut pair_band: Option<[f64; 4]> = None;
            for &i in &order[start[k]..start[k + 1]] {
                let i = i as usize;
                let new_key = tx[i].to_bits() != last_tx.to_bits();
                if new_key && certain {
                    last_tx = tx[i];
                    let band = *pair_band.get_or_insert_with(|| {
                        let (lo, hi) = sel_ep.p05_p95(&eif);
                        for s in 0..draws {
                            weight[s] = opts.margin * factor[s];
                        }
                        [1.0, 1.0, lo, hi]
                    });
                    key_band[..4].copy_from_slice(&band);
                } else if new_key {
                    last_tx = tx[i];
                    let ln_row = ln_alpha_tx.row(tx[i]);
                    match ln_row {
                        // Every draw's log-odds from the table: one vectorized pass.
                        Some(row) if all_odds => {
                            let per_draw = odds_at_t.iter().zip(&rx_of).zip(row).zip(&eif);
                            for ((p, e), (((&o, &r), &l), &f)) in
                                pa.iter_mut().zip(ep.iter_mut()).zip(per_draw)
                            {
                                *p = 1.0 / (1.0 + exp_fast(o - r * l));
                                *e = f * *p;
                            }
                        }
                        _ => {
                            for s in 0..draws {
                                pa[s] = match terms[s] {
                                    AliveTerms::Certain => 1.0,
                                    AliveTerms::Odds { rx, alpha, .. } => {
                                        let ln_a_tx = match ln_row {
                                            Some(row) => row[s],
                                            None => (alpha + tx[i]).ln(),
                                        };
                                        1.0 / (1.0 + (odds_at_t[s] - rx * ln_a_tx).exp())
                                    }
                                    AliveTerms::Other => purchase[s].prob_alive(xk, tx[i], tk),
                                };
                                ep[s] = eif[s] * pa[s];
                            }
                        }
                    }
                    (key_band[0], key_band[1]) = sel_pa.p05_p95(&pa);
                    (key_band[2], key_band[3]) = sel_ep.p05_p95(&ep);
                    for s in 0..draws {
                        weight[s] = opts.margin * pa[s] * factor[s];
                    }
                }
                let mut band = key_band;
                if spend.is_some() {
                    if new_key || x[i] > 0.0 {
                        let (mi, cost) = (m[i], opts.acquisition_cost);
                        if x[i] > 0.0 && mi > 0.0 {
                            for s in 0..draws {
                                cl[s] = (sa[s] + sb[s] * mi) * weight[s] - cost;
                            }
                        } else {
                            for s in 0..draws {
                                cl[s] = pop[s] * weight[s] - cost;
                            }
                        }
                        // Slot: the octave of the mean spend (whose size orders the draws'
                        // CLV lines), 0 for the population mean.
                        let slot = if x[i] > 0.0 && m[i] > 0.0 {
                            (m[i].log2().floor() + 33.0).clamp(1.0, 96.0) as usize
                        } else {
                            0
                        };
                        (key_band[4], key_band[5]) = sel_cl.p05_p95_in(&cl, Some(slot));
                    }
                    (band[4], band[5]) = (key_band[4], key_band[5]);
                }
                *out.next().expect("one slot per customer") = band;
            }
        }
    });
    // Back to input order: one read of each customer's six values (a scatter into six columns
    // took 0.3 s for 1.9 M customers).
    let mut position = vec![0u32; n];
    for (j, &i) in order.iter().enumerate() {
        position[i as usize] = j as u32;
    }
    let mut cols: [Vec<f64>; 6] = std::array::from_fn(|_| vec![f64::NAN; n]);
    let [c0, c1, c2, c3, c4, c5] = &mut cols;
    (
        c0.par_chunks_mut(OUT_CHUNK),
        c1.par_chunks_mut(OUT_CHUNK),
        c2.par_chunks_mut(OUT_CHUNK),
        c3.par_chunks_mut(OUT_CHUNK),
        c4.par_chunks_mut(OUT_CHUNK),
        c5.par_chunks_mut(OUT_CHUNK),
    )
        .into_par_iter()
        .enumerate()
        .for_each(|(k, (c0, c1, c2, c3, c4, c5))| {
            for (j, &p) in position[k * OUT_CHUNK..][..c0.len()].iter().enumerate() {
                let b = &in_order[p as usize];
                (c0[j], c1[j], c2[j], c3[j], c4[j], c5[j]) = (b[0], b[1], b[2], b[3], b[4], b[5]);
            }
        });
    let mut cols = cols.into_iter();
    let mut next = || cols.next().unwrap_or_default();
    let prob_alive = Band {
        p05: next(),
        p95: next(),
    };
    let expected_purchases = Band {
        p05: next(),
        p95: next(),
    };
    let clv = spend.map(|_| Band {
        p05: next(),
        p95: next(),
    });
    Intervals {
        prob_alive,
        expected_purchases,
        clv,
    }
}

mod tables;
#[cfg(test)]
mod tests;
