use super::*;
use crate::models::bgnbd::{BOUNDARY_LL_GAP, HOMOGENEOUS_AB, NO_DROPOUT_SHARE};
use crate::models::special::{hyp2f1, ln_gamma};
use crate::models::{fit_bgnbd, testdata};

fn rel_close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

const P: MbgNbdParams = MbgNbdParams {
    r: 0.5,
    alpha: 20.0,
    a: 0.8,
    b: 3.0,
};

/// Batislam et al. (2007) eq. (3), written out with plain `exp`/`powf` (no log-sum-exp, no
/// shared code with the fitter): valid for the moderate values used here.
fn ll_direct(p: &MbgNbdParams, x: f64, tx: f64, t: f64) -> f64 {
    let MbgNbdParams { r, alpha, a, b } = *p;
    let ln_beta = |u: f64, v: f64| ln_gamma(u) + ln_gamma(v) - ln_gamma(u + v);
    let front = (ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_beta(a, b + x + 1.0)
        - ln_beta(a, b))
    .exp();
    let bracket = (alpha + t).powf(-(r + x)) + a / (b + x) * (alpha + tx).powf(-(r + x));
    (front * bracket).ln()
}

/// The conditional expectation exactly as lifetimes 0.11.3 writes it (direct series ₂F₁).
fn expectation_direct(p: &MbgNbdParams, t: f64, x: f64, tx: f64, big_t: f64) -> f64 {
    let MbgNbdParams { r, alpha, a, b } = *p;
    let hyp = hyp2f1(r + x, b + x + 1.0, a + b + x, t / (alpha + big_t + t));
    let first = (a + b + x) / (a - 1.0);
    let second = 1.0 - hyp * ((alpha + big_t) / (alpha + t + big_t)).powf(r + x);
    let denom = 1.0 + a / (b + x) * ((alpha + big_t) / (alpha + tx)).powf(r + x);
    first * second / denom
}

#[test]
fn likelihood_and_expectations_match_the_direct_formulas() {
    for &(x, tx, t) in &[
        (0.0, 0.0, 30.0),
        (0.0, 0.0, 365.0),
        (1.0, 10.0, 40.0),
        (4.0, 84.0, 120.0),
        (12.0, 300.0, 364.0),
        (30.0, 200.0, 365.0),
    ] {
        let got = P.log_likelihood(x, tx, t);
        let want = ll_direct(&P, x, tx, t);
        assert!(
            rel_close(got, want, 1e-12),
            "LL({x},{tx},{t}): {got} vs {want}"
        );
        for h in [1.0, 30.0, 90.0, 365.0] {
            let got = P.conditional_expected_purchases(h, x, tx, t);
            let want = expectation_direct(&P, h, x, tx, t);
            assert!(
                rel_close(got, want, 1e-10),
                "E({h};{x},{tx},{t}): {got} vs {want}"
            );
        }
    }
    // Unlike BG/NBD, a customer with no repeat purchase may have dropped out:
    // P(alive) = 1 / (1 + a/b · ((α+T)/α)^r) = 1 / (1 + 0.8/3 · (50/20)^0.5) at T = 30.
    let want = 1.0 / (1.0 + 0.8 / 3.0 * 2.5f64.sqrt());
    assert!(rel_close(P.prob_alive(0.0, 0.0, 30.0), want, 1e-14));
}

#[test]
fn gradient_matches_finite_differences() {
    let (x, tx, t) = testdata::simulate_mbgnbd(500, &P.as_bg(), 365.0, 3);
    let rows = crate::models::bgnbd::tests_support::rows(&x, &tx, &t, Variant::Mbg);
    let (ll, g) = crate::models::bgnbd::tests_support::loglik_grad(&rows, &P.as_bg());
    let direct: f64 = (0..x.len()).map(|i| ll_direct(&P, x[i], tx[i], t[i])).sum();
    assert!(rel_close(ll, direct, 1e-10), "{ll} vs {direct}");
    let base = [P.r, P.alpha, P.a, P.b];
    for k in 0..4 {
        let h = 1e-6 * base[k];
        let mut up = base;
        let mut down = base;
        up[k] += h;
        down[k] -= h;
        let at = |v: [f64; 4]| {
            let p = BgNbdParams {
                r: v[0],
                alpha: v[1],
                a: v[2],
                b: v[3],
            };
            crate::models::bgnbd::tests_support::loglik_grad(&rows, &p).0
        };
        let fd = (at(up) - at(down)) / (2.0 * h);
        assert!(
            (g[k] - fd).abs() <= 1e-5 * fd.abs().max(1.0),
            "d/d{k}: {} vs {fd}",
            g[k]
        );
    }
}

