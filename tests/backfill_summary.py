"""Checks a backfill of jobs/b2b.toml against an independent computation: for every as-of
partition of `customer_features` under OUT_DIR, DuckDB computes each customer's summary from the
raw sample transactions with the job's window (lookback_days = 730: purchase days in
(as_of - 730, as_of]) and the BTYD definitions (frequency = purchase days - 1, recency = last -
first day, T = as_of - first day, monetary = mean amount of the repeat days), and the
partition must hold the same customers with the same values.

    python3 tests/backfill_summary.py OUT_DIR

Prints one line per check and `N passed, M failed` last; exits 1 if any check failed.
"""

import glob
import os
import sys

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "sample_data", "b2b", "transactions", "**", "*.parquet")
LOOKBACK_DAYS = 730

SUMMARY = """
WITH daily AS (
  SELECT customer_id, order_date AS day, SUM(amount) AS day_amount
  FROM read_parquet('{src}', hive_partitioning = true)
  WHERE order_date <= DATE '{as_of}' AND order_date > DATE '{as_of}' - {lookback}
  GROUP BY customer_id, order_date
), marked AS (
  SELECT *, MIN(day) OVER (PARTITION BY customer_id) AS first_day FROM daily
)
SELECT customer_id,
       COUNT(*) - 1 AS frequency,
       CAST(MAX(day) - MIN(day) AS DOUBLE) AS recency,
       CAST(DATE '{as_of}' - MIN(day) AS DOUBLE) AS "T",
       COALESCE(AVG(day_amount) FILTER (WHERE day > first_day), 0.0) AS monetary,
       SUM(day_amount) AS total_amount
FROM marked GROUP BY customer_id
"""

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}: {detail}")


def main(out_dir):
    parts = sorted(glob.glob(os.path.join(out_dir, "customer_features", "as_of=*")))
    check("partitions found", len(parts) >= 2, f"{parts}")
    for part in parts:
        as_of = part.rsplit("=", 1)[1]
        con = duckdb.connect()
        want = {
            r[0]: r[1:]
            for r in con.sql(SUMMARY.format(src=SRC, as_of=as_of, lookback=LOOKBACK_DAYS)).fetchall()
        }
        got = {
            r[0]: r[1:]
            for r in con.sql(
                f"SELECT customer_id, frequency, recency, \"T\", monetary, total_amount "
                f"FROM read_parquet('{part}/part-00000.parquet')"
            ).fetchall()
        }
        check(f"{as_of}: same customers", set(got) == set(want),
              f"{len(got)} in custval, {len(want)} in DuckDB")
        bad = []
        for c, w in want.items():
            g = got.get(c)
            if g is None:
                continue
            exact = g[0] == w[0] and g[1] == w[1] and g[2] == w[2]
            close = all(abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in zip(g[3:], w[3:]))
            if not (exact and close):
                bad.append((c, g, w))
        check(f"{as_of}: frequency, recency, T, monetary, total_amount of {len(want)} customers",
              not bad, f"{len(bad)} differ, e.g. {bad[:3]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
