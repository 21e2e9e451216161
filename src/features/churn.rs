//! Period churn-rate table and cohort retention triangle, from daily purchase columns.
//!
//! Input: one row per customer and purchase day (same-day transactions summed), customers as
//! dense indices sorted ascending, days sorted within each customer, all days ≤ D = `as_of`.
//! A customer's first row is taken as its first purchase (which decides "new" and the cohort):
//! custval passes the job's window, so with `lookback_days` "new" means new to the window.
//!
//! **Activity.** A customer is *active in period p* when it bought in p. With
//! `inactivity_days = Some(n)` it is active in p when it bought in (e − n, e], where e is the
//! last day of p, or D for the unfinished last period: a purchase keeps a customer active for
//! n days, so activity is the status at the period's end. With n shorter than the period, a
//! customer can buy early in p and not be active in p.
//!
//! **Churn-rate table** ([`churn_rates`]): one row per period from the period of the earliest
//! transaction (or, with a window, the first period starting inside `[window_start, D]`, if
//! later) to D's period: sized by the data, whatever the window.
//! The last row is D's period and is `partial` when D is not its last day. For each period p,
//! comparing with p − 1:
//! - `active` = active in p; `active_start` = active in p − 1;
//! - `retained` = active in p − 1 and in p; `churned` = active in p − 1, not in p;
//! - among the active customers not active in p − 1: `new` when the first purchase (full
//!   history) falls in p, otherwise `reactivated`;
//! - hence `active = retained + new + reactivated` and `active_start = retained + churned`;
//! - `churn_rate` = churned / active_start, `retention_rate` = retained / active_start, none
//!   when active_start = 0;
//! - `revenue` = all amounts of days in p; `revenue_retained`, `revenue_new`,
//!   `revenue_reactivated` = what those groups spent in p (they add up to `revenue` when
//!   activity = buying in p; with `inactivity_days`, spend by customers not active at the
//!   period's end is in `revenue` only); `revenue_churned_prev` = what the churned customers
//!   spent in p − 1.
//!
//! **Cohort table** ([`cohort_retention`]): the cohort of a customer is the period of its first
//! purchase (full history). Cohorts whose customers first bought inside the window (all
//! cohorts without a window) get one row per offset k = 0, 1, … up to D's period; cohorts
//! without customers get no rows. `active` = cohort customers active (same rule as above) in
//! period cohort + k, `retention` = active / cohort_size, `revenue` = what the cohort spent in
//! that period, `cumulative_revenue_per_customer` = revenue of offsets 0..=k / cohort_size.
//!
//! Cost: one pass over the rows; fixed chunks of customers are processed in parallel (rayon),
//! each holding one accumulator per period (churn) or per cohort cell (cohorts), and the chunks
//! are added in order so that the float sums are the same on every run.

use rayon::prelude::*;

/// Customers per parallel task; fixed so that results do not depend on scheduling.
const DETERMINISTIC_CHUNK: usize = 4096;

use super::periods::{DayPeriods, Period};

/// Daily purchase columns, one row per customer and purchase day.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DailyColumns<'a> {
    /// Dense customer index, sorted ascending.
    pub customer: &'a [u32],
    /// Epoch day, sorted within each customer, all ≤ `as_of`.
    pub day: &'a [i32],
    /// Amount of the day.
    pub amount: &'a [f64],
}

/// Options of [`churn_rates`] and [`cohort_retention`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChurnOptions {
    /// Length of the periods (`churn.period`).
    pub period: Period,
    /// First day of the window, if bounded.
    pub window_start: Option<i32>,
    /// D.
    pub as_of: i32,
    /// A purchase keeps the customer active this many days (≥ 1); `None`: active = bought in
    /// the period.
    pub inactivity_days: Option<i32>,
}

/// One row of the churn-rate table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChurnRateRow {
    /// Index of the period ([`Period::index`]).
    pub period_index: i32,
    /// First epoch day of the period.
    pub period_start: i32,
    /// Label of the period, e.g. `2024-01` ([`Period::label`]).
    pub period_label: String,
    /// Customers active in the previous period.
    pub active_start: u64,
    /// Customers active in the previous period and in this one.
    pub retained: u64,
    /// Customers active in the previous period but not in this one.
    pub churned: u64,
    /// Customers active in the period, not in the previous one, whose first purchase falls in it.
    pub new: u64,
    /// Customers active in the period, not in the previous one, who first bought earlier.
    pub reactivated: u64,
    /// Customers active in the period: `retained + new + reactivated`.
    pub active: u64,
    /// `churned / active_start`; `None` when `active_start` is 0.
    pub churn_rate: Option<f64>,
    /// `retained / active_start`; `None` when `active_start` is 0.
    pub retention_rate: Option<f64>,
    /// All amounts of the purchase days in the period.
    pub revenue: f64,
    /// What the retained customers spent in the period.
    pub revenue_retained: f64,
    /// What the new customers spent in the period.
    pub revenue_new: f64,
    /// What the reactivated customers spent in the period.
    pub revenue_reactivated: f64,
    /// What the churned customers spent in the previous period.
    pub revenue_churned_prev: f64,
    /// D's period, when D is not its last day.
    pub partial: bool,
}

