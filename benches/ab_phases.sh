#!/usr/bin/env bash
# A/B comparison of custval builds, phase by phase, on one job: runs the builds alternately
# (A B A B ...) so that a machine whose speed drifts within the hour (seen here: the same build's
# 50 M run took 21.6-26.7 s within one session) drifts under both, and prints one line per run:
# the split, the bucket phase and the date phase (from the debug log), wall and CPU seconds and
# peak RSS.
#
#   benches/ab_phases.sh JOB REPS BUILD...
#
# JOB is a job file (e.g. the scale benchmark's, /tmp/custval-scale/rows50000000_*/job.toml,
# written by `python3 benches/scale.py --rows 50m --generate-only`); each BUILD is a custval
# binary (copy target/release/custval aside before rebuilding). Each build writes to its own
# output directory under ${AB_OUT:-/tmp/custval-ab}. Compare CPU seconds and phase times over
# several pairs; a single pair is within the drift.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 JOB REPS BUILD..." >&2
  exit 2
fi
job=$1
reps=$2
shift 2
out_root="${AB_OUT:-/tmp/custval-ab}"
mkdir -p "$out_root"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for _ in $(seq "$reps"); do
  for build in "$@"; do
    name=$(basename "$build")
    RUST_LOG=custval=debug /usr/bin/time -f "WALL %e %U %S %M" \
      "$build" run "$job" --output "$out_root/$name" >/dev/null 2>"$log" || {
      echo "$name: run failed (log: $log)" >&2
      trap - EXIT
      exit 1
    }
    sed -E 's/\x1b\[[0-9;]*m//g' "$log" | awk -v b="$name" '
      /split into customer buckets/ { match($0, /elapsed_s=[0-9.]+/); split_s = substr($0, RSTART + 10, RLENGTH - 10) }
      /bucket done/ { match($0, / elapsed_s=[0-9.]+/); buckets_s = substr($0, RSTART + 11, RLENGTH - 11) }
      /run finished/ { match($0, /elapsed_s=[0-9.]+/); total_s = substr($0, RSTART + 10, RLENGTH - 10) }
      /^WALL/ {
        printf "%s split %.2f buckets %.2f date %.2f wall %s cpu %.1f peak %.2f GB\n",
          b, split_s, buckets_s - split_s, total_s - buckets_s, $2, $3 + $4, $5 / 1e6
      }'
  done
done
