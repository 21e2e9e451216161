"""Runs the BI queries of tests/bi_queries.sql (also in docs/bi.md) against a custval output.

    python3 tests/bi_queries.py ROOT

ROOT is an output root written by custval (local path; or a URI DuckDB can read once httpfs and
credentials are set up), e.g. the result of
    custval backfill jobs/b2b.toml --from 2024-10-01 --to 2024-12-31 --output /tmp/bi-sample
It needs at least two as-of dates, and a holdout in the job for `model_diagnostics`.

Each statement of the file is prefixed by a `-- table: <table>` line and ends with `;` at the
end of a line; `{root}` is replaced by ROOT. Every query must run and return at least one row.
Prints one line per query (table, rows) and `N passed, M failed` last; exits 1 if any query
failed or DuckDB is not installed.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SQL_FILE = os.path.join(HERE, "bi_queries.sql")
REQUIREMENTS = os.path.join(HERE, "requirements.txt")


def parse(text):
    """[(table, description, sql)] from the statements of bi_queries.sql."""
    queries = []
    for chunk in text.split(";\n"):
        chunk = chunk.strip()
        if not chunk:
            continue
        lines = chunk.splitlines()
        first = lines[0].strip()
        if not first.startswith("-- table:"):
            raise ValueError("statement does not start with '-- table: <table>': %r" % first)
        table = first[len("-- table:"):].strip()
        description = ""
        if len(lines) > 1 and lines[1].lstrip().startswith("--"):
            description = lines[1].lstrip()[2:].strip()
        queries.append((table, description, chunk))
    return queries


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 2:
        print("usage: python3 tests/bi_queries.py ROOT", file=sys.stderr)
        return 2
    root = argv[1].rstrip("/") or "/"

    try:
        import duckdb
    except ImportError:
        print(
            "FAIL duckdb is not installed for %s: run `%s -m pip install -r %s`"
            % (sys.executable, os.path.basename(sys.executable), os.path.relpath(REQUIREMENTS)),
        )
        print("0 passed, 1 failed")
        return 1

    if "://" not in root and not os.path.isdir(root):
        print("FAIL %s: no such directory" % root)
        print("0 passed, 1 failed")
        return 1

    with open(SQL_FILE, encoding="utf-8") as f:
        try:
            queries = parse(f.read())
        except ValueError as e:
            print("FAIL %s: %s" % (os.path.relpath(SQL_FILE), e))
            print("0 passed, 1 failed")
            return 1

    passed = failed = 0
    con = duckdb.connect()
    for i, (table, description, sql) in enumerate(queries, 1):
        name = "%2d %-18s" % (i, table)
        try:
            rows = con.execute(sql.replace("{root}", root)).fetchall()
        except Exception as e:  # duckdb raises its own error classes; report any of them
            failed += 1
            message = " ".join(str(e).split())
            print("FAIL %s error: %s  [%s]" % (name, message[:300], description))
            continue
        if rows:
            passed += 1
            print("ok   %s %d rows  [%s]" % (name, len(rows), description))
        else:
            failed += 1
            print("FAIL %s 0 rows  [%s]" % (name, description))

    if not queries:
        failed += 1
        print("FAIL %s holds no queries" % os.path.relpath(SQL_FILE))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
