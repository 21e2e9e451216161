//! Special functions the likelihoods need: `ln Γ`, digamma `ψ`, and the Gauss hypergeometric
//! series `₂F₁`; and `exp_fast`, an `exp` that vectorizes (for the interval draws).
//!
//! Written here instead of pulling a crate: the main crate has no special-function dependency,
//! and these three are short. Both `ln Γ` and `ψ` use the same scheme: shift the argument up
//! with the recurrence until it is >= [`SHIFT_TO`], then use the asymptotic (Stirling / de
//! Moivre) series, whose truncation error there is below 1e-16 relative. Only positive
//! arguments occur in the models, so no reflection formula is needed.

use std::f64::consts::PI;

/// Arguments below this are shifted up by the recurrence before the asymptotic series.
const SHIFT_TO: f64 = 15.0;

/// `ln Γ(x)` for `x > 0`. NaN for `x <= 0` or NaN.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    // Γ(x) = Γ(x+n) / (x (x+1) ... (x+n-1)); the product of at most 15 factors >= x cannot
    // overflow and its underflow is only possible for x < 1e-300 (handled by ln of each).
    let mut shift = 0.0;
    let mut z = x;
    let mut prod = 1.0;
    while z < SHIFT_TO {
        prod *= z;
        z += 1.0;
        if prod < 1e-280 {
            shift += prod.ln();
            prod = 1.0;
        }
    }
    shift += prod.ln();
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // Stirling series: 1/(12z) - 1/(360z^3) + 1/(1260z^5) - 1/(1680z^7) + 1/(1188z^9) - 691/(360360z^11)
    let series = inv
        * (1.0 / 12.0
            + inv2
                * (-1.0 / 360.0
                    + inv2
                        * (1.0 / 1260.0
                            + inv2
                                * (-1.0 / 1680.0
                                    + inv2 * (1.0 / 1188.0 + inv2 * (-691.0 / 360360.0))))));
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * PI).ln() + series - shift
}

/// Digamma `ψ(x) = d/dx ln Γ(x)` for `x > 0`. NaN for `x <= 0` or NaN.
pub(crate) fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    // ψ(x) = ψ(x+n) - Σ 1/(x+k)
    let mut acc = 0.0;
    let mut z = x;
    while z < SHIFT_TO {
        acc -= 1.0 / z;
        z += 1.0;
    }
    acc + z.ln() - 0.5 / z + digamma_series(z)
}

/// The terms of `ψ(z) − ln z + 1/(2z)` for `z >= SHIFT_TO`:
/// `−1/(12z²) + 1/(120z⁴) − 1/(252z⁶) + 1/(240z⁸) − 1/(132z¹⁰)`.
fn digamma_series(z: f64) -> f64 {
    let inv2 = 1.0 / (z * z);
    inv2 * (-1.0 / 12.0
        + inv2
            * (1.0 / 120.0 + inv2 * (-1.0 / 252.0 + inv2 * (1.0 / 240.0 + inv2 * (-1.0 / 132.0)))))
}

/// `ψ(x + c) − ψ(x)` for `x > 0`, `c >= 0`, without the cancellation of the difference of two
/// [`digamma`]s when `c ≪ x` (their difference is about `c/x`): shifted by the recurrence as
/// `Σ_k c/((x+k)(x+c+k))`, then `ln1p(c/x) + c/(2x(x+c))` plus the difference of the series.
pub(crate) fn digamma_diff(x: f64, c: f64) -> f64 {
    if x.is_nan() || c.is_nan() || x <= 0.0 || c < 0.0 {
        return f64::NAN;
    }
    let (mut acc, mut z) = (0.0, x);
    while z < SHIFT_TO {
        acc += c / (z * (z + c));
        z += 1.0;
    }
    acc + (c / z).ln_1p() + c / (2.0 * z * (z + c)) + (digamma_series(z + c) - digamma_series(z))
}

/// Most terms any hypergeometric series here may take. The series for `z` close to 1 needs
/// about `37 / (1 - z)` terms; 5 M covers `z < 0.99999` and costs ~10 ms in the worst case.
pub(crate) const MAX_SERIES_TERMS: usize = 5_000_000;

