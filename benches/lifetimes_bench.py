"""Time lifetimes 0.11.3 on a BTYD customer summary: the baseline custval's models are compared to.

    python lifetimes_bench.py SUMMARY.parquet [MAX_ROWS]

Run it through run_lifetimes_bench.sh, which makes a venv with the pinned versions.

SUMMARY.parquet has one row per customer with the columns frequency, recency, T and monetary
(custval's customer_features table has them; `monetary_value`, lifetimes' own name, is accepted
too). MAX_ROWS keeps the first N rows. The work timed is what custval does for the CLV columns:

1. fit: BetaGeoFitter(penalizer_coef=0.0) on all customers, then
   GammaGammaFitter(penalizer_coef=0.0) on the customers with frequency > 0 and monetary > 0
   (Gamma-Gamma needs repeat spend);
2. score: conditional_probability_alive, conditional_expected_number_of_purchases_up_to_time(30),
   customer_lifetime_value(time=12 months, discount_rate=0.01 per month, freq='D') for everyone.

Reading the file is not timed. Output: one JSON line
{"tool":"lifetimes","customers":N,"fit_seconds":..,"score_seconds":..,"total_seconds":..,"peak_rss_mb":..}
and then a second JSON line with the fitted parameters, so `head -1` gives the timing record.
peak_rss_mb is the process's peak resident set (ru_maxrss), which includes the interpreter
and the imported libraries (~170 MB with lifetimes and pyarrow loaded, before any data).
"""

import json
import resource
import sys
import time


def peak_rss_mb():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def load_summary(path, max_rows):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = set(table.column_names)
    if "monetary" not in names and "monetary_value" in names:
        table = table.rename_columns(
            ["monetary" if n == "monetary_value" else n for n in table.column_names]
        )
        names = set(table.column_names)
    missing = [c for c in ("frequency", "recency", "T", "monetary") if c not in names]
    if missing:
        sys.exit(
            "lifetimes_bench: error: %s: missing column(s) %s; found %s"
            % (path, ", ".join(missing), ", ".join(sorted(names)))
        )
    df = table.select(["frequency", "recency", "T", "monetary"]).to_pandas()
    if max_rows is not None:
        df = df.head(max_rows)
    return df.astype("float64")


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit("usage: lifetimes_bench.py SUMMARY.parquet [MAX_ROWS]")
    max_rows = int(argv[2]) if len(argv) == 3 else None
    df = load_summary(argv[1], max_rows)

    import lifetimes
    import lifetimes.utils
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    f, r, t, m = df["frequency"], df["recency"], df["T"], df["monetary"]
    repeat = df[(df["frequency"] > 0) & (df["monetary"] > 0)]

    t0 = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    for name, fit in (
        ("BetaGeoFitter", lambda: bgf.fit(f, r, t)),
        ("GammaGammaFitter", lambda: ggf.fit(repeat["frequency"], repeat["monetary"])),
    ):
        try:
            fit()
        except lifetimes.utils.ConvergenceError:
            # Happens on small samples (e.g. Gamma-Gamma on ~70 repeat customers); lifetimes
            # has already printed scipy's result on stdout.
            sys.exit(
                "lifetimes_bench: error: %s did not converge on %d customers (%d with repeat "
                "spend); use more rows" % (name, len(df), len(repeat))
            )
    t1 = time.perf_counter()

    prob_alive = bgf.conditional_probability_alive(f, r, t)
    expected_30 = bgf.conditional_expected_number_of_purchases_up_to_time(30, f, r, t)
    clv = ggf.customer_lifetime_value(bgf, f, r, t, m, time=12, discount_rate=0.01, freq="D")
    t2 = time.perf_counter()

    record = {
        "tool": "lifetimes",
        "customers": int(len(df)),
        "fit_seconds": round(t1 - t0, 6),
        "score_seconds": round(t2 - t1, 6),
        "total_seconds": round(t2 - t0, 6),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(record), flush=True)

    params = {
        "lifetimes_version": lifetimes.__version__,
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
        "gamma_gamma_customers": int(len(repeat)),
        # Sanity figures, so a run on broken input is visible at a glance.
        "mean_prob_alive": float(prob_alive.mean()),
        "sum_expected_purchases_30": float(expected_30.sum()),
        "sum_clv_12": float(clv.sum()),
    }
    print(json.dumps(params), flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except BrokenPipeError:
        # `... | head -1` closed stdout after the timing line: that is success, as in ripgrep.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
