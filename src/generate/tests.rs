use super::*;
use std::collections::HashSet;

/// Epoch day of a proleptic Gregorian date (Hinnant's `days_from_civil`), written
/// independently of the constants it checks.
fn days_from_civil(y: i32, m: i32, d: i32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Number of rows of each customer, in attribute order (rows must be grouped by customer).
fn rows_per_customer(tx: &Transactions, attrs: &Attributes) -> Vec<usize> {
    let mut counts = Vec::with_capacity(attrs.customer_id.len());
    let mut row = 0;
    for id in &attrs.customer_id {
        let begin = row;
        while row < tx.len() && &tx.customer_id[row] == id {
            row += 1;
        }
        counts.push(row - begin);
    }
    assert_eq!(row, tx.len(), "rows are not grouped in customer order");
    counts
}

/// Indices of each customer's first row.
fn first_rows(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |start, &c| {
            let first = *start;
            *start += c;
            Some(first)
        })
        .collect()
}

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn defaults_cover_2023_and_2024() {
    let o = GenerateOptions::default();
    assert_eq!(o.start, days_from_civil(2023, 1, 1));
    assert_eq!(o.end, days_from_civil(2024, 12, 31));
    assert_eq!((o.customers, o.seed), (10_000, 42));
    assert_eq!(expected_mean_rate(&o), 0.025);
    assert_eq!(expected_mean_amount(&o), 30.0);
    assert_eq!(expected_mean_amount(&o.with_b2b(true)), 600.0);
}

#[test]
fn invalid_options_are_rejected() {
    let o = GenerateOptions::default();
    let err = try_generate(&o.clone().with_window(10, 9)).unwrap_err();
    assert_eq!(err, GenerateError::EmptyWindow { start: 10, end: 9 });
    let err = try_generate(&o.clone().with_gamma_gamma(6.0, 0.0, 15.0)).unwrap_err();
    assert!(err.to_string().contains("q = 0"), "{err}");
    let err = try_generate(&o.with_bgnbd(f64::NAN, 20.0, 0.8, 3.0)).unwrap_err();
    assert!(err.to_string().contains("r = NaN"), "{err}");
}

#[test]
fn same_seed_same_output_whatever_the_thread_count() {
    let o = GenerateOptions::default().with_customers(5_000);
    let in_pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| generate(&o))
    };
    let one = in_pool(1);
    let four = in_pool(4);
    assert!(one.0.len() > 5_000);
    assert_eq!(one, four);
    assert_eq!(one, generate(&o));

    let other = generate(&o.clone().with_seed(43));
    assert_ne!(one.0.day, other.0.day);
    assert_ne!(one.0.amount, other.0.amount);
    assert_ne!(one.1.region, other.1.region);
}

#[test]
fn b2b_changes_spend_and_cosmetics_but_not_purchase_days() {
    let o = GenerateOptions::default().with_customers(2_000);
    let (c, _) = generate(&o);
    let (b, _) = generate(&o.clone().with_b2b(true));
    assert_eq!(c.customer_id, b.customer_id);
    assert_eq!(c.day, b.day);
    // Same z, scaled ×20 before rounding to cents.
    for (x, y) in c.amount.iter().zip(&b.amount) {
        assert!((x * B2B_SPEND_SCALE - y).abs() <= 0.2 + 1e-9, "{x} vs {y}");
    }
    let mean_q =
        |t: &Transactions| t.quantity.iter().map(|&q| f64::from(q)).sum::<f64>() / t.len() as f64;
    assert!((mean_q(&c) - 1.5).abs() < 0.05, "{}", mean_q(&c));
    assert!((mean_q(&b) - 5.0).abs() < 0.1, "{}", mean_q(&b));
}