#[test]
fn recovers_simulated_parameters() {
    // 20 000 customers simulated from MBG/NBD (dropout after the first purchase too).
    let (x, tx, t) = testdata::simulate_mbgnbd(20_000, &P.as_bg(), 730.0, 11);
    let rep = fit_mbgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged && rep.boundary.is_none(), "{rep:?}");
    let p = rep.params;
    assert!(rel_close(p.r, P.r, 0.06), "{p:?}");
    assert!(rel_close(p.alpha, P.alpha, 0.12), "{p:?}");
    assert!(rel_close(p.a, P.a, 0.2), "{p:?}");
    assert!(rel_close(p.b, P.b, 0.3), "{p:?}");
    assert!(rep.iterations <= 50, "{rep:?}");
    // MBG/NBD fits its own data better than BG/NBD does.
    let bg = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(
        rep.log_likelihood > bg.log_likelihood + 10.0,
        "{rep:?} vs {bg:?}"
    );
}

#[test]
fn no_dropout_data_give_the_nbd_limit_for_both_models() {
    // Nobody ever drops out (a = 0): Gamma(0.7, 30)-distributed Poisson rates over 1..730 days.
    let truth = BgNbdParams {
        r: 0.7,
        alpha: 30.0,
        a: 0.0,
        b: 1.0,
    };
    let (x, tx, t) = testdata::simulate_bgnbd(20_000, &truth, 730.0, 5);
    // The NBD likelihood's maximum, by an independent 2-D search: Newton on r with α profiled
    // out is not available in closed form, so a coarse-to-fine grid on (ln r, ln α).
    let nbd_ll = |r: f64, alpha: f64| -> f64 {
        (0..x.len())
            .map(|i| {
                ln_gamma(r + x[i]) - ln_gamma(r) + r * alpha.ln() - (r + x[i]) * (alpha + t[i]).ln()
            })
            .sum()
    };
    let (mut lr, mut la, mut step) = (0.0f64, 3.0f64, 0.5f64);
    for _ in 0..40 {
        let mut best = (nbd_ll(lr.exp(), la.exp()), lr, la);
        for dr in [-step, 0.0, step] {
            for da in [-step, 0.0, step] {
                let v = nbd_ll((lr + dr).exp(), (la + da).exp());
                if v > best.0 {
                    best = (v, lr + dr, la + da);
                }
            }
        }
        if best.1 == lr && best.2 == la {
            step /= 2.0;
        }
        (lr, la) = (best.1, best.2);
    }
    let (r_hat, alpha_hat, ll_hat) = (lr.exp(), la.exp(), nbd_ll(lr.exp(), la.exp()));
    assert!(rel_close(r_hat, 0.7, 0.05), "{r_hat}");

    let bg = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    let mbg = fit_mbgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    for (name, p, rep_ll, conv, boundary, iters) in [
        (
            "bgnbd",
            (bg.params.r, bg.params.alpha, bg.params.a),
            bg.log_likelihood,
            bg.converged,
            bg.boundary.clone(),
            bg.iterations,
        ),
        (
            "mbgnbd",
            (mbg.params.r, mbg.params.alpha, mbg.params.a),
            mbg.log_likelihood,
            mbg.converged,
            mbg.boundary.clone(),
            mbg.iterations,
        ),
    ] {
        assert!(conv, "{name}: {bg:?} {mbg:?}");
        let b = boundary.unwrap_or_else(|| panic!("{name}: no boundary reported"));
        assert!(b.contains("no dropout"), "{b}");
        assert_eq!(p.2, 0.0, "{name}");
        assert!(rel_close(p.0, r_hat, 1e-4), "{name}: r {} vs {r_hat}", p.0);
        assert!(
            rel_close(p.1, alpha_hat, 1e-4),
            "{name}: alpha {} vs {alpha_hat}",
            p.1
        );
        assert!(
            (rep_ll - ll_hat).abs() < 1e-3,
            "{name}: {rep_ll} vs {ll_hat}"
        );
        assert!(iters <= 100, "{name}: {iters}");
    }
    // Two free parameters at the limit, with their covariance: intervals exist there too.
    for (rep_cov, k) in [
        (bg.covariance.clone(), bg.free_parameters),
        (mbg.covariance.clone(), mbg.free_parameters),
    ] {
        assert_eq!(k, 2);
        let cov = rep_cov.expect("covariance of (ln r, ln alpha) at the NBD limit");
        assert!(
            cov[0] > 0.0 && cov[5] > 0.0 && cov[10] == 0.0 && cov[15] == 0.0,
            "{cov:?}"
        );
        let model = crate::models::PurchaseModel::BgNbd(bg.params);
        let draws = crate::models::intervals::draw_log_params(&model.log_params(), &cov, 50, 1)
            .expect("draws from a covariance with fixed parameters");
        for d in &draws {
            let m = crate::models::PurchaseModel::from_log_params(model.kind(), d);
            let e = crate::models::purchase::PurchaseScore::conditional_expected_purchases(
                &m, 90.0, 3.0, 100.0, 400.0,
            );
            assert!(e.is_finite() && e > 0.0, "{m:?}: {e}");
        }
    }
    // Scored with the limit: P(alive) = 1 and E[Y(t)] = (r + x) t / (α + T), finite for all.
    let p = bg.params;
    for i in 0..200 {
        assert_eq!(p.prob_alive(x[i], tx[i], t[i]), 1.0);
        let e = p.conditional_expected_purchases(90.0, x[i], tx[i], t[i]);
        let want = (p.r + x[i]) * 90.0 / (p.alpha + t[i]);
        assert!(rel_close(e, want, 1e-12), "{e} vs {want}");
        let m = mbg.params;
        assert_eq!(m.prob_alive(x[i], tx[i], t[i]), 1.0);
    }
    const _: () = assert!(NO_DROPOUT_SHARE < 1e-3 && BOUNDARY_LL_GAP < 1.92);
}

