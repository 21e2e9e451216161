use super::super::periods::epoch_day;
use super::*;

fn d(y: i32, m: u32, day: u32) -> i32 {
    epoch_day(y, m, day)
}

/// Owned daily columns built from (customer, day, amount) rows.
struct Cols(Vec<u32>, Vec<i32>, Vec<f64>);

impl Cols {
    fn new(rows: &[(u32, i32, f64)]) -> Cols {
        Cols(
            rows.iter().map(|r| r.0).collect(),
            rows.iter().map(|r| r.1).collect(),
            rows.iter().map(|r| r.2).collect(),
        )
    }
    fn view(&self) -> DailyColumns<'_> {
        DailyColumns {
            customer: &self.0,
            day: &self.1,
            amount: &self.2,
        }
    }
}

/// Six customers, months Nov 2023 – Mar 2024:
/// A: Dec 10, Jan 5, Feb 5, Mar 5 · B: Jan 10, Mar 10 (comes back in March)
/// C: Feb 1, Feb 20 · D: Nov 15, Mar 15 (comes back after four months)
/// E: Dec 20, Jan 20 · F: Mar 31.
fn six_customers() -> Cols {
    Cols::new(&[
        (0, d(2023, 12, 10), 10.0),
        (0, d(2024, 1, 5), 20.0),
        (0, d(2024, 2, 5), 30.0),
        (0, d(2024, 3, 5), 40.0),
        (1, d(2024, 1, 10), 15.0),
        (1, d(2024, 3, 10), 25.0),
        (2, d(2024, 2, 1), 50.0),
        (2, d(2024, 2, 20), 5.0),
        (3, d(2023, 11, 15), 100.0),
        (3, d(2024, 3, 15), 60.0),
        (4, d(2023, 12, 20), 7.0),
        (4, d(2024, 1, 20), 8.0),
        (5, d(2024, 3, 31), 12.0),
    ])
}

fn opts(window_start: Option<i32>, as_of: i32) -> ChurnOptions {
    ChurnOptions {
        period: Period::Month,
        window_start,
        as_of,
        inactivity_days: None,
    }
}

/// (active_start, retained, churned, new, reactivated, active)
fn counts(r: &ChurnRateRow) -> (u64, u64, u64, u64, u64, u64) {
    (
        r.active_start,
        r.retained,
        r.churned,
        r.new,
        r.reactivated,
        r.active,
    )
}

fn check_identities(rows: &[ChurnRateRow]) {
    for r in rows {
        assert_eq!(r.active, r.retained + r.new + r.reactivated, "{r:?}");
        assert_eq!(r.active_start, r.retained + r.churned, "{r:?}");
    }
    for w in rows.windows(2) {
        assert_eq!(w[1].active_start, w[0].active);
    }
}

#[test]
fn churn_rates_by_hand() {
    let c = six_customers();
    let rows = churn_rates(&c.view(), &opts(Some(d(2024, 1, 1)), d(2024, 3, 31)));
    check_identities(&rows);
    let labels: Vec<&str> = rows.iter().map(|r| r.period_label.as_str()).collect();
    assert_eq!(labels, ["2024-01", "2024-02", "2024-03"]);
    assert_eq!(rows[0].period_start, d(2024, 1, 1));
    assert!(rows.iter().all(|r| !r.partial));
    // January vs December {A, E}: active {A, B, E}; A, E retained, B new.
    assert_eq!(counts(&rows[0]), (2, 2, 0, 1, 0, 3));
    assert_eq!(rows[0].churn_rate, Some(0.0));
    assert_eq!(rows[0].retention_rate, Some(1.0));
    assert_eq!(rows[0].revenue, 43.0);
    assert_eq!(
        (rows[0].revenue_retained, rows[0].revenue_new),
        (28.0, 15.0)
    );
    // February vs {A, B, E}: active {A, C}; A retained, C new, B and E churned.
    assert_eq!(counts(&rows[1]), (3, 1, 2, 1, 0, 2));
    assert_eq!(rows[1].churn_rate, Some(2.0 / 3.0));
    assert_eq!(rows[1].retention_rate, Some(1.0 / 3.0));
    assert_eq!(rows[1].revenue, 85.0);
    assert_eq!(
        (rows[1].revenue_retained, rows[1].revenue_new),
        (30.0, 55.0)
    );
    // B spent 15 and E 8 in January.
    assert_eq!(rows[1].revenue_churned_prev, 23.0);
    // March vs {A, C}: active {A, B, D, F}; A retained, F new, B and D reactivated,
    // C churned.
    assert_eq!(counts(&rows[2]), (2, 1, 1, 1, 2, 4));
    assert_eq!(rows[2].churn_rate, Some(0.5));
    assert_eq!(rows[2].revenue, 137.0);
    assert_eq!(rows[2].revenue_retained, 40.0);
    assert_eq!(rows[2].revenue_new, 12.0);
    assert_eq!(rows[2].revenue_reactivated, 85.0);
    assert_eq!(rows[2].revenue_churned_prev, 55.0);
    for r in &rows {
        let parts = r.revenue_retained + r.revenue_new + r.revenue_reactivated;
        assert_eq!(r.revenue, parts);
    }
}