#[test]
fn rows_satisfy_the_documented_invariants() {
    let base = GenerateOptions::default().with_customers(3_000);
    let cases = [
        base.clone(),
        base.clone().with_b2b(true),
        base.clone().with_acquisition(Acquisition::AtStart),
        base.clone().with_dropout(Dropout::AfterEveryPurchase),
        // One-day window: everyone is acquired on that day, repeats only on that day.
        base.clone().with_window(19_500, 19_500),
        // Day arithmetic at the edge of i32.
        base.clone().with_window(i32::MAX - 30, i32::MAX),
        // Fast buyers: many rows per customer, many same-day orders.
        base.with_bgnbd(2.0, 1.0, 0.5, 20.0).with_window(0, 99),
    ];
    for o in cases {
        let (tx, attrs) = generate(&o);
        let n = o.customers;
        assert_eq!(attrs.customer_id.len(), n);
        assert_eq!(attrs.region.len(), n);
        assert_eq!(attrs.industry.len(), n);
        assert_eq!(attrs.channel.len(), n);
        for (k, id) in attrs.customer_id.iter().enumerate() {
            assert_eq!(id, &format!("C{:07}", k + 1));
        }
        let rows = tx.len();
        for col in [tx.order_id.len(), tx.day.len(), tx.amount.len()] {
            assert_eq!(col, rows);
        }
        for col in [tx.quantity.len(), tx.category.len(), tx.channel.len()] {
            assert_eq!(col, rows);
        }

        let counts = rows_per_customer(&tx, &attrs);
        assert!(counts.iter().all(|&c| c >= 1), "a customer has no rows");
        let unique: HashSet<&str> = tx.order_id.iter().map(String::as_str).collect();
        assert_eq!(unique.len(), rows, "order ids are not unique");
        assert_eq!(tx.order_id[0], "O000000001");

        let mut start = 0;
        for &c in &counts {
            let days = &tx.day[start..start + c];
            assert!(days.windows(2).all(|w| w[0] <= w[1]), "days not sorted");
            if o.acquisition == Acquisition::AtStart {
                assert_eq!(days[0], o.start);
            }
            start += c;
        }
        assert!(tx.day.iter().all(|d| (o.start..=o.end).contains(d)));
        for &a in &tx.amount {
            assert!(a.is_finite() && a >= 0.01, "amount {a}");
            assert!(
                ((a * 100.0).round() - a * 100.0).abs() < 1e-6,
                "not cents: {a}"
            );
        }
        assert!(tx.quantity.iter().all(|&q| q >= 1));
        assert!(tx.category.iter().all(|c| CATEGORIES.contains(&c.as_str())));
        assert!(tx.channel.iter().all(|c| CHANNELS.contains(&c.as_str())));
        assert!(attrs.region.iter().all(|c| REGIONS.contains(&c.as_str())));
        assert!(attrs
            .industry
            .iter()
            .all(|c| INDUSTRIES.contains(&c.as_str())));
        assert!(attrs.channel.iter().all(|c| CHANNELS.contains(&c.as_str())));

        let stats = summary_stats(&tx);
        assert_eq!(stats.customers, n);
        assert_eq!(stats.transactions, rows);
        assert_eq!(
            stats.one_time_buyers,
            counts.iter().filter(|&&c| c == 1).count()
        );
    }
}

#[test]
fn mean_amount_matches_gamma_gamma() {
    // E[z] = p·v/(q−1). Each customer's first amount is an independent draw of z (sd ≈ 26
    // at the defaults), so over 20 000 customers the standard error is ≈ 0.6 %. The
    // mean over all rows weights customers by their row counts: it has the same
    // expectation (ν is independent of λ and p) but a larger error.
    for b2b in [false, true] {
        let o = GenerateOptions::default()
            .with_customers(20_000)
            .with_b2b(b2b);
        let (tx, attrs) = generate(&o);
        let counts = rows_per_customer(&tx, &attrs);
        let firsts = first_rows(&counts);
        let first_mean = firsts.iter().map(|&k| tx.amount[k]).sum::<f64>() / firsts.len() as f64;
        let want = expected_mean_amount(&o);
        assert!(
            rel_err(first_mean, want) < 0.03,
            "b2b={b2b}: mean first amount {first_mean}, expected {want}"
        );
        let all_mean = summary_stats(&tx).mean_amount;
        assert!(
            rel_err(all_mean, want) < 0.05,
            "b2b={b2b}: mean amount {all_mean}, expected {want}"
        );
    }
}

