#!/usr/bin/env bash
# Baseline for custval's BTYD models: time the Python package `lifetimes` 0.11.3 on the same
# customer summary custval fits (BG/NBD + Gamma-Gamma fit, then P(alive), expected purchases in
# 30 periods and 12-month CLV for every customer).
#
#   benches/run_lifetimes_bench.sh SUMMARY.parquet [MAX_ROWS]
#
# SUMMARY.parquet needs the columns frequency, recency, T, monetary (custval's
# customer_features has them all). Prints one JSON line with the timings, then the fitted
# parameters.
#
# The venv lives outside the repository (BENCH_VENV, default ~/.cache/custval-bench-venv) and is
# reused across runs. lifetimes 0.11.3 is unmaintained (2020) and predates pandas 2 and
# numpy 2, so the pins below are versions of its own era; they install from wheels on
# Python 3.11 (the same pins as tests/fixtures/lifetimes/requirements.txt, plus pyarrow 20 to
# read Parquet, the newest checked that still runs with numpy 1.24; 26 does not). Set PYTHON to choose the interpreter that creates the venv.
set -euo pipefail

if [ "$#" -lt 1 ]; then
  echo "usage: $0 SUMMARY.parquet [MAX_ROWS]" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
venv="${BENCH_VENV:-$HOME/.cache/custval-bench-venv}"
py="${PYTHON:-python3}"
stamp="$venv/.custval-bench-pins"
pins=(lifetimes==0.11.3 numpy==1.24.4 pandas==1.5.3 scipy==1.10.1 autograd==1.9.1 dill==0.4.1 pyarrow==20.0.0)

# Reinstall only when the venv is missing or was made with other pins.
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  echo "run_lifetimes_bench: creating $venv" >&2
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # pyarrow is pinned too: from some release after 20 its wheels refuse to import next to
  # numpy 1.x ("pyarrow requires NumPy 2.0 or newer"), and lifetimes needs numpy 1.24.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${pins[@]}"
  echo "${pins[*]}" >"$stamp"
fi

exec "$venv/bin/python" "$here/lifetimes_bench.py" "$@"
