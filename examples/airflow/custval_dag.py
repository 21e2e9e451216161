"""Airflow DAGs for custval: a daily run per as-of date, a manual one-call backfill, and the
daily run as a Kubernetes pod.

Copy this file into the Airflow dags folder. It imports nothing but Airflow and the standard
library (and, inside a try/except, the Kubernetes provider), so the scheduler parses it even on
hosts where custval is not installed; only the workers that run the BashOperator tasks need the
binary.

Three DAGs:

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
    No schedule; trigger it by hand with the params `from`, `to`, `every` (day, week, month or
    quarter; default month) and `force`. Its one task runs
    `custval backfill JOB --from .. --to .. --every ..`, which computes the as-of date at the
    end of every period ending in [from, to], skips partitions already written by the same job
    from the same input files, and goes on past a failed date. Exit code 5 (some dates failed)
    fails the task; a retry, or clearing the task, recomputes only the dates that are not up to
    date.

custval_daily_k8s
    custval_daily, run in a pod from the container image (Dockerfile at the repository root)
    by the KubernetesPodOperator, with the job file mounted from a ConfigMap at /jobs. Defined
    only when apache-airflow-providers-cncf-kubernetes is installed. Enable it instead of
    custval_daily, not beside it (both would compute the same dates). Set it up once:

        docker build -t registry.example.com/custval:0.1.0 . && docker push ...
        kubectl -n custval create configmap custval-jobs --from-file=cdnow.toml=jobs/cdnow.toml

    The pod is gone after the run, so the job's `source.uri` and `output.uri` must be object
    storage (s3://, gs://, az://), with credentials from the pod's service account (IRSA,
    Workload Identity) or from a Secret added to the pod's environment.

One custval task at a time: every task of these DAGs runs in the Airflow pool POOL ("custval"),
which must exist with one slot (a task whose pool does not exist is never scheduled):

    airflow pools set custval 1 "one custval run at a time"

so a manual backfill waits for the daily run and the other way round (custval does not
coordinate concurrent runs of one job: README, "Output and atomicity"). When you copy this file
for a second job, give it its own pool: different jobs may run side by side.

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

custval_daily_k8s only (environment only):

    CUSTVAL_IMAGE           container image                 default: custval:latest
    CUSTVAL_K8S_NAMESPACE   namespace of the pods           default: custval
    CUSTVAL_JOBS_CONFIGMAP  ConfigMap with <job>.toml keys  default: custval-jobs

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

try:  # apache-airflow-providers-cncf-kubernetes (it brings the kubernetes client)
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s
except ImportError:  # no provider: custval_daily_k8s is not defined
    KubernetesPodOperator = None

JOBS_DIR = "/opt/custval/jobs"
DEFAULT_BIN = os.environ.get("CUSTVAL_BIN", "custval")
DEFAULT_JOB = os.environ.get("CUSTVAL_JOB", "cdnow")
START_DATE = datetime.strptime(
    os.environ.get("CUSTVAL_START_DATE", "2024-01-01"), "%Y-%m-%d"
).replace(tzinfo=timezone.utc)

# Rendered at run time: the Airflow Variable if set, else the parse-time environment default.
CUSTVAL_BIN = "{{ var.value.get('CUSTVAL_BIN', '%s') }}" % DEFAULT_BIN
JOB_FILE = JOBS_DIR + "/{{ var.value.get('CUSTVAL_JOB', '%s') }}.toml" % DEFAULT_JOB

# One slot: one custval task at a time across these DAGs (see the module doc). Create it with
#   airflow pools set custval 1 "one custval run at a time"
POOL = "custval"

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
        pool=POOL,
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
        "every": Param(
            "month",
            type="string",
            enum=["day", "week", "month", "quarter"],
            description="period: an as-of date at the end of each one ending in [from, to]",
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
            + " --from {{ params.from }} --to {{ params.to }} --every {{ params.every }}"
            + "{{ ' --force' if params.force else '' }}"
        ),
        pool=POOL,
        # Exit 5 (some dates failed) fails the task; a retry skips the dates already written.
        execution_timeout=timedelta(hours=12),
    )

if KubernetesPodOperator is not None:
    K8S_IMAGE = os.environ.get("CUSTVAL_IMAGE", "custval:latest")
    K8S_NAMESPACE = os.environ.get("CUSTVAL_K8S_NAMESPACE", "custval")
    JOBS_CONFIGMAP = os.environ.get("CUSTVAL_JOBS_CONFIGMAP", "custval-jobs")

    with DAG(
        dag_id="custval_daily_k8s",
        description="custval run in a Kubernetes pod: customer-value tables as of each day",
        schedule=CronDataIntervalTimetable("30 2 * * *", timezone="UTC"),
        start_date=START_DATE,
        catchup=True,
        max_active_runs=1,
        default_args=default_args,
        tags=["custval"],
    ) as daily_k8s_dag:
        KubernetesPodOperator(
            task_id="custval_run",
            name="custval-run",
            namespace=K8S_NAMESPACE,
            image=K8S_IMAGE,
            image_pull_policy="IfNotPresent",
            # The image's ENTRYPOINT is `custval`; these are its arguments (templated).
            arguments=[
                "--log-format",
                "json",
                "run",
                "/jobs/{{ var.value.get('CUSTVAL_JOB', '%s') }}.toml" % DEFAULT_JOB,
                "--as-of",
                "{{ ds }}",
            ],
            # The job files: each key of the ConfigMap is a file in /jobs, read-only.
            volumes=[
                k8s.V1Volume(
                    name="jobs",
                    config_map=k8s.V1ConfigMapVolumeSource(name=JOBS_CONFIGMAP),
                )
            ],
            volume_mounts=[k8s.V1VolumeMount(name="jobs", mount_path="/jobs", read_only=True)],
            # The image's user (uid 10001), checked by the kubelet.
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True, run_as_user=10001, run_as_group=10001
            ),
            # Sized for a few million transactions; raise both for larger jobs.
            container_resources=k8s.V1ResourceRequirements(
                requests={"cpu": "2", "memory": "4Gi"}, limits={"memory": "8Gi"}
            ),
            env_vars={"RUST_LOG": "info"},
            get_logs=True,
            # Any non-zero exit code of custval fails the task, as in custval_daily.
            pool=POOL,
            execution_timeout=timedelta(hours=2),
        )