#[test]
fn data_with_dropout_are_not_called_a_boundary() {
    let (x, tx, t) = testdata::simulate_bgnbd(5_000, &P.as_bg(), 365.0, 9);
    let rep = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged && rep.boundary.is_none(), "{rep:?}");
    assert!(rep.params.a > 0.1, "{rep:?}");
}

#[test]
fn lifetimes_fixture_per_customer_values_and_fit() {
    // tests/fixtures/lifetimes/synthetic_models_*: ModifiedBetaGeoFitter of lifetimes 0.11.3
    // on 3,000 synthetic (non-CDNOW) customers in days.
    let (x, tx, t) = testdata::synthetic_rfm();
    let (he, exp) = testdata::read_csv("fixtures/lifetimes/synthetic_models_expected.csv");
    assert_eq!(exp.len(), x.len());
    let j = testdata::read_json("fixtures/lifetimes/synthetic_models_params.json");
    let f = |n: &str| j["mbg_nbd"][n].as_f64().unwrap();
    let p = MbgNbdParams {
        r: f("r"),
        alpha: f("alpha"),
        a: f("a"),
        b: f("b"),
    };
    let alive = crate::models::batch_prob_alive(&p, &x, &tx, &t).unwrap();
    let e90 = crate::models::batch_expected_purchases(&p, 90.0, 1.0, &x, &tx, &t).unwrap();
    let ll: Vec<f64> = (0..x.len())
        .map(|i| p.log_likelihood(x[i], tx[i], t[i]))
        .collect();
    for (name, got) in [
        ("mbg_p_alive", &alive),
        ("mbg_exp_purchases_90", &e90),
        ("mbg_ll", &ll),
    ] {
        let want = testdata::column(&he, &exp, name);
        for i in 0..want.len() {
            assert!(
                (got[i] - want[i]).abs() <= 1e-6 * want[i].abs(),
                "{name} of {}: ours {} vs lifetimes {}",
                exp[i][0],
                got[i],
                want[i]
            );
        }
    }
    // Our fit reaches lifetimes' optimum (its BFGS stops at gtol 1e-7, as ours).
    let rep = fit_mbgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged && rep.boundary.is_none(), "{rep:?}");
    assert!(rep.iterations <= 50, "{rep:?}");
    let total = j["mbg_nbd"]["total_log_likelihood"].as_f64().unwrap();
    assert!(
        rep.log_likelihood >= total - 1e-6,
        "{} vs {total}",
        rep.log_likelihood
    );
    for (got, want) in [
        (rep.params.r, p.r),
        (rep.params.alpha, p.alpha),
        (rep.params.a, p.a),
        (rep.params.b, p.b),
    ] {
        assert!(rel_close(got, want, 1e-4), "{:?} vs {p:?}", rep.params);
    }
}