#[test]
fn unbounded_window_starts_at_the_first_transaction() {
    let c = six_customers();
    let rows = churn_rates(&c.view(), &opts(None, d(2024, 3, 31)));
    check_identities(&rows);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].period_label, "2023-11");
    // November: D new, nobody before → no rate.
    assert_eq!(counts(&rows[0]), (0, 0, 0, 1, 0, 1));
    assert_eq!(rows[0].churn_rate, None);
    // December: A and E new, D churned.
    assert_eq!(counts(&rows[1]), (1, 0, 1, 2, 0, 2));
    assert_eq!(rows[1].churn_rate, Some(1.0));
    assert_eq!(rows[1].revenue_churned_prev, 100.0);
    assert_eq!(counts(&rows[4]), (2, 1, 1, 1, 2, 4));
}

#[test]
fn a_window_before_the_data_is_sized_by_the_data() {
    // A 1,000-year window: the rows still start at the first purchase's period (2023-11), the
    // same table as without a window, not 12,000 empty months.
    let c = six_customers();
    let as_of = d(2024, 3, 31);
    let wide = churn_rates(&c.view(), &opts(Some(as_of - 365_250), as_of));
    assert_eq!(wide, churn_rates(&c.view(), &opts(None, as_of)));
    assert_eq!(wide.len(), 5);
}

#[test]
fn window_starting_mid_period_and_partial_last_period() {
    // Window from Jan 15: January's first day is outside → rows start in February.
    // As of Mar 20: F's purchase is not passed; March is partial.
    let c = six_customers();
    let v = c.view();
    let n = v.day.len() - 1;
    let cut = DailyColumns {
        customer: &v.customer[..n],
        day: &v.day[..n],
        amount: &v.amount[..n],
    };
    let rows = churn_rates(&cut, &opts(Some(d(2024, 1, 15)), d(2024, 3, 20)));
    check_identities(&rows);
    let labels: Vec<&str> = rows.iter().map(|r| r.period_label.as_str()).collect();
    assert_eq!(labels, ["2024-02", "2024-03"]);
    assert_eq!(counts(&rows[0]), (3, 1, 2, 1, 0, 2));
    assert!(!rows[0].partial);
    assert!(rows[1].partial);
    assert_eq!(counts(&rows[1]), (2, 1, 1, 0, 2, 3));
}

#[test]
fn inactivity_days_keep_customers_active() {
    // n = 45: active in p when bought in (e − 45, e]: Dec (Nov 16, Dec 31],
    // Jan (Dec 17, Jan 31], Feb (Jan 15, Feb 29], Mar (Feb 15, Mar 31].
    // Dec {A, E}; Jan {A, B, E}; Feb {A, C, E} (E's Jan 20 counts, B's Jan 10 does not);
    // Mar {A, B, C, D, F} (C's Feb 20 counts, E's Jan 20 does not).
    let c = six_customers();
    let mut o = opts(Some(d(2024, 1, 1)), d(2024, 3, 31));
    o.inactivity_days = Some(45);
    let rows = churn_rates(&c.view(), &o);
    check_identities(&rows);
    assert_eq!(counts(&rows[0]), (2, 2, 0, 1, 0, 3));
    // Feb: A, E retained; C new; B churned.
    assert_eq!(counts(&rows[1]), (3, 2, 1, 1, 0, 3));
    assert_eq!(rows[1].revenue_retained, 30.0);
    assert_eq!(rows[1].revenue_churned_prev, 15.0);
    // Mar: A, C retained; F new; B, D reactivated; E churned (spent nothing in Feb).
    assert_eq!(counts(&rows[2]), (3, 2, 1, 1, 2, 5));
    assert_eq!(rows[2].revenue_retained, 40.0);
    assert_eq!(rows[2].revenue_reactivated, 85.0);
    assert_eq!(rows[2].revenue_churned_prev, 0.0);
    // Revenue is all spend in the period, whatever the activity rule.
    assert_eq!(rows[2].revenue, 137.0);
}

