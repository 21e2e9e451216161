-- table: customer_features
-- CLV by value tier, latest as-of date.
WITH cf AS (
    SELECT *
    FROM read_parquet('{root}/customer_features/*/*.parquet', hive_partitioning = true)
)
SELECT
    value_tier,
    count(*)                                            AS customers,
    round(sum(total_amount), 2)                         AS revenue_to_date,
    round(avg(prob_alive), 3)                           AS mean_prob_alive,
    round(sum(expected_purchases), 1)                   AS expected_purchases,
    round(sum(clv), 2)                                  AS clv,
    round(sum(clv) / sum(sum(clv)) OVER (), 4)          AS clv_share,
    round(avg(clv), 2)                                  AS mean_clv,
    round(avg(clv_simple), 2)                           AS mean_clv_simple
FROM cf
WHERE as_of = (SELECT max(as_of) FROM cf)
GROUP BY value_tier
ORDER BY clv DESC;

-- table: customer_features
-- Segment migration: where the customers of each segment at the latest as-of date were at the previous one.
WITH cf AS (
    SELECT customer_id, as_of, rfm_segment, clv
    FROM read_parquet('{root}/customer_features/*/*.parquet', hive_partitioning = true, union_by_name = true)
),
dates AS (
    SELECT max(as_of) AS cur, max(as_of) FILTER (WHERE as_of < (SELECT max(as_of) FROM cf)) AS prev
    FROM cf
)
SELECT
    coalesce(p.rfm_segment, '(not a customer yet)')     AS from_segment,
    c.rfm_segment                                       AS to_segment,
    count(*)                                            AS customers,
    round(sum(c.clv), 2)                                AS clv_now
FROM cf c
CROSS JOIN dates
LEFT JOIN cf p ON p.customer_id = c.customer_id AND p.as_of = dates.prev
WHERE c.as_of = dates.cur
GROUP BY ALL
ORDER BY customers DESC;

-- table: customer_features
-- Customers by lifecycle stage and early warning, latest as-of date (who to call this week).
WITH cf AS (
    SELECT *
    FROM read_parquet('{root}/customer_features/*/*.parquet', hive_partitioning = true, union_by_name = true)
)
SELECT
    lifecycle_stage,
    early_warning,
    count(*)                                            AS customers,
    round(avg(loyalty_score), 1)                        AS mean_loyalty_score,
    round(avg(relationship_score), 1)                   AS mean_relationship_score,
    round(avg(churn_risk), 3)                           AS mean_churn_risk,
    round(avg(prob_alive), 3)                           AS mean_prob_alive,
    round(sum(clv), 2)                                  AS clv_at_stake
FROM cf
WHERE as_of = (SELECT max(as_of) FROM cf)
GROUP BY ALL
ORDER BY clv_at_stake DESC NULLS LAST;

-- table: segment_summary
-- Segment mix of the whole base at the latest as-of date, with the change since the previous one.
SELECT
    as_of,
    rfm_segment,
    customers,
    round(100 * customer_share, 1)                      AS pct_customers,
    round(revenue, 2)                                   AS revenue,
    round(100 * revenue_share, 1)                       AS pct_revenue,
    round(mean_total_amount, 2)                         AS mean_total_amount,
    round(customer_equity, 2)                           AS customer_equity,
    customers - lag(customers) OVER (PARTITION BY rfm_segment ORDER BY as_of) AS customers_change
FROM read_parquet('{root}/segment_summary/*/*.parquet', hive_partitioning = true)
WHERE dimension = 'all'
QUALIFY as_of = max(as_of) OVER ()
ORDER BY revenue DESC;

-- table: segment_summary
-- Segment mix by region at the latest as-of date (shares are within each region).
SELECT
    dimension_value                                     AS region,
    rfm_segment,
    customers,
    round(100 * customer_share, 1)                      AS pct_customers_in_region,
    round(revenue, 2)                                   AS revenue,
    round(100 * revenue_share, 1)                       AS pct_revenue_in_region,
    round(customer_equity, 2)                           AS customer_equity
FROM read_parquet('{root}/segment_summary/*/*.parquet', hive_partitioning = true)
WHERE dimension = 'region'
QUALIFY as_of = max(as_of) OVER ()
ORDER BY region, revenue DESC;

-- table: model_fit
-- Model fit history: one row per model and as-of date, newest first; `chosen` marks the purchase model behind `customer_features`.
SELECT
    as_of,
    model,
    chosen,
    converged,
    iterations,
    customers,
    round(log_likelihood, 2)                            AS log_likelihood,
    round(bic, 2)                                       AS bic,
    r, alpha, a, b, s, beta,
    p, q, v,
    round(fit_seconds, 3)                               AS fit_seconds,
    boundary,
    message