#[test]
fn same_dropout_for_everyone_gives_the_homogeneous_limit() {
    // Beta(a, b) with a + b = 1e8: every customer drops out with p = 0.2 after each purchase.
    let truth = BgNbdParams {
        r: 0.8,
        alpha: 25.0,
        a: 0.2e8,
        b: 0.8e8,
    };
    let (x, tx, t) = testdata::simulate_bgnbd(5_000, &truth, 365.0, 21);
    let rep = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged, "{rep:?}");
    let b = rep.boundary.clone().expect("boundary reported");
    assert!(b.contains("same dropout for everyone"), "{b}");
    let p = rep.params;
    assert!(rel_close(p.r, truth.r, 0.1), "{p:?}");
    assert!(rel_close(p.alpha, truth.alpha, 0.15), "{p:?}");
    assert!(rel_close(p.a / (p.a + p.b), 0.2, 0.15), "{p:?}");
    // Independent check of the limit's log-likelihood: the BG/NBD likelihood with the point
    // mass written out, (1−p)^x Γ(r+x)α^r/Γ(r) [(α+T)^{−(r+x)} + δ p/(1−p) (α+t_x)^{−(r+x)}].
    let q = p.a / (p.a + p.b);
    let ll: f64 = (0..x.len())
        .map(|i| {
            let (xi, txi, ti) = (x[i], tx[i], t[i]);
            let front =
                ln_gamma(p.r + xi) - ln_gamma(p.r) + p.r * p.alpha.ln() + xi * (1.0 - q).ln();
            let mut br = (p.alpha + ti).powf(-(p.r + xi));
            if xi > 0.0 {
                br += q / (1.0 - q) * (p.alpha + txi).powf(-(p.r + xi));
            }
            front + br.ln()
        })
        .sum();
    assert!(
        (rep.log_likelihood - ll).abs() < 1e-6 * ll.abs(),
        "{} vs {ll}",
        rep.log_likelihood
    );
    assert!(rep.iterations <= 150, "{rep:?}");
    // Intervals exist at this limit: the covariance of (ln r, ln α, logit p) as that of
    // (ln r, ln α, ln a) with ln b fixed, so every draw is again a one-dropout-probability
    // model, with p = a/(a+b) varying around the fit.
    let cov = rep
        .covariance
        .clone()
        .expect("covariance at the homogeneous limit");
    assert!(cov[0] > 0.0 && cov[5] > 0.0 && cov[10] > 0.0, "{cov:?}");
    assert!((0..4).all(|k| cov[3 * 4 + k] == 0.0 && cov[k * 4 + 3] == 0.0));
    let model = crate::models::PurchaseModel::BgNbd(p);
    let draws: Vec<BgNbdParams> =
        crate::models::intervals::draw_log_params(&model.log_params(), &cov, 400, 9)
            .expect("positive semi-definite")
            .iter()
            .map(
                |th| match crate::models::PurchaseModel::from_log_params(model.kind(), th) {
                    crate::models::PurchaseModel::BgNbd(d) => d,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
    let ps: Vec<f64> = draws.iter().map(|d| d.a / (d.a + d.b)).collect();
    assert!(draws
        .iter()
        .all(|d| d.a + d.b >= HOMOGENEOUS_AB && rel_close(d.b, p.b, 1e-12)));
    let mean = ps.iter().sum::<f64>() / ps.len() as f64;
    let sd = (ps.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ps.len() as f64).sqrt();
    // The spread of p: positive, small next to p with 5,000 customers, and the truth (0.2)
    // within a few standard deviations of the fitted value.
    assert!(sd > 1e-4 && sd < 0.05, "sd {sd}");
    assert!((q - 0.2).abs() < 4.0 * sd + 1e-3, "p {q}, sd {sd}");
    assert!(rel_close(mean, q, 0.05), "{mean} vs {q}");
    let purchase: Vec<_> = draws
        .iter()
        .map(|&d| crate::models::PurchaseModel::BgNbd(d))
        .collect();
    let n = 300;
    let iv = testdata::purchase_bands(&purchase, (&x, &tx, &t), n);
    let point = crate::models::batch_prob_alive(&p, &x[..n], &tx[..n], &t[..n]).unwrap();
    for (i, &pa) in point.iter().enumerate() {
        let (lo, hi) = (iv.prob_alive.p05[i], iv.prob_alive.p95[i]);
        assert!(
            lo.is_finite() && hi.is_finite() && lo <= pa && pa <= hi,
            "{i}: {lo} {pa} {hi}"
        );
        if x[i] > 0.0 {
            assert!(lo < hi, "{i}: P(alive) varies with p");
        }
    }
    // The closed-form scoring agrees with the exact BG/NBD series at a large finite a + b.
    let finite = BgNbdParams {
        r: 0.8,
        alpha: 25.0,
        a: 0.2e5,
        b: 0.8e5,
    };
    for &(h, xi, big_t) in &[(90.0, 0.0, 100.0), (30.0, 3.0, 200.0), (365.0, 12.0, 300.0)] {
        let exact = finite.expected_purchases_if_alive(h, xi, big_t);
        let limit = truth.expected_purchases_if_alive(h, xi, big_t);
        assert!(rel_close(limit, exact, 1e-3), "{limit} vs {exact}");
    }
}