/// Sum of `Σ_{n>=n0} t_n` for a hypergeometric-type series given its first term `t_{n0}` and the
/// term ratio `t_{n+1}/t_n = ratio(n)`. Stops once the remaining tail is provably below
/// `1e-17` of the running sum: the ratio has settled below 1, and the tail bound
/// `|t| ρ / (1 - ρ)` with `ρ = max(|ratio|, z)` (the ratio tends to `z` monotonically from
/// there on) is negligible.
pub(crate) fn sum_series(first: f64, n0: usize, z: f64, ratio: impl Fn(f64) -> f64) -> f64 {
    let mut term = first;
    let mut sum = first;
    let mut n = n0 as f64;
    for _ in 0..MAX_SERIES_TERMS {
        if term == 0.0 {
            break;
        }
        let rho = ratio(n);
        term *= rho;
        sum += term;
        n += 1.0;
        let bound = rho.abs().max(z.abs());
        if bound < 1.0 && term.abs() * bound / (1.0 - bound) <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum
}

/// [`sum_series`] for several arguments at once: `out[k] = Σ_{n>=n0} c_n z_k^n` for a power
/// series with first coefficient `c_{n0} = first` and coefficient ratio
/// `c_{n+1}/c_n = coef_ratio(n)`, each `z_k` in `[0, 1)`. The coefficients are computed once
/// for all arguments (one division per term instead of one per term and argument).
///
/// Each sum stops by [`sum_series`]'s rule for its own `z_k`, checked in argument order: the
/// sums are cheapest with `zs` ascending, where the smaller arguments, which converge first,
/// come first. A sum whose turn comes after it has converged keeps the extra terms, each below
/// `1e-17` of it.
pub(crate) fn sum_power_series_multi(
    first: f64,
    n0: usize,
    zs: &[f64],
    coef_ratio: impl Fn(f64) -> f64,
    out: &mut [f64],
) {
    let len = zs.len();
    debug_assert!(len <= MAX_MULTI && out.len() == len);
    let mut pow = [0.0f64; MAX_MULTI];
    for k in 0..len {
        pow[k] = zs[k].powi(n0 as i32);
        out[k] = first * pow[k];
    }
    if first == 0.0 {
        return;
    }
    let mut coef = first;
    let mut n = n0 as f64;
    // The first sum still running.
    let mut lo = 0;
    let mut ratio = f64::INFINITY;
    for _ in 0..MAX_SERIES_TERMS {
        // Sums that have stopped: the newest term of `lo` is negligible.
        while lo < len {
            let z = zs[lo];
            let term = coef * pow[lo];
            let bound = (ratio * z).abs().max(z.abs());
            if term == 0.0
                || (bound < 1.0 && term.abs() * bound <= 1e-17 * out[lo].abs() * (1.0 - bound))
            {
                lo += 1;
            } else {
                break;
            }
        }
        if lo == len {
            break;
        }
        ratio = coef_ratio(n);
        coef *= ratio;
        n += 1.0;
        for k in lo..len {
            pow[k] *= zs[k];
            out[k] += coef * pow[k];
        }
    }
}

/// Most arguments [`sum_power_series_multi`] takes at once.
pub(crate) const MAX_MULTI: usize = 64;

/// Gauss hypergeometric function `₂F₁(a, b; c; z)` by its defining series, for `|z| < 1` and
/// `c` not a non-positive integer. Used as an independent reference in tests; the BG/NBD
/// expectation uses the Euler-transformed series directly (see `bgnbd`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    sum_series(1.0, 0, z, |n| (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_known_values() {
        // Γ(n) = (n-1)!, Γ(1/2) = √π, plus values from tables (Abramowitz & Stegun 6.1).
        // Near the zeros at 1 and 2 the error is absolute, ~ulp(ln Γ(15)) ≈ 4e-15.
        assert!(ln_gamma(1.0).abs() < 2e-14, "{}", ln_gamma(1.0));
        assert!(ln_gamma(2.0).abs() < 2e-14, "{}", ln_gamma(2.0));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-15));
        assert!(close(ln_gamma(0.5), PI.sqrt().ln(), 1e-14));
        assert!(close(ln_gamma(171.0), 706.5730622457874, 1e-14)); // ln(170!)
        assert!(close(ln_gamma(1e-8), 18.420_680_738_180_21, 1e-14)); // ≈ -ln(x) - γx
                                                                      // scipy.special.gammaln (cephes) values:
        assert!(close(ln_gamma(0.243), 1.3180435846996699, 1e-14));
        assert!(close(ln_gamma(5000.5), 37586.88488728106, 1e-14));
        assert!(ln_gamma(0.0).is_nan() && ln_gamma(-1.0).is_nan());
    }

    #[test]
    fn digamma_diff_is_the_difference_without_its_cancellation() {
        // ψ(x + n) − ψ(x) = Σ_{k<n} 1/(x + k) for whole n: summed directly, to 1e-13.
        for &x in &[1e-8, 0.3, 1.0, 14.5, 15.0, 99.0, 1e4, 1e8, 1e12] {
            for n in [0usize, 1, 2, 7, 40] {
                let want: f64 = (0..n).map(|k| 1.0 / (x + k as f64)).sum();
                let got = digamma_diff(x, n as f64);
                assert!(close(got, want, 1e-13), "x={x} n={n}: {got} vs {want}");
            }
        }
        // Where the two digammas are of unlike size, their plain difference is accurate.
        for &(x, c) in &[(0.01, 3.5), (2.0, 1000.5), (20.0, 1e6)] {
            let want = digamma(x + c) - digamma(x);
            assert!(close(digamma_diff(x, c), want, 1e-12), "{x} {c}");
        }
        assert!(digamma_diff(0.0, 1.0).is_nan() && digamma_diff(1.0, -1.0).is_nan());
    }

    #[test]
    fn digamma_known_values() {
        // ψ(1) = -γ, ψ(1/2) = -γ - 2 ln 2, ψ(x+1) = ψ(x) + 1/x.
        let euler = 0.577_215_664_901_532_9;
        assert!(close(digamma(1.0), -euler, 1e-14));
        assert!(close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-14));
        for &x in &[0.01, 0.243, 3.3, 14.9, 15.0, 250.0, 5000.0] {
            assert!(
                close(digamma(x + 1.0), digamma(x) + 1.0 / x, 1e-13),
                "x = {x}"
            );
        }
        // derivative of ln_gamma by central difference
        for &x in &[0.3, 2.5, 40.0] {
            let h = 1e-5 * x;
            let fd = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(close(digamma(x), fd, 1e-8), "x = {x}");
        }
    }

    #[test]
    fn multi_series_equals_one_at_a_time() {
        // BG/NBD-like parameters, z from tiny to close to 1, and a zero argument.
        let (a, b, c) = (0.81 + 3.0 - 1.0 - 0.5, 0.81 - 1.0, 0.81 + 3.0 + 4.0 - 1.0);
        let zs = [0.0, 1e-6, 0.05, 0.3, 0.5, 0.9, 0.97, 0.995];
        let mut out = [0.0; 8];
        let ratio = |n: f64| (a + n) * (b + n) / ((c + n) * (n + 1.0));
        sum_power_series_multi(a / c, 1, &zs, ratio, &mut out);
        for (k, &z) in zs.iter().enumerate() {
            let one = sum_series(a * z / c, 1, z, |n| ratio(n) * z);
            assert!(close(out[k], one, 1e-13), "z = {z}: {} vs {one}", out[k]);
        }
        // 2F1(1,1;2;z) = -ln(1-z)/z from n0 = 0.
        let zs = [0.2, 0.6, 0.99];
        let mut out = [0.0; 3];
        sum_power_series_multi(1.0, 0, &zs, |n| (1.0 + n) / (2.0 + n), &mut out);
        for (k, &z) in zs.iter().enumerate() {
            assert!(close(out[k], -(1.0 - z).ln() / z, 1e-13), "z = {z}");
        }
    }

    #[test]
    fn hyp2f1_closed_forms() {
        for &z in &[0.0_f64, 0.1, 0.5, 0.9, 0.99] {
            // 2F1(1,1;2;z) = -ln(1-z)/z
            let want = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z), want, 1e-13), "z = {z}");
            // 2F1(a,b;b;z) = (1-z)^-a
            assert!(
                close(hyp2f1(0.7, 2.5, 2.5, z), (1.0 - z).powf(-0.7), 1e-13),
                "z = {z}"
            );
            // 2F1(1/2,1/2;3/2;z^2) = asin(z)/z
            if z > 0.0 {
                assert!(
                    close(hyp2f1(0.5, 0.5, 1.5, z * z), z.asin() / z, 1e-13),
                    "z = {z}"
                );
            }
        }
        // Euler transformation 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z), BG/NBD-like values
        let (a, b, c, z) = (3.24, 4.43, 4.2, 0.3);
        let lhs = hyp2f1(a, b, c, z);
        let rhs = (1.0 - z).powf(c - a - b) * hyp2f1(c - a, c - b, c, z);
        assert!(close(lhs, rhs, 1e-12));
        // scipy.special.hyp2f1(0.243, 2.426, 2.219, 0.4) (cephes, an independent implementation)
        assert!(close(
            hyp2f1(0.243, 2.426, 2.219, 0.4),
            1.1478166020378866,
            1e-14
        ));
    }
}

