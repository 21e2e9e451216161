//! A small BFGS minimiser for smooth, unconstrained objectives with an analytic gradient.
//!
//! The models have 3-4 parameters, so dense BFGS (inverse-Hessian update, Nocedal & Wright
//! 2006, eq. 6.17) is the right size: L-BFGS would only add bookkeeping. The line search is
//! backtracking with the Armijo condition (N&W Alg. 3.1) and a safeguarded quadratic
//! interpolation step; the update is skipped when the curvature condition `sᵀy > 0` fails, which
//! keeps the inverse Hessian positive definite without a full Wolfe search.
//!
//! Two guards matter for likelihoods over log-parameters:
//! * a step is capped at [`MAX_STEP`] in the infinity norm, so one bad early direction cannot
//!   jump to `exp(700)`;
//! * non-finite objective values are treated as "too far" and the step is shrunk.
//!
//! The convergence test is the one scipy's BFGS (and therefore `lifetimes`) uses: the largest
//! absolute gradient component `<= gtol`.

/// Largest change of any variable in one iteration (log-parameters: a factor e^5 ≈ 150).
pub const MAX_STEP: f64 = 5.0;

/// Why the minimiser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// Gradient infinity norm fell below the tolerance.
    GradientTolerance,
    /// The line search found no decrease along the direction, even after resetting the
    /// inverse Hessian (usually: precision exhausted, or a flat ridge).
    LineSearchFailed,
    /// `max_iter` iterations used.
    MaxIterations,
    /// Newton's method at a positive-definite Hessian predicts a decrease below the rounding
    /// error of the objective: the optimum as exactly as double precision can locate it, even
    /// though the gradient is not below the tolerance (flat likelihoods on many customers).
    Stationary,
    /// Objective or gradient not finite at the starting point.
    NonFiniteStart,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::GradientTolerance => "gradient below tolerance",
            StopReason::LineSearchFailed => "line search found no further decrease",
            StopReason::MaxIterations => "maximum number of iterations reached",
            StopReason::Stationary => {
                "Newton step below the rounding of the objective (optimum located to machine precision)"
            }
            StopReason::NonFiniteStart => "objective not finite at the starting values",
        })
    }
}

/// Result of [`minimize_bfgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The point where the minimiser stopped.
    pub x: Vec<f64>,
    /// The objective at `x`.
    pub f: f64,
    /// Infinity norm of the gradient at `x`.
    pub grad_norm: f64,
    /// Iterations performed.
    pub iterations: usize,
    /// Objective + gradient evaluations.
    pub evaluations: usize,
    /// `reason` is `GradientTolerance` or `Stationary`.
    pub converged: bool,
    /// Why the minimiser stopped.
    pub reason: StopReason,
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, g| m.max(g.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The result of a run that stopped at `x` for `reason`.
fn done(x: Vec<f64>, f: f64, g: &[f64], it: usize, ev: usize, reason: StopReason) -> Minimum {
    Minimum {
        x,
        f,
        grad_norm: inf_norm(g),
        iterations: it,
        evaluations: ev,
        converged: matches!(
            reason,
            StopReason::GradientTolerance | StopReason::Stationary
        ),
        reason,
    }
}

/// The objective and gradient at the start, or the stop if either is not finite there.
fn start<F>(f: &mut F, x0: &[f64]) -> Result<(Vec<f64>, Vec<f64>, f64), Minimum>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let x = x0.to_vec();
    let mut g = vec![0.0; x0.len()];
    let fx = f(&x, &mut g);
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(done(x, fx, &g, 0, 1, StopReason::NonFiniteStart));
    }
    Ok((x, g, fx))
}

/// Trial points a line search still evaluates once the decrease they predict is below the
/// rounding of the objective ([`below_rounding`]): a decrease can then only show by rounding
/// luck, and shrinking the step further only spends evaluations (on flat likelihoods over
/// millions of customers that was dozens of passes per iteration).
const HOPELESS_TRIALS: usize = 4;

