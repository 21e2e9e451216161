#!/usr/bin/env python3
"""Warehouse-scale benchmark: custval `run` against a hand-written DuckDB customer summary.

    python3 benches/scale.py --rows 10m                      # generate once, then 3 reps
    python3 benches/scale.py --rows 1000000 --customers 100000 --reps 1   # quick check
    python3 benches/scale.py --rows 200m --generate-only      # only write the data
    python3 benches/scale.py --rows 50m --skip-duckdb         # time custval alone (no check)
    python3 benches/scale.py --rows 50m --guest-share 0.4     # 40% of orders under one guest id
    python3 benches/scale.py --rows 50m --dirty-share 0.005   # 0.5% of rows dirty (see below)
    python3 benches/scale.py --rows 50m --timezone America/New_York   # zone-aware timestamps

Needs Python 3.9+ with numpy, polars and duckdb (`pip install numpy polars duckdb`) and a
release build of custval (`cargo build --release`; the default path is
$HOME/.cache/custval-target/release/custval, override with --custval or CUSTVAL_BIN).

1. Data (cached: generated once under --dir, default /tmp/custval-scale, and reused while its
   `_COMPLETE` marker exists; an interrupted generation is redone). Folder
   `<dir>/rows<N>_cust<C>_seed<S>/` holds
   - `transactions/month=YYYY-MM/part-KKKKK.parquet` (snappy): 36 monthly Hive partitions,
     2022-01 .. 2024-12, one file per month and generation chunk (a chunk is a block of
     customers with about --chunk-rows rows, so memory stays around 2 GB whatever --rows is);
     rows inside a file are sorted by time. Columns: order_id (String, "O" + 11 digits),
     customer_id (String, "C0001234"), order_date (TIMESTAMP µs, naive, uniform over
     2022-01-01 .. 2024-12-31), category (String, 20 values, skewed), channel (String, 4 values,
     mostly the customer's preferred one), amount (Float64, lognormal, > 0);
   - `attributes.parquet`: customer_id, region (6 values), industry (12 values), every customer;
   - `job.toml`: the custval job (as_of 2024-06-30, every column mapped, the attributes table);
   - `_COMPLETE`: JSON with the generation parameters, rows per month and rows in the window.
   Activity is heavy-tailed: each customer's row count is 1 + a multinomial share of the other
   N − C rows with lognormal(0, --sigma) weights, so the total is exactly N; with the defaults
   (σ = 2, 10 M rows, 2 M customers) half the customers have one row, 1% more than ~60 and the
   largest about 7,000.
   Rows form orders: a row starts a new order with probability 0.6, else it is another line of
   the previous order (same customer, timestamp and channel, next category), so every row is
   distinct, as custval's duplicate check requires when order_id is mapped.
   --dirty-share D (default 0) makes a share D of the rows dirty, as warehouse extracts are,
   each one of six kinds with equal odds: four that custval rejects (a null customer_id, a
   null order_date, a NaN amount, and a line that repeats the previous line of its order in
   every column: a duplicate row) and two it keeps and flags (a refund line of -0.1 times its
   amount, a zero amount; both only on second and later lines of an order, so the day's total
   stays positive). D must stay below about 0.012, so that the rejected share stays under the
   job's quality.max_rejected_share = 0.01. DuckDB's query then cleans the rows the same way
   first (cleaned_sql: the null ids and non-finite amounts filtered, duplicates removed
   by SELECT DISTINCT over the mapped columns), as a hand-written query over such data must.
   --timezone ZONE (an IANA name; default none) writes order_date zone-aware (TIMESTAMP µs,
   UTC-adjusted: the same instants) and sets the job's columns.timezone = ZONE, so purchases
   fall on calendar days of that zone and the window ends at midnight there. DuckDB's query
   then takes days and the window end in the zone (`timezone('ZONE', order_date)`, after a
   coarse UTC bound that keeps its row-group pruning).

2. Timing. Each repetition runs both tools, alternating which goes first:
   (a) `custval run <job.toml> --output <dir>/bench-out/custval` (a fresh folder each time):
       every table of the job, including the BG/NBD and Gamma-Gamma fits, CLV, churn and
       cohort tables, not only the summary;
   (b) a Python subprocess running DuckDB on the per-customer summary SQL (SUMMARY_SQL below)
       over `read_parquet('<data>/transactions/*/*.parquet', hive_partitioning = true)` for
       rows with order_date < 2024-07-01, written to `<dir>/bench-out/duckdb.parquet`.
   Wall time is measured around each subprocess; peak RSS is the subprocess's maximum resident
   set (`/usr/bin/time -v` when installed, else the rusage of os.wait4). DuckDB's figure
   includes the Python interpreter (~50-100 MB). Both tools use all cores by default
   (--threads sets POLARS_MAX_THREADS and DuckDB's `threads`). Under an address-space cap
   (`prlimit --as=12000000000 python3 benches/scale.py ...`) DuckDB gets memory_limit = 40% of
   the cap unless --duckdb-memory-limit says otherwise: with its default (80% of RAM) or 8 GB
   under a 12 GB cap, its allocations fail at 200 M rows instead of spilling. The data files are read from
   the page cache once warm: the first repetition may be slower, which is why the table
   reports every repetition and the median. Nothing else should run while timing.

3. Check. Before any time is printed, custval's customer_features partition
   (`customer_features/as_of=2024-06-30/part-00000.parquet`) is compared with DuckDB's output
   for every customer after every repetition: the same customers, frequency, recency, T,
   purchase_days, orders, first_purchase and last_purchase equal, monetary and total_amount
   within 1e-9 relative. Mismatches are printed (count per column, a few customers) and the
   script exits with status 1. With --skip-custval or --skip-duckdb nothing is checked.

Output: a table (what, rows, wall seconds per repetition and median, largest peak RSS in GB, ratio
custval / DuckDB of the medians), each repetition's ratio (its two runs are neighbours in time,
so a drift of the machine's speed over minutes cancels in it) and their median, the CPU
seconds (user + system) of each run, then one line `SCALE_JSON {...}` with every figure.
Exit status: 0 success, 1 mismatch or a failed tool run, 2 bad arguments.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

AS_OF = "2024-06-30"
WINDOW_END = "2024-07-01"  # rows with order_date < this day count (as_of is inclusive)
START = "2022-01-01"
END = "2025-01-01"  # exclusive: timestamps run to 2024-12-31 23:59:59.999999
GENERATOR_VERSION = 1

CATEGORIES = ["cat%02d" % i for i in range(1, 21)]
CHANNELS = ["online", "store", "phone", "partner"]
GUEST_ID = "G0000000"  # --guest-share: the placeholder customer id
CHANNEL_P = [0.5, 0.3, 0.15, 0.05]
REGIONS = ["north", "south", "east", "west", "central", "international"]
INDUSTRIES = [
    "retail", "manufacturing", "healthcare", "finance", "education", "logistics",
    "hospitality", "construction", "energy", "media", "public", "technology",
]
NEW_ORDER_P = 0.6  # probability that a row starts a new order (else: next line of the same order)

# The hand-written summary DuckDB is timed on. {src}, {window_end}, {as_of}, {out} are filled in.
# orders = distinct order ids per purchase day, summed over days (custval's definition; here
# an order never spans two days, so it is also the customer's count of distinct order ids).
SUMMARY_SQL = """
COPY (
  WITH daily AS (
    SELECT customer_id,
           CAST(order_date AS DATE) AS day,
           SUM(amount) AS day_amount,
           COUNT(DISTINCT order_id) AS day_orders
    FROM read_parquet('{src}', hive_partitioning = true)
    WHERE order_date < TIMESTAMP '{window_end} 00:00:00'
    GROUP BY customer_id, CAST(order_date AS DATE)
  ),
  marked AS (
    SELECT *, MIN(day) OVER (PARTITION BY customer_id) AS first_day FROM daily
  )
  SELECT customer_id,
         MIN(day) AS first_purchase,
         MAX(day) AS last_purchase,
         COUNT(*) AS purchase_days,
         CAST(SUM(day_orders) AS BIGINT) AS orders,
         SUM(day_amount) AS total_amount,
         COUNT(*) - 1 AS frequency,
         CAST(MAX(day) - MIN(day) AS DOUBLE) AS recency,
         CAST(DATE '{as_of}' - MIN(day) AS DOUBLE) AS "T",
         COALESCE(AVG(day_amount) FILTER (WHERE day > first_day), 0.0) AS monetary
  FROM marked
  GROUP BY customer_id
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
"""

def cleaned_sql(sql):
    """`sql` over dirty rows (--dirty-share): the rows custval rejects are filtered first (a
    null order_date fails the window's comparison) and exact duplicates removed, in a `clean`
    step that the daily aggregation then reads."""
    scan = ("    FROM read_parquet('{src}', hive_partitioning = true)\n"
            "    WHERE order_date < TIMESTAMP '{window_end} 00:00:00'\n")
    assert sql.count(scan) == 1 and sql.count("  WITH daily AS (") == 1
    clean = ("  WITH clean AS (\n"
             "    SELECT DISTINCT customer_id, order_date, amount, order_id, category, channel\n"
             + scan.rstrip("\n") + "\n"
             "      AND customer_id IS NOT NULL AND isfinite(amount)\n"
             "  ),\n"
             "  daily AS (")
    return sql.replace(scan, "    FROM clean\n").replace("  WITH daily AS (", clean)


def zoned_sql(sql, zone):
    """`sql` with days and the window end taken in `zone` (None: `sql` as it is): local times
    from `timezone(zone, order_date)`, after a coarse bound on the UTC instant (a day past the
    window's end in any zone) that keeps DuckDB's row-group pruning."""
    if not zone:
        return sql
    z = zone.replace("'", "''")
    local = "timezone('%s', order_date)" % z
    window = "order_date < TIMESTAMP '{window_end} 00:00:00'"
    assert sql.count(window) == 1 and "CAST(order_date AS DATE)" in sql
    sql = sql.replace(window, "order_date < CAST(TIMESTAMPTZ '{window_end} 00:00:00+00' + "
                      "INTERVAL 1 DAY AS TIMESTAMPTZ) AND %s < TIMESTAMP '{window_end} 00:00:00'" % local)
    return sql.replace("CAST(order_date AS DATE)", "CAST(%s AS DATE)" % local)


EXACT_COLUMNS = ["frequency", "recency", "T", "purchase_days", "orders",
                 "first_purchase", "last_purchase"]
RELATIVE_COLUMNS = ["monetary", "total_amount"]
REL_TOL = 1e-9


def die(msg, code=2):
    print("scale: error: " + msg, file=sys.stderr)
    sys.exit(code)


def log(msg):
    print("scale: " + msg, file=sys.stderr, flush=True)


def parse_count(text):
    """'10m' -> 10_000_000; also k, g/b suffixes, underscores, commas and plain integers."""
    t = text.strip().lower().replace("_", "").replace(",", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmgb]?)", t)
    if not m:
        raise argparse.ArgumentTypeError("expected a count like 10m, 200m or 1000000, found %r" % text)
    mult = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}[m.group(2)]
    value = float(m.group(1)) * mult
    if value != int(value) or value <= 0:
        raise argparse.ArgumentTypeError("expected a positive whole count, found %r" % text)
    return int(value)


def import_generators():
    try:
        import numpy as np
        import polars as pl
    except ImportError as e:
        die("%s; install with: python3 -m pip install numpy polars" % e)
    return np, pl


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return "%.1f %s" % (n, unit) if unit != "B" else "%d B" % n
        n /= 1024.0


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------------------------------------
# Data generation
# ---------------------------------------------------------------------------------------------

def customer_counts(np, rows, customers, sigma, seed):
    """Rows per customer: 1 + multinomial(rows - customers, lognormal weights); sums to rows."""
    rng = np.random.default_rng([seed, 1])
    w = rng.lognormal(0.0, sigma, customers)
    p = w / w.sum()
    extra = rng.multinomial(rows - customers, p)
    counts = (extra + 1).astype(np.int64)
    assert int(counts.sum()) == rows
    return counts


def chunk_bounds(np, counts, chunk_rows):
    """Customer index ranges [lo, hi) holding about chunk_rows rows each."""
    cum = np.cumsum(counts)
    bounds = []
    lo = 0
    n = len(counts)
    while lo < n:
        base = int(cum[lo - 1]) if lo > 0 else 0
        hi = int(np.searchsorted(cum, base + chunk_rows, side="right"))
        hi = max(hi, lo + 1)
        hi = min(hi, n)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def id_series(pl, prefix, values, width, name):
    """'C' + zero-padded decimal, vectorised in polars."""
    s = pl.Series(name, values)
    return (
        pl.DataFrame({name: s})
        .select(pl.concat_str([pl.lit(prefix), pl.col(name).cast(pl.String).str.zfill(width)]).alias(name))
        .to_series()
    )


def window_end_utc_us(np, zone):
    """The window's end (midnight starting WINDOW_END) in `zone` (None: naive, as UTC), in µs
    since the epoch."""
    if zone is None:
        return int(np.datetime64(WINDOW_END, "us").astype(np.int64))
    import datetime
    from zoneinfo import ZoneInfo
    end = datetime.datetime.fromisoformat(WINDOW_END).replace(tzinfo=ZoneInfo(zone))
    return int(end.timestamp()) * 1_000_000


def generate(data_dir, rows, customers, seed, sigma, chunk_rows, guest_share=0.0, dirty_share=0.0,
             timezone=None):
    np, pl = import_generators()
    if rows < customers:
        die("--rows (%d) must be at least --customers (%d): every customer buys once" % (rows, customers))
    t0 = time.time()
    parent = os.path.dirname(data_dir)
    os.makedirs(parent, exist_ok=True)
    partial = data_dir + ".partial"
    if os.path.exists(partial):
        log("removing the unfinished %s" % partial)
        shutil.rmtree(partial)
    tx_dir = os.path.join(partial, "transactions")
    os.makedirs(tx_dir)

    start_us = int(np.datetime64(START, "us").astype(np.int64))
    end_us = int(np.datetime64(END, "us").astype(np.int64))
    window_end_us = window_end_utc_us(np, timezone)
    months = np.arange(np.datetime64(START, "M"), np.datetime64(END, "M"))  # 36 months
    month_start_us = months.astype("datetime64[us]").astype(np.int64)
    month_names = [str(m) for m in months]  # 'YYYY-MM'
    for name in month_names:
        os.makedirs(os.path.join(tx_dir, "month=" + name))

    width = max(7, len(str(customers - 1)))
    cust_ids = id_series(pl, "C", np.arange(customers, dtype=np.int64), width, "customer_id")
    cats = pl.Series("category", CATEGORIES)
    chans = pl.Series("channel", CHANNELS)

    counts = customer_counts(np, rows, customers, sigma, seed)
    rng_c = np.random.default_rng([seed, 2])
    preferred = rng_c.choice(len(CHANNELS), size=customers, p=CHANNEL_P).astype(np.int8)
    spend_level = rng_c.lognormal(0.0, 0.6, customers)  # per-customer spend multiplier
    cat_p = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 0.8
    cat_p /= cat_p.sum()

    # Attributes: one row per customer.
    attrs = pl.DataFrame({
        "customer_id": cust_ids,
        "region": pl.Series(REGIONS).gather(rng_c.integers(0, len(REGIONS), customers)),
        "industry": pl.Series(INDUSTRIES).gather(rng_c.integers(0, len(INDUSTRIES), customers)),
    })
    attrs.write_parquet(os.path.join(partial, "attributes.parquet"), compression="snappy")
    del attrs

    bounds = chunk_bounds(np, counts, chunk_rows)
    rows_per_month = np.zeros(len(months), dtype=np.int64)
    rows_in_window = 0
    dirty_rows = [0]
    order_base = 0
    files = 0
    for k, (lo, hi) in enumerate(bounds):
        rng = np.random.default_rng([seed, 100 + k])
        c = counts[lo:hi]
        n = int(c.sum())
        cidx = np.repeat(np.arange(lo, hi, dtype=np.int64), c)
        first_row = np.zeros(n, dtype=bool)
        first_row[0] = True
        first_row[np.cumsum(c)[:-1]] = True
        new_order = first_row | (rng.random(n) < NEW_ORDER_P)
        del first_row
        oidx = np.cumsum(new_order) - 1  # order index within the chunk
        n_orders = int(oidx[-1]) + 1
        order_start = np.flatnonzero(new_order)
        del new_order
        line = np.arange(n, dtype=np.int64) - order_start[oidx]  # line number inside its order
        order_cust = cidx[order_start]
        del order_start
        # --guest-share: that share of the orders is bought under one placeholder id (a guest
        # checkout), drawn after the other draws of the chunk so that 0 leaves the data as is.
        guest_row = None
        # Per order: timestamp, channel, first category.
        o_ts = rng.integers(start_us, end_us, n_orders, dtype=np.int64)
        o_chan = np.where(rng.random(n_orders) < 0.85, preferred[order_cust],
                          rng.integers(0, len(CHANNELS), n_orders).astype(np.int8))
        o_cat = rng.choice(len(CATEGORIES), size=n_orders, p=cat_p)
        del order_cust
        ts = o_ts[oidx]
        chan = o_chan[oidx]
        cat = (o_cat[oidx] + line) % len(CATEGORIES)  # lines of one order differ in category
        del o_ts, o_chan, o_cat
        if guest_share > 0:
            guest_row = (rng.random(n_orders) < guest_share)[oidx]
        amount = rng.lognormal(3.0, 0.9, n) * spend_level[cidx]
        order_no = oidx + order_base
        order_base += n_orders
        del oidx
        # --dirty-share: drawn after the other draws of the chunk, so that 0 leaves the data as
        # is. Kinds: 1 duplicate line, 2 null customer_id, 3 NaN amount, 4 null order_date,
        # 5 refund line, 6 zero-amount line (1, 5 and 6 on second and later lines only).
        null_id = null_ts = None
        if dirty_share > 0:
            rng_d = np.random.default_rng([seed, 10_000 + k])
            kind = np.where(rng_d.random(n) < dirty_share, rng_d.integers(1, 7, n), 0)
            later = line > 0
            dup = np.flatnonzero((kind == 1) & later)
            cat[dup] = cat[dup - 1]
            amount[dup] = amount[dup - 1]
            null_id = kind == 2
            amount[kind == 3] = np.nan
            null_ts = kind == 4
            amount[(kind == 5) & later] *= -0.1
            amount[(kind == 6) & later] = 0.0
            dirty_rows[0] += int(np.count_nonzero(kind))
            del kind, later, dup
        del line
        # Sort by time: months become contiguous and files are time-ordered, as appended data is.
        perm = np.argsort(ts, kind="stable")
        ts, cidx, chan, cat, amount, order_no = (a[perm] for a in (ts, cidx, chan, cat, amount, order_no))
        if guest_row is not None:
            guest_row = guest_row[perm]
        if null_id is not None:
            null_id, null_ts = null_id[perm], null_ts[perm]
        del perm
        rows_in_window += int(np.searchsorted(ts, window_end_us, side="left"))
        cuts = np.searchsorted(ts, month_start_us, side="left").tolist() + [n]
        df = pl.DataFrame({
            "order_id": id_series(pl, "O", order_no, 11, "order_id"),
            "customer_id": cust_ids.gather(cidx) if guest_row is None else pl.select(
                pl.when(pl.Series(guest_row)).then(pl.lit(GUEST_ID)).otherwise(cust_ids.gather(cidx))
            ).to_series().alias("customer_id"),
            "order_date": pl.Series("order_date", ts).cast(pl.Datetime("us", "UTC" if timezone else None)),
            "category": cats.gather(cat),
            "channel": chans.gather(chan),
            "amount": pl.Series("amount", amount),
        })
        if null_id is not None:
            df = df.with_columns(
                pl.when(pl.Series(null_id)).then(None).otherwise(pl.col("customer_id")).alias("customer_id"),
                pl.when(pl.Series(null_ts)).then(None).otherwise(pl.col("order_date")).alias("order_date"),
            )
            del null_id, null_ts
        del ts, cidx, chan, cat, amount, order_no
        for m, name in enumerate(month_names):
            a, b = cuts[m], cuts[m + 1]
            if b <= a:
                continue
            path = os.path.join(tx_dir, "month=" + name, "part-%05d.parquet" % k)
            df.slice(a, b - a).write_parquet(path, compression="snappy", statistics=True)
            rows_per_month[m] += b - a
            files += 1
        del df
        log("generated chunk %d/%d: customers %d..%d, %d rows (%.0f s)"
            % (k + 1, len(bounds), lo, hi - 1, n, time.time() - t0))

    assert int(rows_per_month.sum()) == rows
    write_job(partial, data_dir, timezone)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "rows": rows,
        "customers": customers,
        "seed": seed,
        "sigma": sigma,
        "guest_share": guest_share,
        "dirty_share": dirty_share,
        "dirty_rows": dirty_rows[0],
        "timezone": timezone,
        "chunk_rows": chunk_rows,
        "chunks": len(bounds),
        "files": files,
        "orders": order_base,
        "rows_in_window": rows_in_window,
        "max_rows_per_customer": int(counts.max()),
        "median_rows_per_customer": float(np.median(counts)),
        "rows_per_month": dict(zip(month_names, rows_per_month.tolist())),
        "generate_seconds": round(time.time() - t0, 1),
        "numpy": np.__version__,
        "polars": pl.__version__,
    }
    with open(os.path.join(partial, "_COMPLETE"), "w") as f:
        json.dump(meta, f, indent=1)
    os.rename(partial, data_dir)
    log("generated %s: %d rows, %d files, %s in %.0f s"
        % (data_dir, rows, files, human_bytes(dir_bytes(data_dir)), time.time() - t0))
    return meta


def write_job(folder, final_dir, timezone=None):
    """The custval job, with the paths of the final (renamed) folder."""
    zone = '\ntimezone = "%s"' % timezone if timezone else ""
    job = f"""# Written by benches/scale.py (warehouse-scale benchmark); do not edit.
name = "scale"
as_of = "{AS_OF}"

[source]
uri = "{final_dir}/transactions/"

[columns]
customer_id = "customer_id"
timestamp = "order_date"
amount = "amount"
order_id = "order_id"
category = "category"
channel = "channel"{zone}

[attributes]
uri = "{final_dir}/attributes.parquet"
customer_id = "customer_id"
region = "region"
industry = "industry"

[output]
uri = "{final_dir}/out"

[quality]
max_rejected_share = 0.01
"""
    with open(os.path.join(folder, "job.toml"), "w") as f:
        f.write(job)


# ---------------------------------------------------------------------------------------------
# Timed runs
# ---------------------------------------------------------------------------------------------

def run_measured(cmd, log_path, env=None):
    """Run cmd; return (exit status, wall seconds, peak RSS bytes, CPU seconds (user + system)).
    Output goes to log_path."""
    gnu_time = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    with open(log_path, "w") as out:
        if gnu_time:
            fd, tfile = tempfile.mkstemp(prefix="scale-time-", suffix=".txt")
            os.close(fd)
            t0 = time.perf_counter()
            proc = subprocess.run([gnu_time, "-v", "-o", tfile] + cmd, stdout=out,
                                  stderr=subprocess.STDOUT, env=env)
            wall = time.perf_counter() - t0
            with open(tfile) as f:
                report = f.read()
            os.unlink(tfile)
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
            rss = int(m.group(1)) * 1024 if m else None
            cpu = [re.search(r"%s time \(seconds\): ([0-9.]+)" % k, report) for k in ("User", "System")]
            cpu = sum(float(c.group(1)) for c in cpu) if all(cpu) else None
            status = proc.returncode
        else:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
            _pid, wstatus, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(wstatus)
            rss = ru.ru_maxrss * 1024  # Linux: KiB
            cpu = ru.ru_utime + ru.ru_stime
            status = proc.returncode
    return status, wall, rss, cpu


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_custval(binary, job, out_dir, log_path, threads):
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    if threads:
        env["POLARS_MAX_THREADS"] = str(threads)
        env["RAYON_NUM_THREADS"] = str(threads)
    status, wall, rss, cpu = run_measured([binary, "run", job, "--output", out_dir], log_path, env)
    if status != 0:
        die("custval exited with status %d; last lines of %s:\n%s" % (status, log_path, tail(log_path)), 1)
    return wall, rss, cpu


def run_duckdb(data_dir, out_file, log_path, threads, memory_limit, temp_dir):
    if os.path.exists(out_file):
        os.unlink(out_file)
    cmd = [sys.executable, os.path.abspath(__file__), "duckdb-worker", data_dir, out_file,
           str(threads or 0), memory_limit or "", temp_dir]
    status, wall, rss, cpu = run_measured(cmd, log_path)
    if status != 0:
        die("DuckDB worker exited with status %d; last lines of %s:\n%s" % (status, log_path, tail(log_path)), 1)
    return wall, rss, cpu


def duckdb_worker(argv):
    """Subprocess body: run SUMMARY_SQL and print one JSON line. argv: data out threads mem tmp."""
    data_dir, out_file, threads, memory_limit, temp_dir = argv
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    if int(threads):
        con.execute("SET threads = %d" % int(threads))
    if memory_limit:
        con.execute("SET memory_limit = '%s'" % memory_limit)
    con.execute("SET temp_directory = '%s'" % temp_dir.replace("'", "''"))
    src = os.path.join(data_dir, "transactions", "*", "*.parquet")
    with open(os.path.join(data_dir, "_COMPLETE")) as f:
        meta = json.load(f)
    dirty = meta.get("dirty_share", 0) > 0
    sql = zoned_sql(cleaned_sql(SUMMARY_SQL) if dirty else SUMMARY_SQL, meta.get("timezone"))
    sql = sql.format(src=src.replace("'", "''"), window_end=WINDOW_END, as_of=AS_OF,
                             out=out_file.replace("'", "''"))
    con.execute(sql)
    n = con.execute("SELECT count(*) FROM read_parquet(?)", [out_file]).fetchone()[0]
    print(json.dumps({"duckdb": duckdb.__version__, "customers": n,
                      "seconds_in_process": round(time.perf_counter() - t0, 3)}))


# ---------------------------------------------------------------------------------------------
# Check
# ---------------------------------------------------------------------------------------------

def compare(custval_file, duckdb_file, show=5):
    """Compare custval's customer_features with DuckDB's summary; return (customers, problems)."""
    import duckdb

    con = duckdb.connect()
    q = lambda s: s.replace("'", "''")
    con.execute(f"CREATE TEMP VIEW c AS SELECT * FROM read_parquet('{q(custval_file)}')")
    con.execute(f"CREATE TEMP VIEW d AS SELECT * FROM read_parquet('{q(duckdb_file)}')")
    have = {r[0] for r in con.execute("DESCRIBE c").fetchall()}
    missing_cols = [x for x in EXACT_COLUMNS + RELATIVE_COLUMNS if x not in have]
    problems = []
    if missing_cols:
        problems.append("custval output lacks column(s) %s" % ", ".join(missing_cols))
    n_c = con.execute("SELECT count(*), count(DISTINCT customer_id) FROM c").fetchone()
    n_d = con.execute("SELECT count(*) FROM d").fetchone()[0]
    if n_c[0] != n_c[1]:
        problems.append("custval output has %d rows but %d distinct customer ids" % n_c)
    only = {}
    for a, b, label in (("c", "d", "custval only"), ("d", "c", "DuckDB only")):
        cnt, ex = con.execute(
            f"SELECT count(*), list(customer_id ORDER BY customer_id)[1:{show}] FROM {a} "
            f"WHERE customer_id NOT IN (SELECT customer_id FROM {b})").fetchone()
        only[label] = cnt
        if cnt:
            problems.append("%d customers %s, e.g. %s" % (cnt, label, ", ".join(map(str, ex))))
    for col in EXACT_COLUMNS + RELATIVE_COLUMNS:
        if col in missing_cols:
            continue
        qc = '"%s"' % col
        if col in EXACT_COLUMNS:
            cond = f"c.{qc} IS DISTINCT FROM d.{qc}"
        else:
            cond = (f"NOT (c.{qc} = d.{qc} OR abs(c.{qc} - d.{qc}) <= {REL_TOL} * "
                    f"greatest(abs(c.{qc}), abs(d.{qc})))")
        cnt = con.execute(f"SELECT count(*) FROM c JOIN d USING (customer_id) WHERE {cond}").fetchone()[0]
        if cnt:
            rows = con.execute(
                f"SELECT customer_id, c.{qc}, d.{qc}, d.purchase_days, d.first_purchase, d.last_purchase "
                f"FROM c JOIN d USING (customer_id) WHERE {cond} ORDER BY customer_id LIMIT {show}"
            ).fetchall()
            ex = "; ".join("%s custval=%r duckdb=%r (purchase_days=%s, first=%s, last=%s)" % r for r in rows)
            problems.append("%s differs for %d customers, e.g. %s" % (col, cnt, ex))
    return {"custval": n_c[0], "duckdb": n_d}, problems


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def main(argv):
    if argv and argv[0] == "duckdb-worker":
        duckdb_worker(argv[1:])
        return 0
    ap = argparse.ArgumentParser(
        prog="scale.py", description="Warehouse-scale benchmark of custval against DuckDB "
        "(see the docstring at the top of benches/scale.py).")
    ap.add_argument("--rows", type=parse_count, default=parse_count("10m"),
                    help="transactions: 10m, 50m, 200m or any count (default 10m)")
    ap.add_argument("--customers", type=parse_count, default=2_000_000, help="customers (default 2,000,000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each tool (default 3)")
    ap.add_argument("--dir", default="/tmp/custval-scale", help="data and output folder (default /tmp/custval-scale)")
    ap.add_argument("--custval", default=os.environ.get("CUSTVAL_BIN", os.path.expanduser(
        "~/.cache/custval-target/release/custval")), help="custval binary (default "
        "$CUSTVAL_BIN or ~/.cache/custval-target/release/custval)")
    ap.add_argument("--skip-custval", action="store_true", help="do not run custval")
    ap.add_argument("--skip-duckdb", action="store_true", help="do not run DuckDB")
    ap.add_argument("--generate-only", action="store_true", help="generate the data (if missing) and stop")
    ap.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    ap.add_argument("--sigma", type=float, default=2.0,
                    help="σ of the lognormal customer-activity weights (default 2.0; larger = heavier tail)")
    ap.add_argument("--chunk-rows", type=parse_count, default=parse_count("10m"),
                    help="rows per generation chunk: bounds generator memory (default 10m, ~2 GB)")
    ap.add_argument("--guest-share", type=float, default=0.0,
                    help="share of the orders bought under one placeholder customer id, G0000000 (a "
                    "guest checkout: one customer with very many rows; default 0)")
    ap.add_argument("--dirty-share", type=float, default=0.0,
                    help="share of dirty rows: null ids and timestamps, NaN amounts, duplicate "
                    "lines (rejected), refunds and zero amounts (kept); default 0, at most 0.012")
    ap.add_argument("--timezone", default=None,
                    help="write zone-aware timestamps and bucket days in this IANA zone "
                    "(e.g. America/New_York; default: naive timestamps)")
    ap.add_argument("--threads", type=int, default=0, help="threads for both tools (default: all cores)")
    ap.add_argument("--duckdb-memory-limit", default="",
                    help="DuckDB memory_limit, e.g. 8GB (default: DuckDB's own, 80%% of RAM, or 40%% of the "
                    "address-space cap when one is set with prlimit --as / ulimit -v, so that DuckDB "
                    "spills instead of failing)")
    args = ap.parse_args(argv)
    if args.reps < 1:
        die("--reps must be at least 1")
    if not 0.0 <= args.guest_share < 1.0:
        die("--guest-share must be in [0, 1)")
    if not 0.0 <= args.dirty_share <= 0.012:
        die("--dirty-share must be in [0, 0.012]: above it more than 1% of the rows are rejected "
            "and the job's quality.max_rejected_share stops the run")
    if not args.duckdb_memory_limit:
        # Under an address-space cap (prlimit --as, ulimit -v) DuckDB's default limit (80% of
        # RAM) is above the cap: its allocations fail ("bad allocation") before it spills.
        # 40% of the cap leaves room for the allocator's reserved but unused address space.
        import resource
        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
        if cap != resource.RLIM_INFINITY:
            args.duckdb_memory_limit = "%dMB" % (cap * 0.4 // 1e6)
            log("address space capped at %.1f GB: DuckDB memory_limit %s (--duckdb-memory-limit)"
                % (cap / 1e9, args.duckdb_memory_limit))
    if args.rows < args.customers:
        die("--rows (%d) must be at least --customers (%d)" % (args.rows, args.customers))

    root = os.path.abspath(args.dir)
    data_dir = os.path.join(root, "rows%d_cust%d_seed%d" % (args.rows, args.customers, args.seed))
    if args.sigma != 2.0:
        data_dir += "_sigma%g" % args.sigma
    if args.guest_share > 0:
        data_dir += "_guest%g" % args.guest_share
    if args.dirty_share > 0:
        data_dir += "_dirty%g" % args.dirty_share
    if args.timezone:
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(args.timezone)
        except Exception as e:
            die("--timezone %r is not a time zone this Python knows (%s); use an IANA name "
                "such as America/New_York" % (args.timezone, e))
        data_dir += "_tz" + args.timezone.replace("/", "-")
    marker = os.path.join(data_dir, "_COMPLETE")
    if os.path.exists(marker):
        with open(marker) as f:
            meta = json.load(f)
        log("reusing %s (%d rows, generated with seed %d)" % (data_dir, meta["rows"], meta["seed"]))
    else:
        if os.path.exists(data_dir):
            die("%s exists without a _COMPLETE marker; remove it" % data_dir)
        free = shutil.disk_usage(root if os.path.exists(root) else os.path.dirname(root)).free
        need = args.rows * 45  # ~35 bytes a row on disk, with margin
        if free < need:
            die("%s has %s free; about %s needed for %d rows" % (root, human_bytes(free), human_bytes(need), args.rows))
        log("generating %d rows for %d customers under %s" % (args.rows, args.customers, data_dir))
        meta = generate(data_dir, args.rows, args.customers, args.seed, args.sigma, args.chunk_rows,
                        args.guest_share, args.dirty_share, args.timezone)
    data_bytes = dir_bytes(os.path.join(data_dir, "transactions")) + os.path.getsize(
        os.path.join(data_dir, "attributes.parquet"))
    job = os.path.join(data_dir, "job.toml")
    if args.generate_only:
        print("data: %s (%s), job: %s" % (data_dir, human_bytes(data_bytes), job))
        return 0

    run_c = not args.skip_custval
    run_d = not args.skip_duckdb
    if not (run_c or run_d):
        die("nothing to run: both --skip-custval and --skip-duckdb")
    binary = os.path.abspath(os.path.expanduser(args.custval))
    if run_c and not os.access(binary, os.X_OK):
        die("custval binary %s not found or not executable; build it with `cargo build --release` "
            "or pass --custval PATH (or --skip-custval)" % binary)

    bench = os.path.join(root, "bench-out", os.path.basename(data_dir))
    os.makedirs(bench, exist_ok=True)
    c_out = os.path.join(bench, "custval")
    d_out = os.path.join(bench, "duckdb.parquet")
    d_tmp = os.path.join(bench, "duckdb-tmp")
    os.makedirs(d_tmp, exist_ok=True)
    features = os.path.join(c_out, "customer_features", "as_of=" + AS_OF, "part-00000.parquet")

    times = {"custval": [], "duckdb": []}
    rss = {"custval": [], "duckdb": []}
    cpu = {"custval": [], "duckdb": []}
    checked = None
    customers_out = None
    for rep in range(args.reps):
        order = ["custval", "duckdb"] if rep % 2 == 0 else ["duckdb", "custval"]
        for what in order:
            if what == "custval" and run_c:
                w, r, c = run_custval(binary, job, c_out, os.path.join(bench, "custval-rep%d.log" % (rep + 1)), args.threads)
            elif what == "duckdb" and run_d:
                w, r, c = run_duckdb(data_dir, d_out, os.path.join(bench, "duckdb-rep%d.log" % (rep + 1)),
                                  args.threads, args.duckdb_memory_limit, d_tmp)
            else:
                continue
            times[what].append(w)
            rss[what].append(r)
            cpu[what].append(c)
            log("rep %d %s: done" % (rep + 1, what))  # figures are printed only after the check
        if run_c and run_d:
            customers_out, problems = compare(features, d_out)
            if problems:
                print("MISMATCH between custval (%s) and DuckDB (%s), repetition %d:"
                      % (features, d_out, rep + 1))
                for p in problems:
                    print("  - " + p)
                return 1
            checked = True
            log("rep %d: custval's summary equals DuckDB's for all %d customers" % (rep + 1, customers_out["duckdb"]))

    def med(xs):
        return statistics.median(xs) if xs else None

    def gb(b):
        return None if b is None else b / 1e9

    print()
    print("Warehouse scale: %s rows (%s in the window up to %s), %s customers, %d files, data %s"
          % (f"{args.rows:,}", f"{meta['rows_in_window']:,}", AS_OF, f"{args.customers:,}",
             meta["files"], human_bytes(data_bytes)))
    print("check: %s" % ("custval == DuckDB for all %s customers (frequency, recency, T, purchase_days, "
                         "orders, first/last purchase exact; monetary, total_amount within 1e-9 rel.)"
                         % f"{customers_out['duckdb']:,}" if checked else "not run (one tool skipped)"))
    hdr = "%-8s %12s  %-28s %9s  %16s" % ("what", "rows", "wall s per rep", "median s", "peak RSS GB, max")
    print(hdr)
    print("-" * len(hdr))
    for what in ("custval", "duckdb"):
        if not times[what]:
            continue
        per = " ".join("%.2f" % t for t in times[what])
        peak = max(r for r in rss[what] if r is not None) if any(rss[what]) else None
        print("%-8s %12s  %-28s %9.2f  %16s" % (what, f"{args.rows:,}", per, med(times[what]),
                                                 "%.2f" % gb(peak) if peak else "?"))
    ratio = ratio_rss = None
    if times["custval"] and times["duckdb"]:
        ratio = med(times["custval"]) / med(times["duckdb"])
        rc, rd = med([r for r in rss["custval"] if r]), med([r for r in rss["duckdb"] if r])
        ratio_rss = rc / rd if rc and rd else None
        print("ratio custval / DuckDB (medians): wall %.2f, peak RSS %s"
              % (ratio, "%.2f" % ratio_rss if ratio_rss else "?"))
        # Each repetition's two runs are neighbours in time (alternating which goes first), so
        # their ratio cancels the machine's slower drift; CPU seconds vary less than wall time.
        paired = [c / d for c, d in zip(times["custval"], times["duckdb"])]
        print("ratio per repetition: wall %s (median %.2f)"
              % (" ".join("%.2f" % x for x in paired), med(paired)))
        if all(cpu["custval"]) and all(cpu["duckdb"]):
            print("CPU seconds (user + system): custval %s, DuckDB %s; ratio of medians %.2f"
                  % (" ".join("%.1f" % x for x in cpu["custval"]),
                     " ".join("%.1f" % x for x in cpu["duckdb"]),
                     med(cpu["custval"]) / med(cpu["duckdb"])))
    try:
        import duckdb
        duckdb_version = duckdb.__version__
    except ImportError:
        duckdb_version = None
    custval_version = None
    if run_c:
        try:
            custval_version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                             timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    record = {
        "bench": "scale",
        "rows": args.rows,
        "customers": args.customers,
        "rows_in_window": meta["rows_in_window"],
        "customers_in_window": customers_out["duckdb"] if customers_out else None,
        "as_of": AS_OF,
        "files": meta["files"],
        "data_bytes": data_bytes,
        "seed": args.seed,
        "sigma": args.sigma,
        "reps": args.reps,
        "checked": bool(checked),
        "custval": {"wall_s": [round(t, 3) for t in times["custval"]],
                    "median_wall_s": round(med(times["custval"]), 3) if times["custval"] else None,
                    "peak_rss_gb": [round(gb(r), 3) if r else None for r in rss["custval"]],
                    "cpu_s": [round(c, 2) if c is not None else None for c in cpu["custval"]],
                    "version": custval_version, "binary": binary if run_c else None},
        "duckdb": {"wall_s": [round(t, 3) for t in times["duckdb"]],
                   "median_wall_s": round(med(times["duckdb"]), 3) if times["duckdb"] else None,
                   "peak_rss_gb": [round(gb(r), 3) if r else None for r in rss["duckdb"]],
                   "cpu_s": [round(c, 2) if c is not None else None for c in cpu["duckdb"]],
                   "version": duckdb_version, "memory_limit": args.duckdb_memory_limit or None},
        "ratio_wall_median": round(ratio, 3) if ratio else None,
        "ratio_peak_rss_median": round(ratio_rss, 3) if ratio_rss else None,
        "ratio_wall_per_rep": [round(c / d, 3) for c, d in zip(times["custval"], times["duckdb"])],
        "threads": args.threads or os.cpu_count(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    print("SCALE_JSON " + json.dumps(record, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
