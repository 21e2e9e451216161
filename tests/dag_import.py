"""Checks examples/airflow/custval_dag.py without running Airflow.

    python3 tests/dag_import.py          (from the repository root, or from anywhere)

(a) Always: parses the DAG file with `ast` and checks the DAGs' ids, catchup, max_active_runs,
    retries, pools and the bash commands (the `custval` command line is a contract with the CLI),
    the backfill's templated `--every`, and the KubernetesPodOperator variant's arguments, job
    volume and guarded import.
(b) Only when `airflow` is importable: loads the file with DagBag and checks there are no import
    errors and the DAGs are there, with the rendered-to-be commands and the pool on their tasks
    (custval_daily_k8s only when the Kubernetes provider is importable too).

Prints one line per check and `N passed, M failed` last; exits 1 if any check failed.
"""

import ast
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAG_FILE = os.path.join(ROOT, "examples", "airflow", "custval_dag.py")
DAILY, BACKFILL, DAILY_K8S = "custval_daily", "custval_backfill", "custval_daily_k8s"
OPERATORS = ("BashOperator", "KubernetesPodOperator")

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok or not detail else ": " + detail))
    return bool(ok)


def const_str(node, env):
    """Best-effort static value of a string expression: literals, names bound to literals,
    `+` and `%` concatenation. Unknown parts become '<?>'."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else repr(node.value)
    if isinstance(node, ast.Name):
        return env.get(node.id, "<?>")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return const_str(node.left, env) + const_str(node.right, env)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return const_str(node.left, env).replace("%s", "<?>")
    if isinstance(node, ast.JoinedStr):
        return "".join(
            const_str(v, env) if isinstance(v, ast.Constant) else "<?>" for v in node.values
        )
    return "<?>"


def kwargs_of(call):
    return {k.arg: k.value for k in call.keywords if k.arg}


def call_name(call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def static_checks(tree):
    # Module-level string assignments (CUSTVAL_BIN, JOB_FILE, ...) and dicts (default_args).
    env, dicts = {}, {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name = node.targets[0].id
            if isinstance(node.value, ast.Dict):
                dicts[name] = node.value
            else:
                value = const_str(node.value, env)
                if value != "<?>":
                    env[name] = value

    # DAGs: `with DAG(...) as x:` blocks, and the operator calls inside each.
    dags = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and call_name(call) == "DAG":
                kw = kwargs_of(call)
                dag_id = (
                    const_str(kw["dag_id"], env)
                    if "dag_id" in kw
                    else (const_str(call.args[0], env) if call.args else "<?>")
                )
                tasks = [
                    c
                    for c in ast.walk(node)
                    if isinstance(c, ast.Call) and call_name(c) in OPERATORS
                ]
                dags[dag_id] = (kw, tasks)

    for dag_id in (DAILY, BACKFILL):
        check("dag id %s present" % dag_id, dag_id in dags, "found %s" % sorted(dags))
    if DAILY not in dags or BACKFILL not in dags:
        return

    def literal(kw, key):
        try:
            return ast.literal_eval(kw[key])
        except (KeyError, ValueError):
            return "<missing or not a literal>"

    def default_arg(kw, key):
        """The node of `key` in the DAG's default_args (a dict literal or a module-level name)."""
        da = kw.get("default_args")
        if isinstance(da, ast.Name):
            da = dicts.get(da.id)
        if isinstance(da, ast.Dict):
            for k, v in zip(da.keys, da.values):
                if isinstance(k, ast.Constant) and k.value == key:
                    return v
        return None

    def retries(kw):
        node = default_arg(kw, "retries")
        try:
            return ast.literal_eval(node) if node is not None else None
        except ValueError:
            return None

    def bash_commands(tasks):
        return [
            const_str(kwargs_of(t).get("bash_command", ast.Constant("")), env)
            for t in tasks
            if call_name(t) == "BashOperator"
        ]

    def pools(tasks):
        return [
            const_str(kwargs_of(t)["pool"], env) if "pool" in kwargs_of(t) else None
            for t in tasks
        ]

    daily_kw, daily_tasks = dags[DAILY]
    check(
        "%s catchup=True" % DAILY,
        literal(daily_kw, "catchup") is True,
        str(literal(daily_kw, "catchup")),
    )
    check(
        "%s max_active_runs=1" % DAILY,
        literal(daily_kw, "max_active_runs") == 1,
        str(literal(daily_kw, "max_active_runs")),
    )
    sched = daily_kw.get("schedule", daily_kw.get("schedule_interval"))
    sched_text = ast.unparse(sched) if sched is not None else ""
    check(
        "%s has a daily schedule" % DAILY,
        sched_text in ("'@daily'", "'0 0 * * *'")
        or ("Timetable" in sched_text and "* * *" in sched_text),
        sched_text or "no schedule",
    )
    r = retries(daily_kw)
    check("%s retries >= 1" % DAILY, isinstance(r, int) and r >= 1, str(r))
    check("%s retry_delay set" % DAILY, default_arg(daily_kw, "retry_delay") is not None)
    cmds = bash_commands(daily_tasks)
    check("%s has one BashOperator" % DAILY, len(cmds) == 1, str(len(cmds)))
    cmd = cmds[0] if cmds else ""
    for needle in ("--log-format json", " run ", "--as-of {{ ds }}", "/opt/custval/jobs/", ".toml"):
        check("%s command contains %r" % (DAILY, needle), needle in cmd, cmd)
    check(
        "%s command: --log-format before the subcommand" % DAILY,
        cmd.find("--log-format json") < cmd.find(" run "),
        cmd,
    )
    check(
        "%s no skip_on_exit_code" % DAILY,
        all("skip_on_exit_code" not in kwargs_of(t) for t in daily_tasks),
    )

    bf_kw, bf_tasks = dags[BACKFILL]
    check(
        "%s schedule=None" % BACKFILL,
        "schedule" in bf_kw and literal(bf_kw, "schedule") is None,
        ast.unparse(bf_kw["schedule"]) if "schedule" in bf_kw else "missing",
    )
    check("%s max_active_runs=1" % BACKFILL, literal(bf_kw, "max_active_runs") == 1)
    r = retries(bf_kw)
    check("%s retries >= 1" % BACKFILL, isinstance(r, int) and r >= 1, str(r))
    cmds = bash_commands(bf_tasks)
    check("%s has one BashOperator" % BACKFILL, len(cmds) == 1, str(len(cmds)))
    cmd = cmds[0] if cmds else ""
    for needle in (
        "--log-format json",
        " backfill ",
        "--from {{ params.from }}",
        "--to {{ params.to }}",
        "--every {{ params.every }}",
    ):
        check("%s command contains %r" % (BACKFILL, needle), needle in cmd, cmd)
    params = bf_kw.get("params")
    keys = (
        [k.value for k in params.keys if isinstance(k, ast.Constant)]
        if isinstance(params, ast.Dict)
        else []
    )
    check(
        "%s declares params from, to and every" % BACKFILL,
        {"from", "to", "every"} <= set(keys),
        str(keys),
    )
    every = (
        dict(zip(keys, params.values)).get("every") if isinstance(params, ast.Dict) else None
    )
    every_kw = kwargs_of(every) if isinstance(every, ast.Call) else {}
    try:
        enum = ast.literal_eval(every_kw["enum"]) if "enum" in every_kw else None
        default = ast.literal_eval(every.args[0]) if every is not None and every.args else None
    except ValueError:
        enum = default = None
    check(
        "%s param every: default month, one of day/week/month/quarter" % BACKFILL,
        default == "month"
        and enum is not None
        and set(enum) == {"day", "week", "month", "quarter"},
        "default %r, enum %r" % (default, enum),
    )

    # The variant in a Kubernetes pod (defined only when the provider imports).
    k8s_tasks = []
    if check("dag id %s present" % DAILY_K8S, DAILY_K8S in dags, "found %s" % sorted(dags)):
        k8s_kw, k8s_tasks = dags[DAILY_K8S]
        check("%s catchup=True" % DAILY_K8S, literal(k8s_kw, "catchup") is True)
        check("%s max_active_runs=1" % DAILY_K8S, literal(k8s_kw, "max_active_runs") == 1)
        pods = [t for t in k8s_tasks if call_name(t) == "KubernetesPodOperator"]
        check("%s has one KubernetesPodOperator" % DAILY_K8S, len(pods) == 1, str(len(pods)))
        kw = kwargs_of(pods[0]) if pods else {}
        args_node = kw.get("arguments")
        args = (
            [const_str(a, env) for a in args_node.elts]
            if isinstance(args_node, (ast.List, ast.Tuple))
            else []
        )
        check(
            "%s arguments: --log-format json run /jobs/<job>.toml --as-of {{ ds }}" % DAILY_K8S,
            len(args) == 6
            and args[:3] == ["--log-format", "json", "run"]
            and args[3].startswith("/jobs/")
            and args[3].endswith(".toml")
            and args[4:] == ["--as-of", "{{ ds }}"],
            str(args),
        )
        check("%s no cmds (the image's ENTRYPOINT runs)" % DAILY_K8S, "cmds" not in kw)
        mounts = ast.unparse(kw["volume_mounts"]) if "volume_mounts" in kw else ""
        volumes = ast.unparse(kw["volumes"]) if "volumes" in kw else ""
        check(
            "%s mounts a ConfigMap at /jobs" % DAILY_K8S,
            "'/jobs'" in mounts and "V1ConfigMapVolumeSource" in volumes,
            "volumes %s, volume_mounts %s" % (volumes, mounts),
        )
        check(
            "%s no skip_on_exit_code" % DAILY_K8S,
            all("skip_on_exit_code" not in kwargs_of(t) for t in k8s_tasks),
        )

    # Every task in one pool, a literal name (a pool is not templated).
    all_pools = pools(daily_tasks) + pools(bf_tasks) + pools(k8s_tasks)
    check(
        "every task has the same pool",
        all_pools
        and all(p and "<?>" not in p for p in all_pools)
        and len(set(all_pools)) == 1,
        str(all_pools),
    )

    # Only Airflow and the standard library may be imported (the scheduler parses the file on
    # hosts without custval), except in the body of a `try` that catches ImportError (the
    # Kubernetes provider and its client).
    stdlib = {"os", "datetime", "__future__"}
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            h.type is not None
            and any(
                isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                for n in ast.walk(h.type)
            )
            for h in node.handlers
        ):
            guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    bad = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        bad += [n for n in names if n.split(".")[0] not in stdlib | {"airflow"}]
    check("imports only airflow and the standard library", not bad, str(bad))


