"""Airflow DAGs for custval: a daily run per as-of date, and a manual one-call backfill.

Copy this file into the Airflow dags folder. It imports nothing but Airflow and the standard
library, so the scheduler parses it even on hosts where custval is not installed; only the
workers that run the tasks need the binary.

Two DAGs:

custval_daily
    One run per day: `custval run JOB --as-of {{ ds }}`. `{{ ds }}` is the day the data
    interval starts; the run for day D starts when the interval ends, at 02:30 UTC on D + 1,
    and computes as-of D (purchases up to and including D), leaving 2.5 hours for late
    transactions to land. The schedule is an explicit CronDataIntervalTimetable because
    Airflow 3 otherwise gives cron schedules a trigger timetable, where `ds` is the day of the
    run itself (a day that has not ended yet).
    `catchup=True` makes Airflow create a run for every day since START_DATE that has none
    yet: that is this DAG's backfill (`airflow dags backfill` works too). Set
    CUSTVAL_START_DATE before enabling the DAG: from the default, that is one run per day
    since 2024-01-01, one at a time.
    `max_active_runs=1` keeps one run of the job at a time, because custval does not coordinate
    concurrent runs (README, "Output and atomicity": the last run to publish a table wins).

custval_backfill
    No schedule; trigger it by hand with the params `from`, `to` (and `force`). Its one task
    runs `custval backfill JOB --from .. --to .. --every month`, which computes the as-of date
    at the end of every month ending in [from, to] (edit `--every` for day, week or quarter),
    skips partitions already written by the same job from the same input files, and goes on
    past a failed date. Exit code 5 (some dates failed) fails the task; a retry, or clearing
    the task, recomputes only the dates that are not up to date.
    Do not run it while custval_daily writes the same dates (see max_active_runs above).

Exit codes (README): 0 ok, 1 internal error, 2 bad job file or command line, 3 bad input data,
4 storage error, 5 partial backfill failure. Airflow fails a BashOperator task on any non-zero
exit, which is right for all of them, so `skip_on_exit_code` is not used: no custval exit code
means "nothing to do". Retries are for 4 (storage unreachable) and 5 (some dates failed);
retrying 1, 2 or 3 fails the same way again, which is harmless because a run publishes
nothing until every table is computed and reruns are idempotent.

Configuration. An Airflow Variable of the same name wins over the environment variable, which
wins over the default. Variables are read when the task runs (through Jinja), never while the
file is parsed, so parsing does not query the metadata database; environment variables are
read where the file is parsed (scheduler / DAG processor):

    CUSTVAL_BIN         custval binary on the workers       default: custval (on PATH)
    CUSTVAL_JOB         job name: /opt/custval/jobs/<job>.toml   default: cdnow
    CUSTVAL_START_DATE  first as-of date of custval_daily (environment only)
                                                            default: 2024-01-01

Logs: `--log-format json` writes one JSON object per line to stderr, which the task log keeps;
`run` prints one line per written table on stdout.
"""

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3: the task SDK
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.x
    from airflow import DAG
    from airflow.models.param import Param

from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow >= 2.10 with apache-airflow-providers-standard, and Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2.x core operator
    from airflow.operators.bash import BashOperator

JOBS_DIR = "/opt/custval/jobs"
DEFAULT_BIN = os.environ.get("CUSTVAL_BIN", "custval")
DEFAULT_JOB = os.environ.get("CUSTVAL_JOB", "cdnow")
START_DATE = datetime.strptime(
    os.environ.get("CUSTVAL_START_DATE", "2024-01-01"), "%Y-%m-%d"
).replace(tzinfo=timezone.utc)

# Rendered at run time: the Airflow Variable if set, else the parse-time environment default.
CUSTVAL_BIN = "{{ var.value.get('CUSTVAL_BIN', '%s') }}" % DEFAULT_BIN
JOB_FILE = JOBS_DIR + "/{{ var.value.get('CUSTVAL_JOB', '%s') }}.toml" % DEFAULT_JOB

default_args = {
    "owner": "data-engineering",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
}

with DAG(
    dag_id="custval_daily",
    description="custval run: customer-value tables as of each day",
    # Daily at 02:30 UTC for the day before (see the module doc); same time as examples/cron.
    schedule=CronDataIntervalTimetable("30 2 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=True,
    max_active_runs=1,
    default_args=default_args,
    tags=["custval"],
) as daily_dag:
    BashOperator(
        task_id="custval_run",
        bash_command=CUSTVAL_BIN + " --log-format json run " + JOB_FILE + " --as-of {{ ds }}",
        # A run of a large job takes minutes; a hung object-store call should not hold the slot
        # for ever. Raise it for jobs with tens of millions of transactions.
        execution_timeout=timedelta(hours=2),
    )

with DAG(
    dag_id="custval_backfill",
    description="custval backfill: every period end in [from, to], in one call",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "from": Param(
            "2024-01-01", type="string", format="date", description="first day (YYYY-MM-DD)"
        ),
        "to": Param(
            "2024-12-31", type="string", format="date", description="last day (YYYY-MM-DD)"
        ),
        "force": Param(
            False, type="boolean", description="recompute partitions that are up to date"
        ),
    },
    tags=["custval"],
) as backfill_dag:
    BashOperator(
        task_id="custval_backfill",
        bash_command=(
            CUSTVAL_BIN
            + " --log-format json backfill "
            + JOB_FILE
            + " --from {{ params.from }} --to {{ params.to }} --every month"
            + "{{ ' --force' if params.force else '' }}"
        ),
        # Exit 5 (some dates failed) fails the task; a retry skips the dates already written.
        execution_timeout=timedelta(hours=12),
    )