/// True when the decrease a line-search step predicts (`step · |slope|`) is below the rounding
/// of the objective `fx`.
fn below_rounding(step: f64, slope: f64, fx: f64) -> bool {
    step * slope.abs() <= 4.0 * f64::EPSILON * fx.abs()
}

/// The stop after `max_iter` iterations: converged only if the last gradient passed the test.
fn out_of_iterations(
    x: Vec<f64>,
    f: f64,
    g: &[f64],
    max_iter: usize,
    ev: usize,
    gtol: f64,
) -> Minimum {
    let reason = if inf_norm(g) <= gtol {
        StopReason::GradientTolerance
    } else {
        StopReason::MaxIterations
    };
    done(x, f, g, max_iter, ev, reason)
}

/// Minimises `f` from `x0`. `f(x, grad)` returns the objective and writes its gradient.
pub fn minimize_bfgs<F>(f: F, x0: &[f64], max_iter: usize, gtol: f64) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    minimize_bfgs_from(f, x0, None, max_iter, gtol)
}

/// [`minimize_bfgs`] starting from the inverse-Hessian approximation `h0` (row-major `n×n`,
/// positive definite), e.g. the inverse Hessian of the same mean objective over a subsample,
/// instead of a scaled identity: from a nearby `x0` it then takes Newton-like steps at once.
pub fn minimize_bfgs_from<F>(
    mut f: F,
    x0: &[f64],
    h0: Option<&[f64]>,
    max_iter: usize,
    gtol: f64,
) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let (mut x, mut g, mut fx) = match start(&mut f, x0) {
        Ok(v) => v,
        Err(stopped) => return stopped,
    };
    let mut evaluations = 1;
    let identity = |h: &mut Vec<f64>| {
        h.iter_mut().for_each(|v| *v = 0.0);
        (0..n).for_each(|i| h[i * n + i] = 1.0);
    };
    let mut h = vec![0.0; n * n]; // inverse Hessian approximation, row-major
    identity(&mut h);
    let mut fresh_h = true;
    if let Some(h0) = h0.filter(|h0| h0.len() == n * n && h0.iter().all(|v| v.is_finite())) {
        h.copy_from_slice(h0);
        fresh_h = false;
    }
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut d = vec![0.0; n];

    for iter in 0..max_iter {
        if inf_norm(&g) <= gtol {
            return done(x, fx, &g, iter, evaluations, StopReason::GradientTolerance);
        }
        // d = -H g; fall back to steepest descent if not a descent direction.
        for i in 0..n {
            d[i] = -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>();
        }
        let mut slope = dot(&g, &d);
        if slope.is_nan() || slope >= 0.0 {
            identity(&mut h);
            fresh_h = true;
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            slope = dot(&g, &d);
        }
        let dmax = inf_norm(&d);
        let mut step = if dmax > MAX_STEP {
            MAX_STEP / dmax
        } else {
            1.0
        };

        // Backtracking Armijo line search.
        let mut accepted = false;
        let mut hopeless = 0;
        for _ in 0..60 {
            if below_rounding(step, slope, fx) {
                hopeless += 1;
                if hopeless > HOPELESS_TRIALS {
                    break;
                }
            }
            x.iter()
                .zip(&d)
                .zip(x_new.iter_mut())
                .for_each(|((xi, di), xn)| *xn = xi + step * di);
            let f_new = f(&x_new, &mut g_new);
            evaluations += 1;
            let finite = f_new.is_finite() && g_new.iter().all(|v| v.is_finite());
            if finite && f_new <= fx + 1e-4 * step * slope {
                accepted = true;
                // BFGS update of the inverse Hessian with s = x_new - x, y = g_new - g.
                let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
                    if fresh_h {
                        // Scale the initial H to the curvature seen (N&W eq. 6.20).
                        let scale = sy / dot(&y, &y);
                        h.iter_mut().for_each(|v| *v *= scale);
                        fresh_h = false;
                    }
                    let hy: Vec<f64> = (0..n)
                        .map(|i| (0..n).map(|j| h[i * n + j] * y[j]).sum())
                        .collect();
                    let yhy = dot(&y, &hy);
                    let rho = 1.0 / sy;
                    for i in 0..n {
                        for j in 0..n {
                            h[i * n + j] += (1.0 + yhy * rho) * rho * s[i] * s[j]
                                - rho * (hy[i] * s[j] + s[i] * hy[j]);
                        }
                    }
                }
                std::mem::swap(&mut x, &mut x_new);
                std::mem::swap(&mut g, &mut g_new);
                fx = f_new;
                break;
            }
            // Quadratic interpolation of φ(step), kept within [0.1, 0.5] of the current step.
            let next = if finite {
                let q = -slope * step * step / (2.0 * (f_new - fx - slope * step));
                q.clamp(0.1 * step, 0.5 * step)
            } else {
                0.1 * step
            };
            step = next;
        }
        if !accepted {
            if fresh_h {
                let reason = if inf_norm(&g) <= gtol {
                    StopReason::GradientTolerance
                } else {
                    StopReason::LineSearchFailed
                };
                return done(x, fx, &g, iter, evaluations, reason);
            }
            // Retry once along steepest descent before giving up.
            identity(&mut h);
            fresh_h = true;
        }
    }
    out_of_iterations(x, fx, &g, max_iter, evaluations, gtol)
}