def airflow_checks():
    try:
        import airflow  # noqa: F401
    except ImportError:
        print("skip DagBag checks: airflow is not importable")
        return
    # Keep Airflow away from ~/airflow; DagBag parsing needs no database.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="custval-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.models import DagBag

    try:
        bag = DagBag(dag_folder=DAG_FILE, include_examples=False)
    except TypeError:  # newer Airflow 3 (3.3): no include_examples; LOAD_EXAMPLES is off above
        bag = DagBag(dag_folder=DAG_FILE)
    check("DagBag: no import errors", not bag.import_errors, str(bag.import_errors))
    for dag_id in (DAILY, BACKFILL):
        check("DagBag: %s loaded" % dag_id, dag_id in bag.dags, str(sorted(bag.dags)))
    daily = bag.dags.get(DAILY)
    if daily is not None:
        check(
            "DagBag: %s catchup and max_active_runs" % DAILY,
            daily.catchup is True and daily.max_active_runs == 1,
        )
        task = daily.tasks[0] if daily.tasks else None
        check(
            "DagBag: %s task command" % DAILY,
            task is not None and "--as-of {{ ds }}" in task.bash_command and task.retries >= 1,
            getattr(task, "bash_command", "no task"),
        )
    bf = bag.dags.get(BACKFILL)
    if bf is not None:
        check(
            "DagBag: %s params from/to/every" % BACKFILL,
            {"from", "to", "every"} <= set(bf.params.keys()),
            str(bf.params),
        )
        task = bf.tasks[0] if bf.tasks else None
        check(
            "DagBag: %s task command" % BACKFILL,
            task is not None and "--every {{ params.every }}" in task.bash_command,
            getattr(task, "bash_command", "no task"),
        )
    try:
        from airflow.providers.cncf.kubernetes.operators.pod import (  # noqa: F401
            KubernetesPodOperator,
        )
    except ImportError:
        print("skip DagBag checks of %s: the Kubernetes provider is not importable" % DAILY_K8S)
        dag_ids = (DAILY, BACKFILL)
    else:
        dag_ids = (DAILY, BACKFILL, DAILY_K8S)
        check("DagBag: %s loaded" % DAILY_K8S, DAILY_K8S in bag.dags, str(sorted(bag.dags)))
        k8s_dag = bag.dags.get(DAILY_K8S)
        task = k8s_dag.tasks[0] if k8s_dag is not None and k8s_dag.tasks else None
        args = list(getattr(task, "arguments", None) or [])
        mounts = [(m.mount_path, m.read_only) for m in getattr(task, "volume_mounts", None) or []]
        check(
            "DagBag: %s task arguments and /jobs mount" % DAILY_K8S,
            task is not None
            and args[-2:] == ["--as-of", "{{ ds }}"]
            and ("/jobs", True) in mounts
            and task.retries >= 1,
            "arguments %s, mounts %s" % (args, mounts),
        )
    pools = {
        t.pool for dag_id in dag_ids if dag_id in bag.dags for t in bag.dags[dag_id].tasks
    }
    check("DagBag: one pool on every task", len(pools) == 1 and None not in pools, str(pools))


def main():
    if not os.path.isfile(DAG_FILE):
        check("DAG file exists", False, DAG_FILE)
    else:
        with open(DAG_FILE, encoding="utf-8") as fh:
            source = fh.read()
        try:
            tree = ast.parse(source, filename=DAG_FILE)
        except SyntaxError as err:
            check("DAG file parses", False, str(err))
        else:
            check("DAG file parses", True)
            static_checks(tree)
            airflow_checks()
    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