/// `e^x` in straight-line arithmetic, so that loops over slices of it vectorize (libm's `exp`
/// is a call per value): Cody–Waite reduction `x = k ln 2 + r`, `|r| ≤ ln 2 / 2`, the Taylor
/// polynomial of `e^r` to degree 13 (truncation below 1e-17 relative), and `2^k` built in the
/// exponent bits. Within a few ulp of `f64::exp` (checked in the tests); arguments are
/// clamped to `[−708, 709]`, so the result is never 0 or infinite (`e^−708` ≈ 3e−308). NaN
/// stays NaN.
#[inline(always)]
pub(crate) fn exp_fast(x: f64) -> f64 {
    // fdlibm's split of ln 2: the high part has 32 significant bits, so k · LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // 1.5 · 2^52: adding it rounds to an integer held in the low bits of the mantissa.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // Comparisons rather than max/min, so that NaN stays NaN.
    let x = if x < -708.0 { -708.0 } else { x };
    let x = if x > 709.0 { 709.0 } else { x };
    let shifted = x * std::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Σ r^n / n!, n = 0..=13, by Horner.
    let mut p = 1.0 / 6_227_020_800.0;
    for d in [
        479_001_600.0,
        39_916_800.0,
        3_628_800.0,
        362_880.0,
        40_320.0,
        5_040.0,
        720.0,
        120.0,
        24.0,
        6.0,
        2.0,
        1.0,
        1.0,
    ] {
        p = p * r + 1.0 / d;
    }
    // 2^k: k + 1023 in the exponent field (the shifted value's low bits hold k).
    let scale = f64::from_bits((shifted.to_bits().wrapping_add(1023)) << 52);
    p * scale
}

#[cfg(test)]
mod exp_tests {
    use super::exp_fast;

    #[test]
    fn exp_fast_is_within_a_few_ulp_of_libm() {
        let mut worst: f64 = 0.0;
        let mut x = -708.0;
        while x <= 709.0 {
            for v in [x, x + 1e-7, -x * 1e-3, x * 1e-9] {
                let (got, want) = (exp_fast(v), v.exp());
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 1e-15, "largest relative error {worst:e}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(f64::NAN).is_nan());
        assert!(exp_fast(1e6).is_finite() && exp_fast(1e6) > 1e307);
        assert!(exp_fast(-1e6) > 0.0 && exp_fast(-1e6) < 1e-307);
        assert_eq!(exp_fast(f64::NEG_INFINITY), exp_fast(-708.0));
    }
}
