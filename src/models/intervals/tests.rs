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
    // One selector across vectors, as across customers: its guess from the previous vector
    // is right (shape 4 follows 3 with the same order), wrong (reversed orders: the other
    // tail's draws then give the bound), or unusable (another length). 200 and 201 keep 11 values per tail; 1000 falls back to selection.
    // The second pass names slots (as CLV does by mean spend), whose remembered draws come
    // from vectors of other orders: their bounds must never drop a value either.
    for slotted in [false, true] {
        let mut sel = BandSelector::default();
        for n in [1usize, 2, 3, 20, 200, 201, 1000] {
            for shape in 0..6 {
                let v: Vec<f64> = (0..n)
                    .map(|i| match shape {
                        0 => rng.normal(),
                        // ties
                        1 => (rng.normal() * 3.0).round(),
                        // descending, then ascending: the worst orders for the previous guess
                        2 => -(i as f64),
                        3 => i as f64 * 1e-3 - 0.1,
                        // the same order as shape 3, shifted and scaled
                        4 => i as f64 * 2e-3 + 5.0,
                        // NaN and infinities sort as f64::total_cmp
                        _ => [f64::NAN, f64::INFINITY, -1.0, f64::NEG_INFINITY][i % 4] + i as f64,
                    })
                    .collect();
                let mut sorted = v.clone();
                sorted.sort_unstable_by(f64::total_cmp);
                let (lo, hi) = if slotted {
                    sel.p05_p95_in(&v, Some((shape + n) % 3))
                } else {
                    sel.p05_p95(&v)
                };
                let (want_lo, want_hi) = (quantile(&sorted, 0.05), quantile(&sorted, 0.95));
                assert!(
                    lo.to_bits() == want_lo.to_bits() || (lo.is_nan() && want_lo.is_nan()),
                    "n = {n}, shape {shape}: {lo} vs {want_lo}"
                );
                assert!(
                    hi.to_bits() == want_hi.to_bits() || (hi.is_nan() && want_hi.is_nan()),
                    "n = {n}, shape {shape}: {hi} vs {want_hi}"
                );
            }
        }
    }
    // The total order's keys round-trip and order as f64::total_cmp.
    for k in [-1.5, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MAX] {
        assert_eq!(from_total_key(total_key(k)).to_bits(), k.to_bits());
    }
    assert!(total_key(-0.0) < total_key(0.0) && total_key(-1.0) < total_key(-0.5));
}

