use super::*;
use crate::models::{fit_bgnbd, fit_gamma_gamma, testdata, BgNbdParams, FitOptions};

const TRUTH: BgNbdParams = BgNbdParams {
    r: 0.5,
    alpha: 20.0,
    a: 0.8,
    b: 3.0,
};

fn fitted(n: usize, seed: u64) -> (PurchaseModel, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (x, tx, t) = testdata::simulate_bgnbd(n, &TRUTH, 365.0, seed);
    let rep = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged && rep.boundary.is_none(), "{rep:?}");
    let cov = rep
        .covariance
        .clone()
        .expect("covariance at an interior optimum");
    (PurchaseModel::BgNbd(rep.params), cov, x, tx, t)
}

#[test]
fn quantiles_as_numpy() {
    // numpy.quantile([1, 2, 3, 4], [0.05, 0.95]) = [1.15, 3.85]
    let v = [1.0, 2.0, 3.0, 4.0];
    assert!((quantile(&v, 0.05) - 1.15).abs() < 1e-12);
    assert!((quantile(&v, 0.95) - 3.85).abs() < 1e-12);
    assert_eq!(quantile(&[7.0], 0.5), 7.0);
}

#[test]
fn draws_have_the_requested_mean_and_covariance() {
    let theta = [1.0, -2.0];
    let cov = [0.04, 0.01, 0.01, 0.09];
    let d = draw_log_params(&theta, &cov, 200_000, 1).unwrap();
    let n = d.len() as f64;
    let mean = |k: usize| d.iter().map(|v| v[k]).sum::<f64>() / n;
    let (m0, m1) = (mean(0), mean(1));
    let c = |i: usize, j: usize, mi: f64, mj: f64| {
        d.iter().map(|v| (v[i] - mi) * (v[j] - mj)).sum::<f64>() / n
    };
    assert!(
        (m0 - 1.0).abs() < 0.002 && (m1 + 2.0).abs() < 0.003,
        "{m0} {m1}"
    );
    assert!((c(0, 0, m0, m0) - 0.04).abs() < 0.001);
    assert!((c(0, 1, m0, m1) - 0.01).abs() < 0.001);
    assert!((c(1, 1, m1, m1) - 0.09).abs() < 0.002);
    assert!(draw_log_params(&theta, &[1.0, 2.0, 2.0, 1.0], 10, 1).is_none());
    // Fixed seed: the same draws every time.
    assert_eq!(d[..3], draw_log_params(&theta, &cov, 3, 1).unwrap()[..]);
}

#[test]
fn intervals_bracket_the_point_estimates_and_narrow_with_more_customers() {
    let width_for = |n: usize, check: bool| {
        let (model, cov, x, tx, t) = fitted(n, 3);
        let draws: Vec<PurchaseModel> = draw_log_params(&model.log_params(), &cov, 200, 7)
            .unwrap()
            .iter()
            .map(|th| PurchaseModel::from_log_params(model.kind(), th))
            .collect();
        let m: Vec<f64> = x
            .iter()
            .map(|&xi| if xi > 0.0 { 20.0 } else { 0.0 })
            .collect();
        let gg_rep = fit_gamma_gamma(
            &x,
            &x.iter()
                .enumerate()
                .map(|(i, &xi)| {
                    if xi > 0.0 {
                        10.0 + (i % 17) as f64
                    } else {
                        0.0
                    }
                })
                .collect::<Vec<_>>(),
            &FitOptions::default(),
        )
        .unwrap();
        let gg = gg_rep.params;
        let gg_draws: Vec<GammaGammaParams> = draw_log_params(
            &gg.log_params(),
            gg_rep.covariance.as_ref().unwrap(),
            200,
            8,
        )
        .unwrap()
        .iter()
        .map(|th| GammaGammaParams::from_log_params(th))
        .collect();
        let opts = ClvOptions::default();
        let iv = if check {
            customer_intervals(&draws, Some(&gg_draws), 90.0, &x, &tx, &t, &m, &opts)
        } else {
            Intervals::default()
        };
        for i in 0..if check { x.len() } else { 0 } {
            let pa = model.prob_alive(x[i], tx[i], t[i]);
            let ep = model.conditional_expected_purchases(90.0, x[i], tx[i], t[i]);
            let clv = crate::models::discounted_clv(&model, &gg, x[i], tx[i], t[i], m[i], &opts);
            for (name, point, band) in [
                ("prob_alive", pa, &iv.prob_alive),
                ("expected_purchases", ep, &iv.expected_purchases),
                ("clv", clv, iv.clv.as_ref().unwrap()),
            ] {
                let tol = 1e-9 * point.abs().max(1e-9);
                assert!(
                    band.p05[i] <= point + tol && point <= band.p95[i] + tol,
                    "{name} of customer {i} ({}, {}, {}): {} not in [{}, {}]",
                    x[i],
                    tx[i],
                    t[i],
                    point,
                    band.p05[i],
                    band.p95[i]
                );
            }
        }
        // The width for one reference customer: x = 3, t_x = 200, T = 365.
        let one = customer_intervals(
            &draws,
            None,
            90.0,
            &[3.0],
            &[200.0],
            &[365.0],
            &[0.0],
            &opts,
        );
        one.expected_purchases.p95[0] - one.expected_purchases.p05[0]
    };
    let (small, large) = (width_for(2_000, true), width_for(20_000, false));
    // The standard errors shrink like 1/sqrt(n): about 3.2x from 2,000 to 20,000 customers.
    assert!(
        large < small / 2.0 && large > small / 6.0,
        "{small} -> {large}"
    );
}

#[test]
fn ninety_percent_parameter_intervals_cover_the_truth_about_ninety_percent_of_the_time() {
    // 200 simulated datasets of 1,500 customers from known parameters; for each, the 5th-95th
    // percentile range of 400 draws of each parameter. Binomial sd of a 90 % coverage over
    // 200 datasets is 2.1 points; a wrong covariance (e.g. not scaled by n) gives ~0 % or 100 %.
    let truth = [TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b];
    let mut covered = [0usize; 4];
    let reps = 200;
    for rep in 0..reps {
        let (model, cov, ..) = fitted(1_500, 1000 + rep as u64);
        let draws = draw_log_params(&model.log_params(), &cov, 400, rep as u64).unwrap();
        for k in 0..4 {
            let mut v: Vec<f64> = draws.iter().map(|d| d[k].exp()).collect();
            v.sort_unstable_by(f64::total_cmp);
            if quantile(&v, 0.05) <= truth[k] && truth[k] <= quantile(&v, 0.95) {
                covered[k] += 1;
            }
        }
    }
    let share: Vec<f64> = covered.iter().map(|&c| c as f64 / reps as f64).collect();
    eprintln!("coverage of r, alpha, a, b: {share:?}");
    let mean = share.iter().sum::<f64>() / 4.0;
    assert!((0.84..=0.96).contains(&mean), "{share:?}");
    for s in &share {
        assert!((0.78..=0.98).contains(s), "{share:?}");
    }
}

#[test]
fn selection_gives_the_sorted_quantiles() {
    let mut rng = Rng(9);
    for n in [1usize, 2, 3, 20, 200, 201] {
        let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mut sorted = v.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let mut scratch = Vec::new();
        let (lo, hi) = p05_p95(&v, &mut scratch);
        assert_eq!(lo, quantile(&sorted, 0.05), "n = {n}");
        assert_eq!(hi, quantile(&sorted, 0.95), "n = {n}");
    }
}
