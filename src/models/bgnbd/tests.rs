use super::*;
use crate::models::special::hyp2f1;
use crate::models::testdata;
use crate::models::{
    batch_discounted_clv, batch_expected_purchases, batch_expected_spend, batch_prob_alive,
};
use crate::models::{fit_gamma_gamma, ClvOptions, GammaGammaParams};

fn rel_close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got - want).abs() <= rel * want.abs() + abs
}

const CDNOW: BgNbdParams = BgNbdParams {
    r: 0.2426,
    alpha: 4.4135,
    a: 0.7929,
    b: 2.4258,
};

#[test]
fn cdnow_published_parameters_and_loglik() {
    let s = testdata::cdnow_sample_summary();
    let t0 = std::time::Instant::now();
    let rep = fit_bgnbd(&s.frequency, &s.recency, &s.t, &FitOptions::default()).unwrap();
    eprintln!("CDNOW BG/NBD fit: {rep:?} in {:?}", t0.elapsed());
    assert!(rep.converged, "{rep:?}");
    assert_eq!(rep.customers, 2357);
    let p = rep.params;
    // Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    assert!((p.r - 0.243).abs() < 0.0005, "{p:?}");
    assert!((p.alpha - 4.414).abs() < 0.0005, "{p:?}");
    assert!((p.a - 0.793).abs() < 0.0005, "{p:?}");
    assert!((p.b - 2.426).abs() < 0.0005, "{p:?}");
    assert!(
        (rep.log_likelihood - -9582.4).abs() < 0.05,
        "{}",
        rep.log_likelihood
    );
    // The reported log-likelihood (from the fit's objective in rescaled time) equals a direct
    // pass over the customers in weeks.
    let direct = log_likelihood_and_gradient(&p, &s.frequency, &s.recency, &s.t).0;
    assert!(
        (rep.log_likelihood - direct).abs() <= 1e-10 * direct.abs(),
        "{} vs {direct}",
        rep.log_likelihood
    );
    // lifetimes 0.11.3 on the same summary (tests/fixtures/lifetimes/cdnow_sample_weeks_reference.json).
    let j = testdata::read_json("fixtures/lifetimes/cdnow_sample_weeks_reference.json");
    for (name, got) in [("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)] {
        let want = j["bgnbd"][name].as_f64().unwrap();
        assert!(
            rel_close(got, want, 1e-3, 0.0),
            "{name}: {got} vs lifetimes {want}"
        );
    }
}

#[test]
fn lifetimes_fixture_per_customer_values() {
    let (h, rows) = testdata::read_csv("fixtures/lifetimes/synthetic_summary.csv");
    let (x, tx, t, m) = (
        testdata::column(&h, &rows, "frequency"),
        testdata::column(&h, &rows, "recency"),
        testdata::column(&h, &rows, "T"),
        testdata::column(&h, &rows, "monetary_value"),
    );
    let (he, exp) = testdata::read_csv("fixtures/lifetimes/synthetic_expected.csv");
    assert_eq!(exp.len(), x.len());
    for (i, (a, b)) in rows.iter().zip(&exp).enumerate() {
        assert_eq!(a[0], b[0], "row {i}: customer ids differ");
    }
    let j = testdata::read_json("fixtures/lifetimes/synthetic_params.json");
    let f = |k: &str, n: &str| j[k][n].as_f64().unwrap();
    let bg = BgNbdParams {
        r: f("bgnbd", "r"),
        alpha: f("bgnbd", "alpha"),
        a: f("bgnbd", "a"),
        b: f("bgnbd", "b"),
    };
    let gg = GammaGammaParams {
        p: f("gamma_gamma", "p"),
        q: f("gamma_gamma", "q"),
        v: f("gamma_gamma", "v"),
    };

    let opts = ClvOptions::default(); // 12 months, 1 %/month, 30-day months, days, margin 1
    let got: [(&str, Vec<f64>); 5] = [
        ("p_alive", batch_prob_alive(&bg, &x, &tx, &t).unwrap()),
        (
            "exp_purchases_30",
            batch_expected_purchases(&bg, 30.0, 1.0, &x, &tx, &t).unwrap(),
        ),
        (
            "exp_purchases_90",
            batch_expected_purchases(&bg, 90.0, 1.0, &x, &tx, &t).unwrap(),
        ),
        ("expected_spend", batch_expected_spend(&gg, &x, &m).unwrap()),
        (
            "clv_12m",
            batch_discounted_clv(&bg, &gg, &x, &tx, &t, &m, &opts).unwrap(),
        ),
    ];
    for (name, values) in &got {
        let want = testdata::column(&he, &exp, name);
        let mut worst = 0.0_f64;
        for i in 0..want.len() {
            let err = (values[i] - want[i]).abs() / (want[i].abs() + 1e-12);
            worst = worst.max(err);
            assert!(
                rel_close(values[i], want[i], 1e-6, 1e-12),
                "{name} of {}: ours {} vs lifetimes {}",
                rows[i][0],
                values[i],
                want[i]
            );
        }
        eprintln!("{name}: worst relative difference to lifetimes {worst:.2e}");
    }
}

#[test]
fn lifetimes_fixture_fit() {
    let (h, rows) = testdata::read_csv("fixtures/lifetimes/synthetic_summary.csv");
    let (x, tx, t, m) = (
        testdata::column(&h, &rows, "frequency"),
        testdata::column(&h, &rows, "recency"),
        testdata::column(&h, &rows, "T"),
        testdata::column(&h, &rows, "monetary_value"),
    );
    let j = testdata::read_json("fixtures/lifetimes/synthetic_params.json");
    let rep = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged, "{rep:?}");
    let p = rep.params;
    for (name, got) in [("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)] {
        let want = j["bgnbd"][name].as_f64().unwrap();
        assert!(
            rel_close(got, want, 1e-3, 0.0),
            "{name}: {got} vs lifetimes {want}"
        );
    }
    let want_ll = j["bgnbd"]["total_log_likelihood"].as_f64().unwrap();
    assert!(
        rep.log_likelihood >= want_ll - 1e-6,
        "{} < lifetimes {want_ll}",
        rep.log_likelihood
    );
    assert!(
        (rep.log_likelihood - want_ll).abs() < 1e-3,
        "{} vs {want_ll}",
        rep.log_likelihood
    );

    let g = fit_gamma_gamma(&x, &m, &FitOptions::default()).unwrap();
    assert!(g.converged, "{g:?}");
    assert_eq!(
        g.customers as u64,
        j["gamma_gamma"]["n_customers"].as_u64().unwrap()
    );
    for (name, got) in [("p", g.params.p), ("q", g.params.q), ("v", g.params.v)] {
        let want = j["gamma_gamma"][name].as_f64().unwrap();
        assert!(
            rel_close(got, want, 1e-3, 0.0),
            "{name}: {got} vs lifetimes {want}"
        );
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let x = [0.0, 1.0, 2.0, 7.0, 40.0, 5000.0, 5000.0, 1.0];
    let tx = [0.0, 0.5, 30.0, 35.0, 38.0, 29000.0, 12.0, 0.0];
    let t = [10.0, 39.0, 39.0, 39.0, 39.0, 30000.0, 30000.0, 5.0];
    for p in [
        CDNOW,
        BgNbdParams {
            r: 3.0,
            alpha: 250.0,
            a: 0.05,
            b: 40.0,
        },
        BgNbdParams {
            r: 0.01,
            alpha: 0.2,
            a: 5.0,
            b: 0.3,
        },
    ] {
        let (ll, g) = log_likelihood_and_gradient(&p, &x, &tx, &t);
        assert!(
            ll.is_finite() && g.iter().all(|v| v.is_finite()),
            "{p:?}: {ll} {g:?}"
        );
        let direct: f64 = (0..x.len())
            .map(|i| p.log_likelihood(x[i], tx[i], t[i]))
            .sum();
        assert!((ll - direct).abs() < 1e-9 * direct.abs());
        let nat = [p.r, p.alpha, p.a, p.b];
        let mk = |v: [f64; 4]| BgNbdParams {
            r: v[0],
            alpha: v[1],
            a: v[2],
            b: v[3],
        };
        for k in 0..4 {
            // Fourth-order central difference: truncation ~h⁴, rounding ~1e-16·|ll|/h.
            let h = 1e-3 * nat[k];
            let at = |d: f64| {
                let mut v = nat;
                v[k] += d;
                log_likelihood_and_gradient(&mk(v), &x, &tx, &t).0
            };
            let fd = (8.0 * (at(h) - at(-h)) - (at(2.0 * h) - at(-2.0 * h))) / (12.0 * h);
            let noise = 1e-14 * ll.abs() / h;
            assert!(
                (fd - g[k]).abs() < 1e-7 * g[k].abs() + noise,
                "{p:?} k={k}: fd {fd} vs {}",
                g[k]
            );
        }
    }
}

#[test]
fn large_customers_stay_finite() {
    let p = CDNOW;
    for &(x, tx, t) in &[
        (5000.0, 29000.0, 30000.0),
        (5000.0, 1.0, 30000.0),
        (20000.0, 30000.0, 30000.0),
        (1.0, 0.0, 30000.0),
    ] {
        let ll = p.log_likelihood(x, tx, t);
        assert!(ll.is_finite(), "ll({x},{tx},{t}) = {ll}");
        let pa = p.prob_alive(x, tx, t);
        assert!((0.0..=1.0).contains(&pa), "p_alive = {pa}");
        for h in [1.0, 30.0, 365.0, 1e5] {
            let e = p.conditional_expected_purchases(h, x, tx, t);
            assert!(e.is_finite() && e >= 0.0, "E({h}|{x},{tx},{t}) = {e}");
        }
    }
    // Last purchase at T with x = 5000 over 30000 units: alive, and buying at about x/T.
    assert!(p.prob_alive(5000.0, 30000.0, 30000.0) > 0.99);
    let e = p.conditional_expected_purchases(100.0, 5000.0, 30000.0, 30000.0);
    assert!((e / (100.0 * 5000.0 / 30000.0) - 1.0).abs() < 0.02, "{e}");
    // Silent for 29 999 units after 5000 purchases: certainly gone.
    assert!(p.prob_alive(5000.0, 1.0, 30000.0) < 1e-100);
}

/// Eq. 9 by the plain hypergeometric series (no Euler transform), for z < 1/2.
fn eq9_direct(p: &BgNbdParams, t: f64) -> f64 {
    let z = t / (p.alpha + t);
    (p.a + p.b - 1.0) / (p.a - 1.0)
        * (1.0 - (p.alpha / (p.alpha + t)).powf(p.r) * hyp2f1(p.r, p.b, p.a + p.b - 1.0, z))
}

/// Eq. 10 by the plain series, for moderate x and z < 1/2.
fn eq10_direct(p: &BgNbdParams, t: f64, x: f64, tx: f64, big_t: f64) -> f64 {
    let BgNbdParams { r, alpha, a, b } = *p;
    let z = t / (alpha + big_t + t);
    let num = (a + b + x - 1.0) / (a - 1.0)
        * (1.0
            - ((alpha + big_t) / (alpha + big_t + t)).powf(r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1.0, z));
    let d = if x > 0.0 { 1.0 } else { 0.0 };
    num / (1.0 + d * a / (b + x - 1.0) * ((alpha + big_t) / (alpha + tx)).powf(r + x))
}

#[test]
fn expectations_match_the_untransformed_formulas() {
    for p in [
        CDNOW,
        BgNbdParams {
            r: 0.5,
            alpha: 20.0,
            a: 1.7,
            b: 3.0,
        },
        BgNbdParams {
            r: 2.0,
            alpha: 3.0,
            a: 0.3,
            b: 0.4,
        },
    ] {
        for t in [0.5, 2.0, 3.0] {
            let want = eq9_direct(&p, t);
            let got = p.expected_purchases_new(t);
            assert!(
                rel_close(got, want, 1e-11, 1e-15),
                "{p:?} t={t}: {got} vs {want}"
            );
        }
        for &(x, tx, big_t) in &[
            (0.0, 0.0, 10.0),
            (1.0, 5.0, 30.0),
            (4.0, 20.0, 39.0),
            (12.0, 38.0, 39.0),
        ] {
            let t = 10.0;
            let want = eq10_direct(&p, t, x, tx, big_t);
            let got = p.conditional_expected_purchases(t, x, tx, big_t);
            assert!(
                rel_close(got, want, 1e-10, 1e-15),
                "{p:?} ({x},{tx},{big_t}): {got} vs {want}"
            );
        }
    }
    // a = 1 exactly: the limit branch agrees with a → 1 from either side.
    let one = BgNbdParams {
        r: 0.5,
        alpha: 20.0,
        a: 1.0,
        b: 3.0,
    };
    let e1 = one.conditional_expected_purchases(50.0, 3.0, 40.0, 60.0);
    for a in [1.0 - 1e-7, 1.0 + 1e-7] {
        let e = BgNbdParams { a, ..one }.conditional_expected_purchases(50.0, 3.0, 40.0, 60.0);
        assert!(rel_close(e, e1, 1e-6, 0.0), "{e} vs {e1}");
    }
    // Long horizon for a brand-new customer (z close to 1) still finite and increasing.
    let p = CDNOW;
    let (e1, e2) = (p.expected_purchases_new(1e4), p.expected_purchases_new(2e4));
    assert!(e1.is_finite() && e2 > e1, "{e1} {e2}");
}

#[test]
fn expectations_from_tabulated_powers_match_the_logarithmic_form() {
    // The interval draws' form, (1 − P) − P·B·U from (α+T)^B and (α+T+t)^−B, against
    // expected_purchases_if_alive_many, over heavy-tailed (a → 0), CDNOW-like and a > 1
    // parameters, a down to the |a − 1| ≥ POWERS_MIN_B rule on both sides of 1, young and
    // old customers and month ends up to a year (z up to 0.98).
    let ts: Vec<f64> = (1..=12).map(|k| k as f64 * 30.0).collect();
    let mut checked = 0;
    for p in [
        BgNbdParams {
            r: 0.34,
            alpha: 26.0,
            a: 0.00082,
            b: 0.037,
        },
        BgNbdParams { a: 0.75, ..CDNOW },
        BgNbdParams {
            r: 0.5,
            alpha: 20.0,
            a: 1.25,
            b: 3.0,
        },
        BgNbdParams {
            r: 2.0,
            alpha: 3.0,
            a: 4.0,
            b: 40.0,
        },
        BgNbdParams {
            r: 0.5,
            alpha: 2.0,
            a: 0.01,
            b: 1e4,
        },
        CDNOW,
        BgNbdParams { a: 0.95, ..CDNOW },
        BgNbdParams {
            a: 1.0 - POWERS_MIN_B,
            ..CDNOW
        },
        BgNbdParams {
            r: 0.5,
            alpha: 0.4,
            a: 1.0 + POWERS_MIN_B,
            b: 3.0,
        },
        BgNbdParams {
            r: 2.0,
            alpha: 3.0,
            a: 1.1,
            b: 40.0,
        },
    ] {
        assert!(p.powers_apply(), "{p:?}");
        for &(x, big_t) in &[
            (0.0, 0.0),
            (0.0, 400.0),
            (1.0, 3.0),
            (7.0, 90.0),
            (300.0, 911.0),
        ] {
            let mut want = vec![0.0; ts.len()];
            p.expected_purchases_if_alive_many(&ts, x, big_t, &mut want);
            let base = p.alpha + big_t;
            let b = p.a - 1.0;
            let q_inv: Vec<f64> = ts.iter().map(|t| 1.0 / (base + t).powf(b)).collect();
            let inv: Vec<f64> = ts.iter().map(|t| 1.0 / (base + t)).collect();
            let mut got = vec![0.0; ts.len()];
            p.expected_purchases_if_alive_from_powers(&ts, x, base.powf(b), &q_inv, &inv, &mut got);
            // Both forms lose about b/(r+x) ulp where b ≫ r + x (U and z nearly cancel; at
            // b = 1e4 they are 1.6e-11 and 1.8e-11 from mpmath's value at t = 60), and the
            // powers' 1 − P about 5e-14/|B| (see POWERS_MIN_B).
            let rel = (1e-12 * (p.b / (p.r + x)).max(1.0)).max(2e-13 / (p.a - 1.0).abs());
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    rel_close(*g, *w, rel, 0.0),
                    "{p:?} x={x} T={big_t} t={}: {g} vs {w}",
                    ts[k]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10 * 5 * 12);
    // Nearer to a = 1 the powers' (1 − P)/B would cancel: the rule sends those to the
    // logarithms.
    assert!(!BgNbdParams { a: 0.99, ..CDNOW }.powers_apply());
    assert!(!BgNbdParams { a: 1.0, ..CDNOW }.powers_apply());
    assert!(!BgNbdParams { a: 1.01, ..CDNOW }.powers_apply());
    assert!(!BgNbdParams { a: 0.0, ..CDNOW }.powers_apply());
}

#[test]
fn invalid_input_names_row_and_value() {
    let o = FitOptions::default();
    let err = fit_bgnbd(&[1.0, 2.5], &[1.0, 1.0], &[2.0, 2.0], &o).unwrap_err();
    assert_eq!(err.to_string(), "customer at row 1: frequency = 2.5 is invalid: must be a whole number of repeat purchase periods");
    let err = fit_bgnbd(&[1.0, 1.0], &[1.0, 3.0], &[2.0, 2.0], &o).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("customer at row 1: recency = 3 is invalid: is larger than T"),
        "{err}"
    );
    let err = fit_bgnbd(&[-1.0], &[0.0], &[2.0], &o).unwrap_err();
    assert!(err.to_string().contains("frequency = -1"), "{err}");
    let err = fit_bgnbd(&[1.0], &[f64::NAN], &[2.0], &o).unwrap_err();
    assert!(err.to_string().contains("recency = NaN"), "{err}");
    let err = fit_bgnbd(&[1.0], &[1.0, 2.0], &[2.0], &o).unwrap_err();
    assert!(matches!(err, ModelError::LengthMismatch { .. }), "{err}");
    let err = fit_bgnbd(&[], &[], &[], &o).unwrap_err();
    assert!(matches!(err, ModelError::Empty { .. }), "{err}");
    let err = fit_bgnbd(&[1.0], &[1.0], &[2.0], &o.with_penalizer_coef(-1.0)).unwrap_err();
    assert!(err.to_string().contains("penalizer_coef = -1"), "{err}");
}

#[test]
fn degenerate_data_never_gives_silent_numbers() {
    let o = FitOptions::default();
    // Everybody bought once.
    let err = fit_bgnbd(&[0.0; 50], &[0.0; 50], &[10.0; 50], &o).unwrap_err();
    assert!(matches!(err, ModelError::NotIdentified { .. }), "{err}");
    assert!(err.to_string().contains("all frequencies are 0"), "{err}");
    // One customer: either not converged with a message, or finite parameters.
    let rep = fit_bgnbd(&[2.0], &[5.0], &[10.0], &o).unwrap();
    let p = rep.params;
    assert!(
        [p.r, p.alpha, p.a, p.b, rep.log_likelihood]
            .iter()
            .all(|v| v.is_finite()),
        "{rep:?}"
    );
    if !rep.converged {
        assert!(!rep.message.is_empty());
        let err = rep.clone().into_converged("BG/NBD").unwrap_err();
        assert!(err.to_string().contains("try penalizer_coef"), "{err}");
    }
    // With a penalty the same customer gives a converged, interior fit.
    let rep = fit_bgnbd(&[2.0], &[5.0], &[10.0], &o.with_penalizer_coef(0.01)).unwrap();
    assert!(rep.converged, "{rep:?}");
    // Too few iterations: reported, not hidden.
    let s = testdata::cdnow_sample_summary();
    let rep = fit_bgnbd(&s.frequency, &s.recency, &s.t, &o.with_max_iter(2)).unwrap();
    assert!(
        !rep.converged && rep.message.contains("maximum number of iterations"),
        "{rep:?}"
    );
}

#[test]
fn collapsing_and_thread_count_do_not_change_the_likelihood() {
    let s = testdata::cdnow_sample_summary();
    let rows = Rows::build(&s.frequency, &s.recency, &s.t, 1.0, Variant::Bg);
    assert!(rows.w.len() < s.frequency.len());
    let (ll, _) = rows.loglik_grad(&CDNOW);
    let direct: f64 = (0..s.frequency.len())
        .map(|i| CDNOW.log_likelihood(s.frequency[i], s.recency[i], s.t[i]))
        .sum();
    assert!(
        (ll - direct).abs() < 1e-8 * direct.abs(),
        "{ll} vs {direct}"
    );
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| rows.loglik_grad(&CDNOW));
    assert_eq!(one, rows.loglik_grad(&CDNOW));
}

#[test]
fn recovers_simulated_parameters() {
    // 20 000 simulated customers in days (independent of lifetimes): the true parameters must
    // be recovered within loose tolerances (several standard errors at this size; a and b are
    // the least precisely identified).
    let truth = BgNbdParams {
        r: 0.5,
        alpha: 20.0,
        a: 0.8,
        b: 3.0,
    };
    let (x, tx, t) = testdata::simulate_bgnbd(20_000, &truth, 730.0, 7);
    let rep = fit_bgnbd(&x, &tx, &t, &FitOptions::default()).unwrap();
    assert!(rep.converged, "{rep:?}");
    let p = rep.params;
    assert!(rel_close(p.r, truth.r, 0.05, 0.0), "{p:?}");
    assert!(rel_close(p.alpha, truth.alpha, 0.10, 0.0), "{p:?}");
    assert!(rel_close(p.a, truth.a, 0.15, 0.0), "{p:?}");
    assert!(rel_close(p.b, truth.b, 0.25, 0.0), "{p:?}");
}

/// Whole-day `(x, t_x, T)` of `n` simulated customers: what the pipeline fits.
fn whole_days(n: usize, truth: &BgNbdParams, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (x, tx, t) = testdata::simulate_bgnbd(n, truth, 730.0, seed);
    let floor = |v: Vec<f64>| v.into_iter().map(f64::floor).collect::<Vec<_>>();
    (x, floor(tx), floor(t))
}

/// The warm-start sample takes every k-th customer at weight k and the customers of the most
/// purchases at weight 1: its weights add up to about the customers, and a guest id with
/// hundreds of purchase days is in it once, wherever it stands.
#[test]
fn warm_start_sample_keeps_the_heaviest_customers_once() {
    let truth = BgNbdParams {
        r: 0.5,
        alpha: 20.0,
        a: 0.8,
        b: 3.0,
    };
    let (mut x, mut tx, mut t) = whole_days(40_000, &truth, 23);
    // The guest: 700 purchase days, at a place the every-10th sample skips.
    let guest = 12_345;
    (x[guest], tx[guest], t[guest]) = (700.0, 729.0, 730.0);
    let opts = FitOptions::default().with_warm_start_customers(4_000);
    let (d, customers) = opts.subsample([&x, &tx, &t]).expect("40 000 > 4 × 4 000");
    let total: u32 = d.counts.iter().sum();
    assert!((39_000..=41_000).contains(&total), "{total}");
    assert!((3_900..=4_100).contains(&customers), "{customers}");
    let at = d
        .rows
        .iter()
        .position(|r| *r == [700.0, 729.0, 730.0])
        .expect("the guest is sampled");
    assert_eq!(d.counts[at], 1);
    // Every customer of a higher frequency than the 100th highest is in it at weight 1.
    let mut sorted = x.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let threshold = sorted[crate::models::HEAVIEST_SAMPLED - 1];
    let heavy = x.iter().filter(|&&v| v > threshold).count();
    let heavy_sampled: u32 = d
        .rows
        .iter()
        .zip(&d.counts)
        .filter(|(r, _)| r[0] > threshold)
        .map(|(_, &c)| c)
        .sum();
    assert_eq!(heavy_sampled as usize, heavy);
    // And the fit from that sample reaches the cold fit's optimum.
    let cold = fit_bgnbd(
        &x,
        &tx,
        &t,
        &FitOptions::default().with_warm_start_customers(0),
    )
    .unwrap();
    let warm = fit_bgnbd(&x, &tx, &t, &opts).unwrap();
    assert!(
        warm.message.contains("over all customers, started from"),
        "{}",
        warm.message
    );
    assert!(
        (cold.log_likelihood - warm.log_likelihood).abs() < 1e-6,
        "{} vs {}",
        cold.log_likelihood,
        warm.log_likelihood
    );
}

#[test]
fn warm_start_reaches_the_cold_optimum() {
    // 40 000 customers, warm-started from every 10th: the same optimum as a cold start (both
    // stop at the same gradient test), in fewer passes over all customers.
    let interior = BgNbdParams {
        r: 0.5,
        alpha: 20.0,
        a: 0.8,
        b: 3.0,
    };
    let (x, tx, t) = whole_days(40_000, &interior, 17);
    let cold_opts = FitOptions::default().with_warm_start_customers(0);
    let warm_opts = FitOptions::default().with_warm_start_customers(4_000);
    type Fit =
        fn(&[f64], &[f64], &[f64], &FitOptions) -> Result<FitReport<BgNbdParams>, ModelError>;
    let mbg =
        |x: &[f64], tx: &[f64], t: &[f64], o: &FitOptions| fit_variant(x, tx, t, o, Variant::Mbg);
    for (name, fit) in [("bgnbd", fit_bgnbd as Fit), ("mbgnbd", mbg as Fit)] {
        let cold = fit(&x, &tx, &t, &cold_opts).unwrap();
        let warm = fit(&x, &tx, &t, &warm_opts).unwrap();
        assert!(
            cold.converged && warm.converged,
            "{name}: {cold:?} {warm:?}"
        );
        assert!(!cold.message.contains("subsample"), "{}", cold.message);
        // Every 10th customer, and the 100 of the most purchases at weight 1.
        let sampled = testdata::sampled_customers(&warm.message);
        assert!(
            sampled.is_some_and(|n| (3900..=4100).contains(&n)),
            "{}",
            warm.message
        );
        let (c, w) = (cold.params, warm.params);
        for (k, (a, b)) in [(c.r, w.r), (c.alpha, w.alpha), (c.a, w.a), (c.b, w.b)]
            .into_iter()
            .enumerate()
        {
            assert!(
                rel_close(b, a, 1e-4, 0.0),
                "{name} param {k}: {c:?} vs {w:?}"
            );
        }
        assert!(
            (cold.log_likelihood - warm.log_likelihood).abs() < 1e-6,
            "{name}: {} vs {}",
            cold.log_likelihood,
            warm.log_likelihood
        );
        assert!(
            warm.iterations < cold.iterations,
            "{name}: {} vs {}",
            warm.iterations,
            cold.iterations
        );
    }
    // A warm start on data without dropout still ends at the reported NBD boundary.
    let no_dropout = BgNbdParams { a: 0.0, ..interior };
    let (x, tx, t) = whole_days(40_000, &no_dropout, 19);
    let cold = fit_bgnbd(&x, &tx, &t, &cold_opts).unwrap();
    let warm = fit_bgnbd(&x, &tx, &t, &warm_opts).unwrap();
    assert!(
        warm.boundary
            .as_deref()
            .is_some_and(|b| b.contains("no dropout")),
        "{warm:?}"
    );
    assert!(
        rel_close(warm.params.r, cold.params.r, 1e-4, 0.0),
        "{cold:?} vs {warm:?}"
    );
    assert!(
        rel_close(warm.params.alpha, cold.params.alpha, 1e-4, 0.0),
        "{cold:?} vs {warm:?}"
    );
    // The limit's log-likelihood (from the NBD fit's objective in rescaled time) equals a
    // direct pass over the customers at a = 0.
    for rep in [&cold, &warm] {
        let direct = log_likelihood_and_gradient(&rep.params, &x, &tx, &t).0;
        assert!(
            (rep.log_likelihood - direct).abs() <= 1e-10 * direct.abs(),
            "{} vs {direct}",
            rep.log_likelihood
        );
    }
}

/// The derivative in `a` at the no-dropout boundary (`Rows::no_dropout_slope`) equals a finite
/// difference of the customers' log-likelihoods at small `a`, for both variants and `b` from
/// small to large. (On data without dropout, where `a·Rᵢ/b` stays small at the step used.)
#[test]
fn no_dropout_slope_matches_finite_differences() {
    let truth = BgNbdParams {
        r: 0.5,
        alpha: 20.0,
        a: 0.0,
        b: 3.0,
    };
    let (x, tx, t) = whole_days(2_000, &truth, 29);
    let (r, alpha) = (0.6, 15.0);
    for variant in [Variant::Bg, Variant::Mbg] {
        let rows = Rows::build(&x, &tx, &t, 1.0, variant);
        let ratios = rows.dropout_ratios(r, alpha);
        for b in [0.05, 0.7, 3.0, 40.0, 900.0] {
            let eps = 1e-9 * b;
            // Per customer, then summed: the differences are far below the sum's rounding.
            let fd: f64 = (0..x.len())
                .map(|i| {
                    let ll = |a: f64| {
                        BgNbdParams { r, alpha, a, b }.log_likelihood_of(variant, x[i], tx[i], t[i])
                    };
                    (ll(2.0 * eps) - ll(eps)) / eps
                })
                .sum();
            let (pos, neg) = rows.no_dropout_slope(&ratios, b);
            let d = pos - neg;
            assert!(
                (d - fd).abs() <= 1e-3 * (pos + neg),
                "{variant:?} b={b}: slope {d} ({pos} - {neg}) vs finite difference {fd}"
            );
        }
    }
}

/// The heavy-tailed customers of `tests/fixtures/ridge` (the scale benchmark's generator at
/// 1.5 M rows): from lifetimes' start BG/NBD runs to the no-dropout ridge at a large `b`, 117
/// log-likelihood units below the maximum at a small `a` and `b` (SciPy's Nelder-Mead from both
/// starts, `make_fixture.py`). The first-order test finds the ridge is no maximum and the
/// restart reaches the reference maximum, cold and warm-started; for MBG/NBD the reference's
/// best is the ridge itself, which custval matches within the boundary test's margin.
#[test]
fn a_fit_stopped_on_the_no_dropout_ridge_where_it_is_no_maximum_is_restarted() {
    let (h, rows) = testdata::read_csv("fixtures/ridge/summary.csv");
    let col = |name: &str| testdata::column(&h, &rows, name);
    let (x, tx, t) = (col("frequency"), col("recency"), col("T"));
    let reference = testdata::read_json("fixtures/ridge/reference.json");
    for (variant, name) in [(Variant::Bg, "bgnbd"), (Variant::Mbg, "mbgnbd")] {
        let best = &reference["models"][name]["maximum"];
        let ridge = &reference["models"][name]["from_lifetimes_start"];
        let ref_ll = best["log_likelihood"].as_f64().unwrap();
        let ridge_ll = ridge["log_likelihood"].as_f64().unwrap();
        for (warm, opts) in [
            (false, FitOptions::default().with_warm_start_customers(0)),
            (true, FitOptions::default().with_warm_start_customers(5_000)),
        ] {
            let fit = fit_variant(&x, &tx, &t, &opts, variant).unwrap();
            assert!(fit.converged, "{name}: {fit:?}");
            match variant {
                Variant::Bg => {
                    assert!(
                        fit.message.contains("had stopped on the no-dropout ridge"),
                        "{name}: {}",
                        fit.message
                    );
                    // On this fixture the 5,000-customer subsample's restart runs into the
                    // corner a, b → 0, and the fit is redone from the cold start.
                    assert_eq!(
                        fit.message.contains("ended in the corner"),
                        warm,
                        "{}",
                        fit.message
                    );
                    assert!(ref_ll > ridge_ll + 100.0, "{ref_ll} vs {ridge_ll}");
                    assert!(fit.boundary.is_none(), "{fit:?}");
                    assert!(
                        (fit.log_likelihood - ref_ll).abs() < 1e-3,
                        "{name}: {} vs the reference maximum {ref_ll}: {fit:?}",
                        fit.log_likelihood
                    );
                    let p = fit.params;
                    for (got, key) in [(p.r, "r"), (p.alpha, "alpha"), (p.a, "a"), (p.b, "b")] {
                        let want = best[key].as_f64().unwrap();
                        assert!(rel_close(got, want, 1e-3, 0.0), "{key}: {got} vs {want}");
                    }
                }
                Variant::Mbg => assert!(
                    (fit.log_likelihood - ref_ll).abs() < BOUNDARY_LL_GAP,
                    "{name}: {} vs the reference {ref_ll}",
                    fit.log_likelihood
                ),
            }
        }
    }
}

/// The restart off the no-dropout ridge keeps the ridge's fit when the restart does not
/// converge (here: within 3 iterations), and says why; with the usual budget it moves.
#[test]
fn a_restart_off_the_ridge_that_does_not_converge_keeps_the_ridge_fit() {
    let (h, csv) = testdata::read_csv("fixtures/ridge/summary.csv");
    let col = |name: &str| testdata::column(&h, &csv, name);
    let (x, tx, t) = (col("frequency"), col("recency"), col("T"));
    let scale = 1.0 / t.iter().cloned().fold(0.0, f64::max);
    let rows = Rows::build(&x, &tx, &t, scale, Variant::Bg);
    let objective = mean_objective(&rows, 0.0);
    let interior = |v: &[f64]| {
        let p = from_log(v);
        p.a / (p.a + p.b) >= NO_DROPOUT_SHARE
    };
    let opts = FitOptions::default();
    let ridge = minimize_bfgs_then_newton(
        &objective,
        &[0.1; 4],
        None,
        opts.max_iter,
        opts.tolerance,
        RIDGE_CHECK_ITER,
        interior,
    );
    assert!(!interior(&ridge.x), "{ridge:?}");
    let (kept, note) = escape_no_dropout_ridge(
        &rows,
        &objective,
        ridge.clone(),
        &opts.with_max_iter(3),
        interior,
    );
    assert_eq!(kept.x, ridge.x);
    let note = note.expect("the ridge is no maximum here");
    assert!(
        note.contains("(it did not converge: the ridge's fit is kept)"),
        "{note}"
    );
    let (moved, note) = escape_no_dropout_ridge(&rows, &objective, ridge.clone(), &opts, interior);
    assert!(interior(&moved.x) && moved.f < ridge.f, "{moved:?}");
    assert!(!note.expect("restarted").contains("kept"));
}