/// Five customers, Jan–Mar 2024:
/// 0: Jan 3 (10), Feb 3 (20), Mar 3 (30) · 1: Jan 9 (5) · 2: Jan 20 (8), Mar 1 (2)
/// 3: Feb 2 (40), Feb 8 (10) · 4: Feb 28 (6), Mar 30 (4).
fn cohort_data() -> Cols {
    Cols::new(&[
        (0, d(2024, 1, 3), 10.0),
        (0, d(2024, 2, 3), 20.0),
        (0, d(2024, 3, 3), 30.0),
        (1, d(2024, 1, 9), 5.0),
        (2, d(2024, 1, 20), 8.0),
        (2, d(2024, 3, 1), 2.0),
        (3, d(2024, 2, 2), 40.0),
        (3, d(2024, 2, 8), 10.0),
        (4, d(2024, 2, 28), 6.0),
        (4, d(2024, 3, 30), 4.0),
    ])
}

type Cell<'a> = (&'a str, u64, i32, &'a str, u64, f64, f64);

fn cells(rows: &[CohortRow]) -> Vec<Cell<'_>> {
    rows.iter()
        .map(|r| {
            (
                r.cohort_label.as_str(),
                r.cohort_size,
                r.period_offset,
                r.period_label.as_str(),
                r.active,
                r.revenue,
                r.cumulative_revenue_per_customer,
            )
        })
        .collect()
}

/// The rows of `c` whose customer satisfies `keep`.
fn subset(c: &Cols, keep: impl Fn(u32) -> bool) -> Cols {
    let rows: Vec<(u32, i32, f64)> = (0..c.0.len())
        .filter(|&i| keep(c.0[i]))
        .map(|i| (c.0[i], c.1[i], c.2[i]))
        .collect();
    Cols::new(&rows)
}

#[test]
fn merged_buckets_equal_the_whole() {
    // Customer buckets are disjoint customer sets: their merged tables equal the tables of
    // all customers (the hand-worked ones above), with or without a window.
    for (c, window) in [
        (six_customers(), None),
        (six_customers(), Some(d(2024, 1, 1))),
        (cohort_data(), None),
    ] {
        for as_of in [d(2024, 3, 31), d(2024, 2, 15)] {
            let all = Cols::new(
                &(0..c.0.len())
                    .filter(|&i| c.1[i] <= as_of)
                    .map(|i| (c.0[i], c.1[i], c.2[i]))
                    .collect::<Vec<_>>(),
            );
            let o = opts(window, as_of);
            let parts = [subset(&all, |k| k % 2 == 0), subset(&all, |k| k % 2 == 1)];
            let churn =
                merge_churn_rates(parts.iter().map(|p| churn_rates(&p.view(), &o)).collect());
            assert_eq!(churn, churn_rates(&all.view(), &o));
            let cohorts = merge_cohorts(
                parts
                    .iter()
                    .map(|p| cohort_retention(&p.view(), &o))
                    .collect(),
            );
            assert_eq!(cohorts, cohort_retention(&all.view(), &o));
        }
    }
}

