"""Checks the values of BI queries of tests/bi_queries.sql against a hand computation.

    python3 tests/bi_values.py ROOT

ROOT is an output root written by custval with at least two as-of dates, e.g.
    custval backfill jobs/b2b.toml --from 2024-10-01 --to 2024-12-31 --output /tmp/bi-sample
(tests/bi_queries.py only checks that each query runs and returns rows.)

churn_rates, "Churn trend ... with a 3-period moving average": the statement of
tests/bi_queries.sql is run as written, and once more with `round` made the identity (a temporary
DuckDB macro), so that it returns unrounded values. Its `churn_pct_3p_avg` must equal, period by
period, 100 × the mean of the non-null `churn_rate` of that period and the two before it among the
periods of the latest as-of date only (null when all three are null, as SQL's AVG), computed here
in Python from the rows of the latest partition: within 1e-12 unrounded, and within the rounding
step (0.05) as written. With two as-of dates or more, a window that runs before the latest date is
selected mixes the periods of several as-of dates and fails this.

Prints one line per check and `N passed, M failed` last; exits 1 if any check failed.
"""

import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no tests/__pycache__ in the checkout
sys.path.insert(0, HERE)
import bi_queries  # noqa: E402  (parse() of tests/bi_queries.sql)

TOLERANCE = 1e-12

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok or not detail else ": " + detail))
    return ok


def close(a, b, tol):
    if a is None or b is None:
        return a is None and b is None
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol


def churn_query():
    with open(bi_queries.SQL_FILE, encoding="utf-8") as f:
        queries = bi_queries.parse(f.read())
    found = [
        sql
        for table, description, sql in queries
        if table == "churn_rates" and "moving average" in description
    ]
    if len(found) != 1:
        raise ValueError(
            "expected one churn_rates statement with a moving average in %s, found %d"
            % (os.path.relpath(bi_queries.SQL_FILE), len(found))
        )
    return found[0]


def run(con, sql):
    """(rows as dicts) of a query."""
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def check_churn_moving_average(duckdb, root):
    try:
        sql = churn_query().replace("{root}", root)
    except ValueError as e:
        check("churn_rates query found", False, str(e))
        return
    glob = "%s/churn_rates/*/*.parquet" % root

    # The hand computation: the plain rows of the latest partition, nothing from the query.
    con = duckdb.connect()
    dates = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT as_of FROM read_parquet(?, hive_partitioning = true) ORDER BY as_of",
            [glob],
        ).fetchall()
    ]
    if not check(
        "churn_rates: at least two as-of dates",
        len(dates) >= 2,
        "%d as-of dates under %s: the check needs several to catch a window over all of them"
        % (len(dates), root),
    ):
        return
    latest = dates[-1]
    rows = con.execute(
        "SELECT period_start, churn_rate FROM read_parquet(?, hive_partitioning = true) "
        "WHERE as_of = ?",
        [glob, latest],
    ).fetchall()
    rows.sort(key=lambda r: r[0])
    expected = {}
    for i, (start, _) in enumerate(rows):
        window = [r[1] for r in rows[max(0, i - 2) : i + 1] if r[1] is not None]
        expected[start] = 100 * (sum(window) / len(window)) if window else None

    # The query, unrounded (`round` shadowed by an identity macro) and as written.
    raw_con = duckdb.connect()
    raw_con.execute("CREATE TEMP MACRO round(x, n) AS x")
    if not check(
        "duckdb: a temporary macro replaces round()",
        raw_con.execute("SELECT round(0.123456::DOUBLE, 1)").fetchone()[0] == 0.123456,
    ):
        return
    for label, connection, tol in (
        ("unrounded", raw_con, TOLERANCE),
        ("as written", con, 0.05 + 1e-9),
    ):
        try:
            got = run(connection, sql)
        except Exception as e:  # duckdb raises its own error classes
            check("churn_rates query runs (%s)" % label, False, " ".join(str(e).split())[:300])
            continue
        if not got or "churn_pct_3p_avg" not in got[0] or "period_start" not in got[0]:
            check(
                "churn_rates query returns period_start and churn_pct_3p_avg (%s)" % label,
                False,
                str(sorted(got[0])) if got else "no rows",
            )
            continue
        starts = [r["period_start"] for r in got]
        check(
            "churn_rates (%s): one row per period of as_of=%s" % (label, latest),
            sorted(starts) == sorted(expected) and len(starts) == len(set(starts)),
            "query %s, partition %s" % ([str(s) for s in starts], [str(s) for s in expected]),
        )
        bad = [
            "%s: query %r, hand %r" % (r["period_start"], r["churn_pct_3p_avg"],
                                       expected.get(r["period_start"]))
            for r in got
            if not close(r["churn_pct_3p_avg"], expected.get(r["period_start"]), tol)
        ]
        check(
            "churn_rates (%s): churn_pct_3p_avg = 3-period trailing mean of as_of=%s, %d periods,"
            " within %g" % (label, latest, len(got), tol),
            not bad,
            "; ".join(bad),
        )


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 2:
        print("usage: python3 tests/bi_values.py ROOT", file=sys.stderr)
        return 2
    root = argv[1].rstrip("/") or "/"
    try:
        import duckdb
    except ImportError:
        print(
            "FAIL duckdb is not installed for %s: run `%s -m pip install -r %s`"
            % (
                sys.executable,
                os.path.basename(sys.executable),
                os.path.relpath(bi_queries.REQUIREMENTS),
            )
        )
        print("0 passed, 1 failed")
        return 1
    if "://" not in root and not os.path.isdir(root):
        print("FAIL %s: no such directory" % root)
        print("0 passed, 1 failed")
        return 1

    check_churn_moving_average(duckdb, root)

    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