/// One cell of the cohort triangle.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CohortRow {
    /// Index of the cohort's period: the period of its customers' first purchase.
    pub cohort_index: i32,
    /// Label of the cohort's period, e.g. `2024-01`.
    pub cohort_label: String,
    /// Customers whose first purchase falls in the cohort's period.
    pub cohort_size: u64,
    /// k: periods from the cohort's period to this cell's period (0 = the cohort's own period).
    pub period_offset: i32,
    /// Label of this cell's period (cohort + `period_offset`).
    pub period_label: String,
    /// Cohort customers active in this cell's period.
    pub active: u64,
    /// `active / cohort_size`.
    pub retention: f64,
    /// What the cohort's customers spent in this cell's period.
    pub revenue: f64,
    /// Revenue of offsets `0..=period_offset` / `cohort_size`.
    pub cumulative_revenue_per_customer: f64,
    /// The cell's period is D's period and D is not its last day.
    pub partial: bool,
}

/// Row ranges `[start, end)` of each customer present.
fn customer_ranges(cols: &DailyColumns) -> Vec<(usize, usize)> {
    let n = cols.customer.len();
    assert!(
        cols.day.len() == n && cols.amount.len() == n,
        "DailyColumns: columns differ in length"
    );
    let mut ranges = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || cols.customer[i] != cols.customer[start] {
            if i < n {
                assert!(
                    cols.customer[i] > cols.customer[start],
                    "DailyColumns: customer column is not sorted"
                );
            }
            ranges.push((start, i));
            start = i;
        }
    }
    ranges
}

/// The period table of the purchase days of `cols` up to `opts.as_of`.
fn day_periods(cols: &DailyColumns, opts: &ChurnOptions) -> DayPeriods {
    let lo = cols.day.iter().copied().min().unwrap_or(opts.as_of);
    DayPeriods::new(opts.period, lo.min(opts.as_of), opts.as_of)
}

/// Periods `lo..=hi` in which a customer with purchase `days` is active, ascending, into `out`
/// (cleared first: one buffer serves many customers).
fn active_periods(
    days: &[i32],
    (lo, hi): (i32, i32),
    o: &ChurnOptions,
    p: &DayPeriods,
    out: &mut Vec<i32>,
) {
    out.clear();
    match o.inactivity_days {
        None => {
            for &d in days {
                let i = p.index(d);
                if i >= lo && i <= hi && out.last() != Some(&i) {
                    out.push(i);
                }
            }
        }
        Some(n) => {
            assert!(n >= 1, "inactivity_days must be at least 1, found {n}");
            let eff_end = |i: i32| p.end(i).min(o.as_of);
            for &d in days {
                // Active in i when d ≤ e(i) < d + n; e(i) ≥ d from i = index(d) on.
                let mut i = p.index(d).max(lo);
                if let Some(&l) = out.last() {
                    i = i.max(l + 1);
                }
                while i <= hi && i64::from(eff_end(i)) < i64::from(d) + i64::from(n) {
                    out.push(i);
                    i += 1;
                }
            }
        }
    }
}

/// Spend per period `lo..=hi`, ascending by period, into `out` (cleared first).
fn revenue_by_period(
    days: &[i32],
    amounts: &[f64],
    (lo, hi): (i32, i32),
    p: &DayPeriods,
    out: &mut Vec<(i32, f64)>,
) {
    out.clear();
    for (&d, &a) in days.iter().zip(amounts) {
        let i = p.index(d);
        if i < lo || i > hi {
            continue;
        }
        match out.last_mut() {
            Some((last, sum)) if *last == i => *sum += a,
            _ => out.push((i, a)),
        }
    }
}

fn lookup(rev: &[(i32, f64)], p: i32) -> f64 {
    rev.binary_search_by_key(&p, |&(i, _)| i)
        .map_or(0.0, |k| rev[k].1)
}