/// Solves `(A + μI) d = b` for a symmetric `n×n` matrix by Cholesky; `None` if `A + μI` is not
/// positive definite.
fn cholesky_solve(a: &[f64], n: usize, mu: f64, b: &[f64]) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j] + if i == j { mu } else { 0.0 };
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum.is_nan() || sum <= 0.0 {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut d = vec![0.0; n];
    for i in (0..n).rev() {
        d[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * d[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(d)
}

/// Hessian of `f` at `x` by central differences of its analytic gradient (symmetrised).
pub fn hessian<F>(f: &mut F, x: &[f64]) -> Vec<f64>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x.len();
    let mut hess = vec![0.0; n * n];
    let (mut gp, mut gm) = (vec![0.0; n], vec![0.0; n]);
    for j in 0..n {
        let h = 1e-5 * (1.0 + x[j].abs());
        let mut xp = x.to_vec();
        xp[j] += h;
        f(&xp, &mut gp);
        let mut xm = x.to_vec();
        xm[j] -= h;
        f(&xm, &mut gm);
        for i in 0..n {
            hess[i * n + j] = (gp[i] - gm[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (hess[i * n + j] + hess[j * n + i]);
            hess[i * n + j] = v;
            hess[j * n + i] = v;
        }
    }
    hess
}

/// Newton's method with the Hessian of [`hessian`], Levenberg damping where it is not positive
/// definite, and the Armijo backtracking of [`minimize_bfgs`]. Used to finish a BFGS run that
/// stalled on an ill-conditioned (but interior) optimum: near the optimum it converges
/// quadratically, in a handful of iterations, where BFGS can crawl for hundreds.
pub fn minimize_newton<F>(mut f: F, x0: &[f64], max_iter: usize, gtol: f64) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let (mut x, mut g, mut fx) = match start(&mut f, x0) {
        Ok(v) => v,
        Err(stopped) => return stopped,
    };
    let mut evaluations = 1;
    let mut g_new = vec![0.0; n];
    for iter in 0..max_iter {
        if inf_norm(&g) <= gtol {
            return done(x, fx, &g, iter, evaluations, StopReason::GradientTolerance);
        }
        let hess = hessian(&mut f, &x);
        evaluations += 2 * n;
        let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let scale = (0..n)
            .fold(0.0_f64, |m, i| m.max(hess[i * n + i].abs()))
            .max(1e-300);
        let mut mu = 0.0;
        let d = loop {
            if let Some(d) = cholesky_solve(&hess, n, mu, &neg_g) {
                break d;
            }
            mu = if mu == 0.0 { 1e-10 * scale } else { mu * 10.0 };
            if mu > 1e10 * scale {
                break neg_g.clone();
            }
        };
        let slope = dot(&g, &d);
        if mu == 0.0 && slope < 0.0 && -slope <= 1e-15 * fx.abs().max(1.0) {
            return done(x, fx, &g, iter, evaluations, StopReason::Stationary);
        }
        if slope.is_nan() || slope >= 0.0 {
            return done(x, fx, &g, iter, evaluations, StopReason::LineSearchFailed);
        }
        let dmax = inf_norm(&d);
        let mut step = if dmax > MAX_STEP {
            MAX_STEP / dmax
        } else {
            1.0
        };
        let mut accepted = false;
        let mut hopeless = 0;
        for _ in 0..60 {
            if below_rounding(step, slope, fx) {
                hopeless += 1;
                if hopeless > HOPELESS_TRIALS {
                    break;
                }
            }
            let x_new: Vec<f64> = x.iter().zip(&d).map(|(xi, di)| xi + step * di).collect();
            let f_new = f(&x_new, &mut g_new);
            evaluations += 1;
            if f_new.is_finite()
                && g_new.iter().all(|v| v.is_finite())
                && f_new <= fx + 1e-4 * step * slope
            {
                x = x_new;
                fx = f_new;
                std::mem::swap(&mut g, &mut g_new);
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            let reason = if inf_norm(&g) <= gtol {
                StopReason::GradientTolerance
            } else {
                StopReason::LineSearchFailed
            };
            return done(x, fx, &g, iter, evaluations, reason);
        }
    }
    out_of_iterations(x, fx, &g, max_iter, evaluations, gtol)
}

/// Asymptotic covariance `(count · H)⁻¹` of the minimiser of a *mean* objective with Hessian
/// `H` (`n×n`, row-major) over `count` observations; `None` unless `H` is positive definite.
pub fn covariance(hess: &[f64], n: usize, count: f64) -> Option<Vec<f64>> {
    let scaled: Vec<f64> = hess.iter().map(|v| v * count).collect();
    let mut cov = vec![0.0; n * n];
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let col = cholesky_solve(&scaled, n, 0.0, &e)?;
        for i in 0..n {
            cov[i * n + j] = col[i];
        }
    }
    cov.iter().all(|v| v.is_finite()).then_some(cov)
}

/// Lower Cholesky factor of a symmetric positive-definite `n×n` matrix (row-major). A row and
/// column that are exactly zero (a parameter held fixed) get a zero column in the factor.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        if (0..n).all(|k| a[i * n + k] == 0.0 && a[k * n + i] == 0.0) {
            continue;
        }
        for j in 0..=i {
            if (0..n).all(|k| a[j * n + k] == 0.0) {
                continue;
            }
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum.is_nan() || sum <= 0.0 {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// `first` continued by `then`: iterations and evaluations add up.
pub fn chain(first: &Minimum, then: Minimum) -> Minimum {
    Minimum {
        iterations: first.iterations + then.iterations,
        evaluations: first.evaluations + then.evaluations,
        ..then
    }
}

/// Newton iterations allowed to finish a stalled BFGS run.
pub const NEWTON_POLISH_ITER: usize = 50;

/// BFGS (from the inverse-Hessian estimate `h0`, else a scaled identity) for at most `first`
/// iterations; a run that has not converged by then and that `polish(&x)` accepts (an interior
/// point, not a ridge running to a boundary) is finished by Newton steps, at most
/// [`NEWTON_POLISH_ITER`] and within `max_iter` in all.
pub fn minimize_bfgs_then_newton<F>(
    f: &F,
    x0: &[f64],
    h0: Option<&[f64]>,
    max_iter: usize,
    gtol: f64,
    first: usize,
    polish: impl Fn(&[f64]) -> bool,
) -> Minimum
where
    F: Fn(&[f64], &mut [f64]) -> f64,
{
    let m = minimize_bfgs_from(f, x0, h0, max_iter.min(first), gtol);
    if m.converged || !polish(&m.x) || max_iter <= m.iterations {
        return m;
    }
    let budget = (max_iter - m.iterations).min(NEWTON_POLISH_ITER);
    chain(&m, minimize_newton(f, &m.x, budget, gtol))
}

/// The warm start of a fit over many customers: the fit of the same mean objective over a
/// subsample of them.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    /// Customers in the subsample.
    pub customers: usize,
    /// The subsample's fit.
    pub fit: Minimum,
    /// Whether the result started from it (false: the subsample's fit was not finite or the
    /// warm-started fit had neither converged nor stalled at precision in [`WARM_MAX_ITER`]
    /// iterations, and the result comes from the cold start; the fit's message says so).
    pub used: bool,
}

/// Iterations allowed to a warm-started fit (it usually needs 3-6); one that has not
/// converged by then (nor stalled at precision, [`minimize_warm`]) is rerun from the cold
/// start.
pub const WARM_MAX_ITER: usize = 30;

/// A warm-started fit whose line search found no further decrease at a finite point that
/// `polish` accepts (interior, not on a ridge running to a boundary), with its gradient within
/// [`super::STALL_FACTOR`] of the tolerance: the objective's rounding hides any further
/// decrease there, which a cold start cannot do better than (it is accepted by the same rule,
/// `models::stalled_at_precision`). A fit stopped by its iteration budget, at a non-finite
/// point or on a ridge is not.
fn stalled_at_precision(m: &Minimum, gtol: f64, polish: impl Fn(&[f64]) -> bool) -> bool {
    m.reason == StopReason::LineSearchFailed
        && m.f.is_finite()
        && m.x.iter().all(|v| v.is_finite())
        && m.grad_norm.is_finite()
        && m.grad_norm <= super::STALL_FACTOR * gtol
        && polish(&m.x)
}

/// What a fit's caller knows about the ridges of its objective: lines along which a parameter
/// runs off to a boundary of the parameter space (where the model reaches a limit) and BFGS
/// crawls.
#[derive(Clone, Copy)]
pub struct Ridges<'a> {
    /// BFGS iterations after which a fit still on a ridge is returned to the caller's limit
    /// tests (any other unfinished fit is finished by Newton's method).
    pub first: usize,
    /// Whether a point is interior (on no ridge): only there does Newton's method finish a
    /// fit, and a warm fit stalled at precision is kept without [`Ridges::keep`].
    pub interior: &'a dyn Fn(&[f64]) -> bool,
    /// Whether a warm fit that ended on a ridge (converged, or stalled at precision) is kept.
    pub keep: &'a dyn Fn(&Minimum) -> bool,
    /// Applied to the subsample's fit before the fit over everyone starts from it: the
    /// caller's way off a ridge whose limit is not the subsample's maximum.
    pub refine_sub: &'a dyn Fn(Minimum) -> Minimum,
}

impl Ridges<'static> {
    /// A caller that knows no ridge: every point is interior, a warm fit is kept when
    /// converged, the subsample's fit is used as it is.
    pub const NONE: Ridges<'static> = Ridges {
        first: 100,
        interior: &|_| true,
        keep: &|m| m.converged,
        refine_sub: &|m| m,
    };
}