#[test]
fn bands_equal_a_brute_force_over_every_draw_for_every_model() {
    // Independent of the key grouping, the log tables and the band selector: each customer's
    // values under every draw from the one-customer scoring functions, sorted, numpy quantile.
    let (x, tx, t) = testdata::simulate_bgnbd(400, &TRUTH, 365.0, 11);
    // Some repeat buyers with m = 0: they take the population mean, as x = 0 does.
    let m: Vec<f64> = (0..x.len())
        .map(|i| {
            if x[i] > 0.0 && i % 7 != 0 {
                5.0 + (i % 13) as f64
            } else {
                0.0
            }
        })
        .collect();
    let opts = ClvOptions::default();
    let gg = GammaGammaParams {
        p: 6.0,
        q: 4.0,
        v: 15.0,
    };
    let gg_cov = [0.01, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.01];
    let gd: Vec<GammaGammaParams> = draw_log_params(&gg.log_params(), &gg_cov, 60, 3)
        .unwrap()
        .iter()
        .map(|th| GammaGammaParams::from_log_params(th))
        .collect();
    let cov4 = [
        0.01, 0.002, 0.0, 0.0, 0.002, 0.02, 0.0, 0.0, 0.0, 0.0, 0.03, 0.01, 0.0, 0.0, 0.01, 0.04,
    ];
    // At the no-dropout limit (a or s = 0, e^−∞) only (ln r, ln α) vary: every customer is
    // alive for sure under every draw (the pair-level shortcut of the bands).
    let cov_limit = [
        0.01, 0.002, 0.0, 0.0, 0.002, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let interior = [0.5f64.ln(), 20f64.ln(), 0.8f64.ln(), 3f64.ln()];
    // Heavy-tailed: a → 0, where the expectations come from the tables of (α + v)^(a − 1),
    // as do most interior draws of a near 0.8.
    let small_a = [0.5f64.ln(), 20f64.ln(), 0.01f64.ln(), 0.05f64.ln()];
    let limit = [0.5f64.ln(), 20f64.ln(), f64::NEG_INFINITY, 3f64.ln()];
    // a around 1 (ln a with standard deviation 0.02): about half the draws lie within
    // POWERS_MIN_B of 1 and take the logarithmic form, the others the tables, draw by draw.
    let near_one = [0.5f64.ln(), 20f64.ln(), 0.0, 3f64.ln()];
    let cov_near = [
        0.01, 0.002, 0.0, 0.0, 0.002, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0004, 0.002, 0.0, 0.0, 0.002,
        0.04,
    ];
    let cases = ModelKind::ALL.into_iter().flat_map(|k| {
        [
            (k, interior, cov4),
            (k, small_a, cov4),
            (k, limit, cov_limit),
            (k, near_one, cov_near),
        ]
    });
    for (kind, theta, cov) in cases {
        let pd: Vec<PurchaseModel> = draw_log_params(&theta, &cov, 60, 5)
            .unwrap()
            .iter()
            .map(|th| PurchaseModel::from_log_params(kind, th))
            .collect();
        if theta == near_one && kind != ModelKind::ParetoNbd {
            let tabled = pd
                .iter()
                .filter(|p| p.expectation_bg().is_some_and(|b| b.powers_apply()))
                .count();
            assert!(
                (10..=50).contains(&tabled),
                "{kind}: {tabled} of 60 draws tabled"
            );
        }
        let iv = customer_intervals(&pd, Some(&gd), 30.0, &x, &tx, &t, &m, &opts);
        for i in 0..x.len() {
            let per_draw = |f: &dyn Fn(usize) -> f64| {
                let mut v: Vec<f64> = (0..pd.len()).map(f).collect();
                v.sort_unstable_by(f64::total_cmp);
                (quantile(&v, 0.05), quantile(&v, 0.95))
            };
            let pa = per_draw(&|s| pd[s].prob_alive(x[i], tx[i], t[i]));
            let ep = per_draw(&|s| pd[s].conditional_expected_purchases(30.0, x[i], tx[i], t[i]));
            let clv = per_draw(&|s| {
                crate::models::discounted_clv(&pd[s], &gd[s], x[i], tx[i], t[i], m[i], &opts)
            });
            let band = |b: &Band| (b.p05[i], b.p95[i]);
            for (name, got, want) in [
                ("prob_alive", band(&iv.prob_alive), pa),
                ("expected_purchases", band(&iv.expected_purchases), ep),
                ("clv", band(iv.clv.as_ref().unwrap()), clv),
            ] {
                for (g, w) in [(got.0, want.0), (got.1, want.1)] {
                    assert!(
                        (g - w).abs() <= 1e-10 * w.abs().max(1e-6),
                        "{kind} {name} of customer {i} ({}, {}, {}): {g} vs {w}",
                        x[i],
                        tx[i],
                        t[i]
                    );
                }
            }
        }
    }
}

#[test]
fn tasks_cover_every_pair_once_within_their_limits() {
    // Pair k holds sizes[k] customers: many small pairs, one larger than a task, a run of
    // pairs just under the customer limit.
    let mut sizes = vec![1usize; 1000];
    sizes[10] = CUSTOMERS_PER_TASK + 5;
    sizes.extend(std::iter::repeat_n(CUSTOMERS_PER_TASK / 2, 5));
    sizes.extend([0, 0, 3]);
    let mut start = vec![0];
    for s in &sizes {
        start.push(start.last().unwrap() + s);
    }
    let tasks = task_pairs(&start);
    let mut next = 0;
    for t in &tasks {
        assert_eq!(t.start, next, "tasks are consecutive");
        assert!(!t.is_empty());
        assert!(t.len() <= PAIRS_PER_TASK);
        let customers = start[t.end] - start[t.start];
        assert!(
            customers <= CUSTOMERS_PER_TASK || t.len() == 1,
            "task {t:?} holds {customers} customers"
        );
        next = t.end;
    }
    assert_eq!(next, sizes.len(), "every pair in a task");
    // Greedy: each task stops only where the next pair would break a limit.
    for t in &tasks[..tasks.len() - 1] {
        let with_next = start[t.end + 1] - start[t.start];
        assert!(t.len() == PAIRS_PER_TASK || with_next > CUSTOMERS_PER_TASK);
    }
    // The large pair is a task of its own; the half-limit pairs go two by two.
    assert!(tasks.contains(&(10..11)));
    assert!(tasks.contains(&(1001..1003)));
    assert!(task_pairs(&[0]).is_empty());
}