FROM read_parquet('{root}/model_fit/*/*.parquet', hive_partitioning = true)
ORDER BY as_of DESC, model;

-- table: model_diagnostics
-- Holdout check at the latest as-of date: predicted vs actual repeat purchases by calibration frequency.
SELECT
    calibration_frequency,
    customers,
    round(mean_actual, 3)                               AS mean_actual,
    round(mean_predicted, 3)                            AS mean_predicted,
    round(bias, 3)                                      AS bias,
    round(mae, 3)                                       AS mae,
    calibration_end,
    holdout_days
FROM read_parquet('{root}/model_diagnostics/*/*.parquet', hive_partitioning = true)
QUALIFY as_of = max(as_of) OVER ()
ORDER BY calibration_frequency = 'all', try_cast(rtrim(calibration_frequency, '+') AS INTEGER);

-- table: churn_rates
-- Churn trend at the latest as-of date, with a 3-period moving average (`partial`: the period is still running).
WITH latest AS (
    -- Keep the latest as-of date first: a window computed before this filter would average
    -- the periods of every as-of date together.
    SELECT *
    FROM read_parquet('{root}/churn_rates/*/*.parquet', hive_partitioning = true)
    QUALIFY as_of = max(as_of) OVER ()
)
SELECT
    period,
    period_start,
    partial,
    active_start,
    "new",
    reactivated,
    churned,
    round(100 * churn_rate, 1)                          AS churn_pct,
    round(100 * avg(churn_rate) OVER (
        PARTITION BY as_of ORDER BY period_start ROWS BETWEEN 2 PRECEDING AND CURRENT ROW
    ), 1)                                               AS churn_pct_3p_avg,
    round(100 * retention_rate, 1)                      AS retention_pct,
    round(revenue, 2)                                   AS revenue
FROM latest
ORDER BY period_start;

-- table: cohort_retention
-- Cohort triangle at the latest as-of date: one row per cohort, one column per period offset (retention %).
PIVOT (
    SELECT cohort, cohort_size, period_offset, round(100 * retention, 1) AS retention_pct
    FROM read_parquet('{root}/cohort_retention/*/*.parquet', hive_partitioning = true)
    QUALIFY as_of = max(as_of) OVER ()
)
ON period_offset IN (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
USING first(retention_pct)
GROUP BY cohort, cohort_size
ORDER BY cohort;

-- table: value_matrix
-- Value matrix of the whole base at the latest as-of date: where the customers, the revenue and the future value are.
SELECT
    value_quadrant,
    customers,
    round(100 * customer_share, 1)                      AS pct_customers,
    round(100 * revenue_share, 1)                       AS pct_revenue,
    round(100 * clv_share, 1)                           AS pct_clv,
    round(mean_loyalty_score, 1)                        AS mean_loyalty_score,
    round(mean_relationship_score, 1)                   AS mean_relationship_score,
    action
FROM read_parquet('{root}/value_matrix/*/*.parquet', hive_partitioning = true)
WHERE dimension = 'all'
QUALIFY as_of = max(as_of) OVER ()
ORDER BY clv_share DESC;

-- table: value_matrix
-- Value matrix by region at the latest as-of date: customers per quadrant (columns) in each region (rows).
SELECT
    dimension_value                                     AS region,
    sum(customers)                                      AS customers,
    sum(customers) FILTER (WHERE value_quadrant = 'high value / strong relationship') AS high_value_strong,
    sum(customers) FILTER (WHERE value_quadrant = 'high value / weak relationship')   AS high_value_weak,
    sum(customers) FILTER (WHERE value_quadrant = 'low value / strong relationship')  AS low_value_strong,
    sum(customers) FILTER (WHERE value_quadrant = 'low value / weak relationship')    AS low_value_weak,
    round(sum(clv), 2)                                  AS clv
FROM read_parquet('{root}/value_matrix/*/*.parquet', hive_partitioning = true)
WHERE dimension = 'region'
  AND as_of = (SELECT max(as_of) FROM read_parquet('{root}/value_matrix/*/*.parquet', hive_partitioning = true))
GROUP BY region
ORDER BY clv DESC;

-- table: runs
-- Recent runs, newest first: status, duration, volumes, and why a date was skipped or failed.
SELECT
    run_id,
    job,
    as_of,
    status,
    started,
    date_diff('second', started::TIMESTAMP, finished::TIMESTAMP) AS seconds,
    rows_in,
    rows_out,
    round(bytes_read / 1e6, 1)                          AS mb_read,
    custval_version,
    message
FROM read_parquet('{root}/runs/*.parquet', union_by_name = true)
ORDER BY started DESC, as_of
LIMIT 50;