/// [`minimize_bfgs_then_newton`] of the mean objective `full`, started at the minimum of `sub`
/// (the same mean objective over a subsample of the observations; fitted from `x0`) with the
/// inverse of `sub`'s Hessian there as BFGS's first inverse-Hessian approximation.
///
/// Both objectives are means, so their minima differ by the sampling error of the subsample
/// and their Hessians are alike: the fit over every observation then needs a few iterations
/// instead of the dozens a cold start takes. The result is the optimum of `full` by the same
/// convergence test as a cold start: converged, or (as a cold fit may also end) stalled at the
/// precision of the objective at an interior point ([`stalled_at_precision`]; the caller
/// reports that in the fit's message). When the subsample fit does not end at a finite point
/// of `full`, or the warm-started fit has done neither within [`WARM_MAX_ITER`] iterations,
/// the fit starts again, cold, from `x0`: a warm start never gives a worse answer than none.
///
/// A warm start that ends on a ridge (a point [`Ridges::interior`] refuses: a parameter
/// running off to a boundary) is kept, converged or stalled at precision, only if
/// [`Ridges::keep`] accepts it: started from a subsample's fit on a ridge, the fit may be on a
/// plateau it cannot leave (the gradient in a log-parameter running to −∞ vanishes there)
/// although `full`'s optimum is interior, so a caller keeps it there only when it tests the
/// ridge's limit afterwards (`bgnbd`'s first-order test at the no-dropout boundary).
pub fn minimize_warm<F, G>(
    full: &F,
    sub: Option<(&G, usize)>,
    x0: &[f64],
    max_iter: usize,
    gtol: f64,
    ridges: &Ridges<'_>,
) -> (Minimum, Option<WarmStart>)
where
    F: Fn(&[f64], &mut [f64]) -> f64,
    G: Fn(&[f64], &mut [f64]) -> f64,
{
    let Ridges {
        first,
        interior,
        keep,
        refine_sub,
    } = *ridges;
    let mut abandoned = None;
    if let Some((sub, customers)) = sub {
        let w = minimize_bfgs_then_newton(sub, x0, None, max_iter, gtol, first, interior);
        let w = refine_sub(w);
        if w.x.iter().all(|v| v.is_finite()) {
            let n = x0.len();
            let mut s = |x: &[f64], g: &mut [f64]| sub(x, g);
            let inv = covariance(&hessian(&mut s, &w.x), n, 1.0);
            let budget = max_iter.min(WARM_MAX_ITER);
            let m = minimize_bfgs_then_newton(
                full,
                &w.x,
                inv.as_deref(),
                budget,
                gtol,
                first,
                interior,
            );
            let kept = match interior(&m.x) {
                true => m.converged || stalled_at_precision(&m, gtol, interior),
                false => (m.converged || stalled_at_precision(&m, gtol, |_| true)) && keep(&m),
            };
            if kept {
                let used = true;
                return (
                    m,
                    Some(WarmStart {
                        customers,
                        fit: w,
                        used,
                    }),
                );
            }
        }
        abandoned = Some(WarmStart {
            customers,
            fit: w,
            used: false,
        });
    }
    let m = minimize_bfgs_then_newton(full, x0, None, max_iter, gtol, first, interior);
    (m, abandoned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newton_finishes_rosenbrock_quickly() {
        let m = minimize_newton(rosenbrock, &[-1.2, 1.0], 100, 1e-10);
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{m:?}"
        );
        assert!(m.iterations < 40, "{m:?}");
    }

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn rosenbrock_from_classic_start() {
        let m = minimize_bfgs(rosenbrock, &[-1.2, 1.0], 500, 1e-9);
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
        assert!(m.iterations < 100, "{m:?}");
    }

    #[test]
    fn ill_conditioned_quadratic() {
        // f = ½ Σ c_i (x_i - i)^2 with condition number 1e4; minimum at x_i = i.
        let c = [1.0, 10.0, 100.0, 1e4];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..4 {
                let e = x[i] - i as f64;
                g[i] = c[i] * e;
                v += 0.5 * c[i] * e * e;
            }
            v
        };
        let m = minimize_bfgs(f, &[3.0, -2.0, 0.5, 7.0], 200, 1e-10);
        assert!(m.converged, "{m:?}");
        for i in 0..4 {
            assert!((m.x[i] - i as f64).abs() < 1e-8, "{m:?}");
        }
    }

    #[test]
    fn reports_max_iterations_and_non_finite_start() {
        let m = minimize_bfgs(rosenbrock, &[-1.2, 1.0], 3, 1e-12);
        assert!(!m.converged);
        assert_eq!(m.reason, StopReason::MaxIterations);
        assert_eq!(m.iterations, 3);
        let m = minimize_bfgs(
            |_x: &[f64], g: &mut [f64]| {
                g[0] = 0.0;
                f64::NAN
            },
            &[0.0],
            10,
            1e-8,
        );
        assert_eq!(m.reason, StopReason::NonFiniteStart);
        assert!(!m.converged);
    }

    /// f = 1e10 + 1e-8 (x − 1)² + noise: at x = 0 every step's decrease is below the rounding
    /// noise of f (as in a sum over millions of customers), so no trial point can show one.
    fn flat_at_zero(x: &[f64], g: &mut [f64]) -> f64 {
        g[0] = 2e-8 * (x[0] - 1.0);
        let noise = if x[0] == 0.0 {
            0.0
        } else {
            1e-5 * (1.0 + (x[0] * 1e6).sin().abs())
        };
        1e10 + 1e-8 * (x[0] - 1.0).powi(2) + noise
    }

    #[test]
    fn a_decrease_below_rounding_stops_the_line_search_early() {
        // The search gives up after a few trials instead of 60 halvings.
        let f = flat_at_zero;
        let m = minimize_bfgs(f, &[0.0], 100, 1e-12);
        assert_eq!(m.reason, StopReason::LineSearchFailed, "{m:?}");
        assert!(m.evaluations <= 1 + HOPELESS_TRIALS + 1, "{m:?}");
        // Newton sees the same: its predicted decrease is below rounding, the optimum as exactly
        // as double precision can locate it.
        let n = minimize_newton(f, &[0.0], 100, 1e-12);
        assert_eq!(n.reason, StopReason::Stationary, "{n:?}");
    }

    #[test]
    fn warm_start_is_used_when_it_converges_and_reported_when_not() {
        // Full objective (x − 1)², finite only below x = 5.
        let full = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 1.0);
            if x[0] < 5.0 {
                (x[0] - 1.0).powi(2)
            } else {
                f64::INFINITY
            }
        };
        // A subsample whose optimum lies near the full one: the result starts from it.
        let near = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 1.1);
            (x[0] - 1.1).powi(2)
        };
        let from_near =
            |ridges: &Ridges| minimize_warm(&full, Some((&near, 10)), &[-3.0], 100, 1e-10, ridges);
        let (m, w) = from_near(&Ridges::NONE);
        assert!(m.converged && (m.x[0] - 1.0).abs() < 1e-9, "{m:?}");
        assert!(
            w.as_ref().is_some_and(|w| w.used && w.customers == 10),
            "{w:?}"
        );
        // The same converged fit at a point the caller calls a ridge: kept only if the caller's
        // test of the ridge's limit accepts it, else started again cold (the same optimum).
        let on_ridge = |_: &[f64]| false;
        let (_, w) = from_near(&Ridges {
            interior: &on_ridge,
            ..Ridges::NONE
        });
        assert!(w.as_ref().is_some_and(|w| w.used), "{w:?}");
        let (m, w) = from_near(&Ridges {
            interior: &on_ridge,
            keep: &|_| false,
            ..Ridges::NONE
        });
        assert!(m.converged && (m.x[0] - 1.0).abs() < 1e-9, "{m:?}");
        assert!(w.as_ref().is_some_and(|w| !w.used), "{w:?}");
        // One whose optimum (x = 10) is not even finite for the full objective: the fit starts
        // again from the cold start, reaches the same optimum, and says the warm start was not
        // used.
        let far = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 10.0);
            (x[0] - 10.0).powi(2)
        };
        let (m, w) = minimize_warm(&full, Some((&far, 10)), &[-3.0], 100, 1e-10, &Ridges::NONE);
        assert!(m.converged && (m.x[0] - 1.0).abs() < 1e-9, "{m:?}");
        assert!(w.as_ref().is_some_and(|w| !w.used), "{w:?}");
        assert!(super::super::warm_note(w.as_ref()).contains("from the cold start"));
    }

    #[test]
    fn a_warm_fit_stalled_at_precision_is_kept_only_at_an_interior_point() {
        // The full objective `flat_at_zero`: at x = 0 no step can show a decrease, and its
        // gradient (2e-8) is within STALL_FACTOR of the tolerance 1e-9. A subsample whose
        // optimum is x = 0 starts the full fit there.
        let full = flat_at_zero;
        let sub = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0];
            x[0] * x[0]
        };
        let from_sub =
            |ridges: &Ridges| minimize_warm(&full, Some((&sub, 10)), &[0.5], 100, 1e-9, ridges);
        // Interior (the caller's `interior` accepts the point): BFGS's line search fails there,
        // Newton's finish finds the point stationary, and the warm fit is kept.
        let (m, w) = from_sub(&Ridges::NONE);
        assert!(m.x[0] == 0.0 && m.converged, "{m:?}");
        assert!(w.as_ref().is_some_and(|w| w.used), "{w:?}");
        // On a ridge (`interior` refuses the point): no Newton finish, the line search's stall
        // within STALL_FACTOR of the tolerance is not accepted there, and the cold start runs.
        let (_, w) = from_sub(&Ridges {
            interior: &|_| false,
            ..Ridges::NONE
        });
        assert!(w.as_ref().is_some_and(|w| !w.used), "{w:?}");
        // Unless the caller's test of the ridge's limit keeps it there: then the stalled warm
        // fit is returned (unconverged, for the caller's limit fits), not a cold start.
        let keep = |m: &Minimum| m.reason == StopReason::LineSearchFailed;
        let (m, w) = from_sub(&Ridges {
            interior: &|_| false,
            keep: &keep,
            ..Ridges::NONE
        });
        assert!(w.as_ref().is_some_and(|w| w.used), "{w:?}");
        assert!(m.x[0] == 0.0 && !m.converged, "{m:?}");
        // The rule itself: a line-search stall within the factor at an interior finite point
        // is accepted; stopped by the budget, at a non-finite point, outside the factor or on a
        // ridge, it is not.
        let stop = |reason, f: f64, grad_norm| Minimum {
            x: vec![0.0],
            f,
            grad_norm,
            iterations: 30,
            evaluations: 40,
            converged: false,
            reason,
        };
        use StopReason::{LineSearchFailed as Stalled, MaxIterations as Budget};
        let cases = [
            (Stalled, 1.0, 2e-8, true, true),
            (Budget, 1.0, 2e-8, true, false),
            (Stalled, f64::NAN, 2e-8, true, false),
            (Stalled, 1.0, 2e-6, true, false),
            (Stalled, 1.0, 2e-8, false, false),
        ];
        for (reason, f, grad_norm, interior, kept) in cases {
            let m = stop(reason, f, grad_norm);
            assert_eq!(
                stalled_at_precision(&m, 1e-9, |_: &[f64]| interior),
                kept,
                "{m:?}, interior {interior}"
            );
        }
    }

    #[test]
    fn shrinks_past_non_finite_region() {
        // f = e^x - 2x is infinite (overflow) for x > 709; start where the first step would jump far.
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = x[0].exp() - 2.0;
            x[0].exp() - 2.0 * x[0]
        };
        let m = minimize_bfgs(f, &[-20.0], 200, 1e-10);
        assert!(m.converged, "{m:?}");
        assert!((m.x[0] - 2f64.ln()).abs() < 1e-9);
    }
}