#[test]
fn cohort_triangle_by_hand() {
    let c = cohort_data();
    let rows = cohort_retention(&c.view(), &opts(None, d(2024, 3, 31)));
    // January cohort {0, 1, 2}: Jan all 3 (23), Feb {0} (20), Mar {0, 2} (32).
    // February cohort {3, 4}: Feb both (56), Mar {4} (4). No March cohort.
    assert_eq!(
        cells(&rows),
        [
            ("2024-01", 3, 0, "2024-01", 3, 23.0, 23.0 / 3.0),
            ("2024-01", 3, 1, "2024-02", 1, 20.0, 43.0 / 3.0),
            ("2024-01", 3, 2, "2024-03", 2, 32.0, 25.0),
            ("2024-02", 2, 0, "2024-02", 2, 56.0, 28.0),
            ("2024-02", 2, 1, "2024-03", 1, 4.0, 30.0),
        ]
    );
    let retention: Vec<f64> = rows.iter().map(|r| r.retention).collect();
    assert_eq!(retention, [1.0, 1.0 / 3.0, 2.0 / 3.0, 1.0, 0.5]);
    assert!(rows.iter().all(|r| !r.partial));

    // A window from Feb 1 keeps only the February cohort; as of Mar 20 March is partial
    // (customer 4's Mar 30 purchase is not passed).
    let v = c.view();
    let n = v.day.len() - 1;
    let cut = DailyColumns {
        customer: &v.customer[..n],
        day: &v.day[..n],
        amount: &v.amount[..n],
    };
    let rows = cohort_retention(&cut, &opts(Some(d(2024, 2, 1)), d(2024, 3, 20)));
    assert_eq!(
        cells(&rows),
        [
            ("2024-02", 2, 0, "2024-02", 2, 56.0, 28.0),
            ("2024-02", 2, 1, "2024-03", 0, 0.0, 28.0),
        ]
    );
    assert_eq!(
        rows.iter().map(|r| r.partial).collect::<Vec<_>>(),
        [false, true]
    );
}

#[test]
fn empty_input_gives_empty_tables() {
    let c = Cols::new(&[]);
    assert!(churn_rates(&c.view(), &opts(None, 100)).is_empty());
    assert!(cohort_retention(&c.view(), &opts(None, 100)).is_empty());
    // Periods are sized by the data: a bounded window with no data has none either.
    assert!(churn_rates(&c.view(), &opts(Some(d(2024, 1, 1)), d(2024, 2, 10))).is_empty());
}

#[test]
fn identities_hold_on_generated_histories() {
    // Deterministic pseudo-random histories (LCG); 300 customers over ~2 years, weekly
    // and monthly periods, with and without inactivity_days.
    let mut state: u64 = 42;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let as_of = d(2024, 6, 30);
    let mut rows = Vec::new();
    for cust in 0..300u32 {
        let mut day = as_of - 700 + next(700) as i32;
        while day <= as_of {
            rows.push((cust, day, next(100) as f64));
            day += 1 + next(120) as i32;
        }
    }
    let c = Cols::new(&rows);
    for period in [Period::Week, Period::Month, Period::Quarter] {
        for inactivity_days in [None, Some(30), Some(100)] {
            let o = ChurnOptions {
                period,
                window_start: Some(as_of - 365),
                as_of,
                inactivity_days,
            };
            let t = churn_rates(&c.view(), &o);
            check_identities(&t);
            let total: f64 = t.iter().map(|r| r.revenue).sum();
            let in_window: f64 = rows
                .iter()
                .filter(|r| r.1 >= period.start(t[0].period_index))
                .map(|r| r.2)
                .sum();
            assert_eq!(total, in_window);
            let cohorts = cohort_retention(&c.view(), &o);
            let size: u64 = cohorts
                .iter()
                .filter(|r| r.period_offset == 0)
                .map(|r| r.cohort_size)
                .sum();
            let firsts = (0..300u32)
                .filter(|&k| {
                    rows.iter()
                        .find(|r| r.0 == k)
                        .is_some_and(|r| r.1 >= as_of - 365)
                })
                .count() as u64;
            assert_eq!(size, firsts);
            if inactivity_days.is_none() {
                for r in &t {
                    let parts = r.revenue_retained + r.revenue_new + r.revenue_reactivated;
                    assert!((r.revenue - parts).abs() < 1e-9);
                }
                assert!(cohorts
                    .iter()
                    .all(|r| r.period_offset > 0 || r.retention == 1.0));
            }
        }
    }
}