#[derive(Clone, Copy, Default)]
struct Acc {
    active_start: u64,
    retained: u64,
    churned: u64,
    new: u64,
    reactivated: u64,
    active: u64,
    revenue: f64,
    revenue_retained: f64,
    revenue_new: f64,
    revenue_reactivated: f64,
    revenue_churned_prev: f64,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.active_start += o.active_start;
        self.retained += o.retained;
        self.churned += o.churned;
        self.new += o.new;
        self.reactivated += o.reactivated;
        self.active += o.active;
        self.revenue += o.revenue;
        self.revenue_retained += o.revenue_retained;
        self.revenue_new += o.revenue_new;
        self.revenue_reactivated += o.revenue_reactivated;
        self.revenue_churned_prev += o.revenue_churned_prev;
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The churn-rate table, one row per period, ascending; see the module doc.
pub(crate) fn churn_rates(cols: &DailyColumns, opts: &ChurnOptions) -> Vec<ChurnRateRow> {
    let ranges = customer_ranges(cols);
    let p = opts.period;
    let last = p.index(opts.as_of);
    let periods = day_periods(cols, opts);
    // Sized by the data, not the calendar: from the period of the earliest purchase (or the
    // first period starting inside the window, if later) to D's period.
    let Some(data_first) = cols.day.iter().min().map(|&d| p.index(d)) else {
        return Vec::new();
    };
    let first = match opts.window_start {
        Some(w) => {
            let i = p.index(w);
            let i = if p.start(i) < w { i + 1 } else { i };
            i.max(data_first)
        }
        None => data_first,
    };
    if first > last {
        return Vec::new();
    }
    let len = (last - first + 1) as usize;

    // Fixed chunks, combined in order: float sums come out bit-identical on every run, whatever
    // the thread count (rayon's adaptive fold/reduce would not guarantee that).
    let acc = ranges
        .par_chunks(DETERMINISTIC_CHUNK)
        .map(|chunk| {
            // One pair of buffers per chunk, reused customer after customer.
            let (mut act, mut rev) = (Vec::new(), Vec::new());
            chunk
                .iter()
                .fold(vec![Acc::default(); len], |mut acc, &(s, e)| {
                    let days = &cols.day[s..e];
                    let amounts = &cols.amount[s..e];
                    active_periods(days, (first - 1, last), opts, &periods, &mut act);
                    revenue_by_period(days, amounts, (first - 1, last), &periods, &mut rev);
                    let is_active = |i: i32| act.binary_search(&i).is_ok();
                    let first_period = periods.index(days[0]);
                    for &i in &act {
                        if i >= first {
                            let a = &mut acc[(i - first) as usize];
                            a.active += 1;
                            let r = lookup(&rev, i);
                            if is_active(i - 1) {
                                a.retained += 1;
                                a.revenue_retained += r;
                            } else if i == first_period {
                                a.new += 1;
                                a.revenue_new += r;
                            } else {
                                a.reactivated += 1;
                                a.revenue_reactivated += r;
                            }
                        }
                        if i < last {
                            let a = &mut acc[(i + 1 - first) as usize];
                            a.active_start += 1;
                            if !is_active(i + 1) {
                                a.churned += 1;
                                a.revenue_churned_prev += lookup(&rev, i);
                            }
                        }
                    }
                    for &(i, r) in &rev {
                        if i >= first {
                            acc[(i - first) as usize].revenue += r;
                        }
                    }
                    acc
                })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![Acc::default(); len], |mut a, b| {
            a.iter_mut().zip(&b).for_each(|(x, y)| x.add(y));
            a
        });

    acc.iter()
        .enumerate()
        .map(|(k, a)| {
            let i = first + k as i32;
            ChurnRateRow {
                period_index: i,
                period_start: p.start(i),
                period_label: p.label(i),
                active_start: a.active_start,
                retained: a.retained,
                churned: a.churned,
                new: a.new,
                reactivated: a.reactivated,
                active: a.active,
                churn_rate: ratio(a.churned, a.active_start),
                retention_rate: ratio(a.retained, a.active_start),
                revenue: a.revenue,
                revenue_retained: a.revenue_retained,
                revenue_new: a.revenue_new,
                revenue_reactivated: a.revenue_reactivated,
                revenue_churned_prev: a.revenue_churned_prev,
                partial: p.end(i) > opts.as_of,
            }
        })
        .collect()
}

/// Per cohort (index from the first cohort): size, and (active, revenue) per offset.
type CohortAcc = Vec<(u64, Vec<(u64, f64)>)>;

/// The cohort retention triangle, ordered by cohort then offset; see the module doc.
pub(crate) fn cohort_retention(cols: &DailyColumns, opts: &ChurnOptions) -> Vec<CohortRow> {
    let ranges = customer_ranges(cols);
    let p = opts.period;
    let last = p.index(opts.as_of);
    let periods = day_periods(cols, opts);
    let in_window = |first_day: i32| opts.window_start.is_none_or(|w| first_day >= w);
    let Some(c0) = ranges
        .iter()
        .map(|&(s, _)| cols.day[s])
        .filter(|&d| in_window(d))
        .min()
        .map(|d| p.index(d))
    else {
        return Vec::new();
    };
    if c0 > last {
        return Vec::new();
    }
    let n_cohorts = (last - c0 + 1) as usize;
    let empty = || -> CohortAcc {
        (0..n_cohorts)
            .map(|j| (0, vec![(0, 0.0); n_cohorts - j]))
            .collect()
    };

    let acc = ranges
        .par_chunks(DETERMINISTIC_CHUNK)
        .map(|chunk| {
            let (mut act, mut rev) = (Vec::new(), Vec::new());
            chunk.iter().fold(empty(), |mut acc, &(s, e)| {
                let days = &cols.day[s..e];
                if !in_window(days[0]) {
                    return acc;
                }
                let c = periods.index(days[0]);
                let cell = &mut acc[(c - c0) as usize];
                cell.0 += 1;
                active_periods(days, (c, last), opts, &periods, &mut act);
                for &i in &act {
                    cell.1[(i - c) as usize].0 += 1;
                }
                revenue_by_period(days, &cols.amount[s..e], (c, last), &periods, &mut rev);
                for &(i, r) in &rev {
                    cell.1[(i - c) as usize].1 += r;
                }
                acc
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(empty(), |mut a, b| {
            for (x, y) in a.iter_mut().zip(&b) {
                x.0 += y.0;
                for (u, v) in x.1.iter_mut().zip(&y.1) {
                    u.0 += v.0;
                    u.1 += v.1;
                }
            }
            a
        });

    let mut rows = Vec::new();
    for (j, (size, cells)) in acc.iter().enumerate() {
        if *size == 0 {
            continue;
        }
        let c = c0 + j as i32;
        let mut cumulative = 0.0;
        for (k, &(active, revenue)) in cells.iter().enumerate() {
            let i = c + k as i32;
            cumulative += revenue;
            rows.push(CohortRow {
                cohort_index: c,
                cohort_label: p.label(c),
                cohort_size: *size,
                period_offset: k as i32,
                period_label: p.label(i),
                active,
                retention: active as f64 / *size as f64,
                revenue,
                cumulative_revenue_per_customer: cumulative / *size as f64,
                partial: p.end(i) > opts.as_of,
            });
        }
    }
    rows
}

/// Merge the churn-rate tables of disjoint sets of customers (customer buckets): counts and
/// revenues add up per period, the rates are recomputed. Parts are added in the order given, so
/// the float sums are the same on every run.
pub(crate) fn merge_churn_rates(parts: Vec<Vec<ChurnRateRow>>) -> Vec<ChurnRateRow> {
    if parts.len() <= 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let mut by_period: std::collections::BTreeMap<i32, ChurnRateRow> = Default::default();
    for row in parts.into_iter().flatten() {
        match by_period.get_mut(&row.period_index) {
            None => {
                by_period.insert(row.period_index, row);
            }
            Some(a) => {
                a.active_start += row.active_start;
                a.retained += row.retained;
                a.churned += row.churned;
                a.new += row.new;
                a.reactivated += row.reactivated;
                a.active += row.active;
                a.revenue += row.revenue;
                a.revenue_retained += row.revenue_retained;
                a.revenue_new += row.revenue_new;
                a.revenue_reactivated += row.revenue_reactivated;
                a.revenue_churned_prev += row.revenue_churned_prev;
            }
        }
    }
    by_period
        .into_values()
        .map(|mut r| {
            r.churn_rate = ratio(r.churned, r.active_start);
            r.retention_rate = ratio(r.retained, r.active_start);
            r
        })
        .collect()
}

/// Merge the cohort triangles of disjoint sets of customers (customer buckets): cohort sizes,
/// active counts and revenues add up per cell; retention and cumulative revenue per customer
/// are recomputed.
pub(crate) fn merge_cohorts(parts: Vec<Vec<CohortRow>>) -> Vec<CohortRow> {
    if parts.len() <= 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let mut cells: std::collections::BTreeMap<(i32, i32), CohortRow> = Default::default();
    let mut sizes: std::collections::BTreeMap<i32, u64> = Default::default();
    for part in parts {
        for row in part {
            if row.period_offset == 0 {
                *sizes.entry(row.cohort_index).or_default() += row.cohort_size;
            }
            match cells.get_mut(&(row.cohort_index, row.period_offset)) {
                None => {
                    cells.insert((row.cohort_index, row.period_offset), row);
                }
                Some(c) => {
                    c.active += row.active;
                    c.revenue += row.revenue;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(cells.len());
    let mut cumulative = 0.0;
    for ((cohort, _), mut row) in cells {
        if row.period_offset == 0 {
            cumulative = 0.0;
        }
        let size = sizes.get(&cohort).copied().unwrap_or(0);
        cumulative += row.revenue;
        row.cohort_size = size;
        row.retention = row.active as f64 / size.max(1) as f64;
        row.cumulative_revenue_per_customer = cumulative / size.max(1) as f64;
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests;