#[test]
fn repeat_rate_matches_r_over_alpha_without_dropout() {
    // With p ≈ 0 (Beta(0.001, 1000), mean 1e-6) nobody drops out, and a cohort observed
    // for H days makes Poisson(λH) repeat purchases, so E[rows − 1] = H·r/α. Here H = 731,
    // E = 18.3, sd = sqrt(E + E²/r) ≈ 26: over 20 000 customers the standard error is 1 %.
    let o = GenerateOptions::default()
        .with_customers(20_000)
        .with_window(0, 730)
        .with_bgnbd(0.5, 20.0, 0.001, 1000.0)
        .with_acquisition(Acquisition::AtStart);
    let (tx, _) = generate(&o);
    let stats = summary_stats(&tx);
    let mean_repeats = stats.mean_transactions_per_customer - 1.0;
    let want = expected_mean_rate(&o) * 731.0;
    assert!(
        rel_err(mean_repeats, want) < 0.03,
        "mean repeat purchases {mean_repeats}, expected {want}"
    );
}

/// BG/NBD `P(X(t) = x)`, Fader, Hardie & Lee (2005) eq. 8, with the Beta and Gamma ratios
/// written as finite products.
fn bgnbd_pmf(r: f64, alpha: f64, a: f64, b: f64, t: f64, x: usize) -> f64 {
    let w0 = (alpha / (alpha + t)).powf(r);
    let z = t / (alpha + t);
    // Γ(r+j)/(Γ(r) j!) · z^j, for j = 0..=x.
    let mut nbd = vec![1.0];
    for j in 1..=x {
        let prev = nbd[j - 1];
        nbd.push(prev * (r + j as f64 - 1.0) / j as f64 * z);
    }
    // B(a, b+x)/B(a, b) = Π_{k<x} (b+k)/(a+b+k).
    let alive: f64 = (0..x)
        .map(|k| (b + k as f64) / (a + b + k as f64))
        .product();
    let mut prob = alive * w0 * nbd[x];
    if x > 0 {
        // B(a+1, b+x−1)/B(a, b) = a · Π_{k<x−1} (b+k) / Π_{k<x} (a+b+k).
        let num: f64 = (0..x - 1).map(|k| b + k as f64).product();
        let den: f64 = (0..x).map(|k| a + b + k as f64).product();
        let fewer: f64 = nbd[..x].iter().sum();
        prob += a * num / den * (1.0 - w0 * fewer);
    }
    prob
}

#[test]
fn repeat_counts_follow_the_bgnbd_distribution() {
    // One cohort observed for H = 366 days: rows − 1 is exactly X(H), whose law is eq. 8.
    // The standard error of each frequency over 20 000 customers is ≤ 0.0035; the tolerance
    // is 0.01. Dropping out after the first purchase (MBG/NBD) would move P(X = 0) from
    // (α/(α+H))^r = 0.228 to a/(a+b) + b/(a+b)·0.228 = 0.39, and fail this test.
    let o = GenerateOptions::default()
        .with_customers(20_000)
        .with_window(0, 365)
        .with_acquisition(Acquisition::AtStart);
    let (tx, attrs) = generate(&o);
    let counts = rows_per_customer(&tx, &attrs);
    let n = counts.len() as f64;
    let mut total = 0.0;
    for x in 0..6 {
        let got = counts.iter().filter(|&&c| c == x + 1).count() as f64 / n;
        let want = bgnbd_pmf(o.r, o.alpha, o.a, o.b, 366.0, x);
        total += want;
        assert!(
            (got - want).abs() < 0.01,
            "P(X = {x}): simulated {got:.4}, eq. 8 gives {want:.4}"
        );
    }
    assert!(
        total > 0.6 && total < 1.0,
        "pmf check covers too little mass: {total}"
    );
}

#[test]
fn mbg_dropout_after_first_purchase() {
    // MBG/NBD: P(X(H) = 0) = E[p] + E[1−p]·E[e^{−λH}] = a/(a+b) + b/(a+b)·(α/(α+H))^r.
    let o = GenerateOptions::default()
        .with_customers(20_000)
        .with_window(0, 365)
        .with_acquisition(Acquisition::AtStart)
        .with_dropout(Dropout::AfterEveryPurchase);
    let (tx, _) = generate(&o);
    let stats = summary_stats(&tx);
    let got = stats.one_time_buyers as f64 / stats.customers as f64;
    let no_purchase = (o.alpha / (o.alpha + 366.0)).powf(o.r);
    let want = o.a / (o.a + o.b) + o.b / (o.a + o.b) * no_purchase;
    assert!(
        (got - want).abs() < 0.01,
        "one-time buyers {got:.4}, expected {want:.4}"
    );
}
