"""One topology, one derivation, every input checked first: proven through site.yml itself on
the converged stack (the scenario's topology is the sandbox's file, Celery queues named only)."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import testinfra
from celerystack_app_host import app_host
from celerystack_testlib import inventory_vars, run_playbook

TOPOLOGY = inventory_vars()["celerystack_topology"]
WORKERS = [f"celery-worker-{q}" for q in ("default", "mail_data", "email", "logstash")]
SERVICES = [*WORKERS, "celery-beat", "celery-flower", "monit"]
STORES = {"app-broker": "rabbitmq-server", "app-cache": "redis-server", "app-db": "mariadb"}


# The services whose recorded start is on another configuration generation than the current one.
STALE = 'grep -L "$(cat /etc/celerystack/generation)" /run/celerystack/started/* || true'


def main_pids() -> dict[str, str]:
    host = app_host()
    return {unit: host.check_output(f"systemctl show -P MainPID {unit}") for unit in SERVICES}


def queue_index(name: str) -> int:
    return next(i for i, q in enumerate(TOPOLOGY["queues"]) if q["name"] == name)


def topology_with(queue: str, **fields) -> dict:
    topology = copy.deepcopy(TOPOLOGY)
    topology["queues"][queue_index(queue)].update(fields)
    return topology


def test_the_topology_names_its_celery_queues_only():
    # No exchange and no binding is written for a Celery queue: they are derived.
    celery_queues = {q["name"] for q in TOPOLOGY["queues"] if not q.get("raw")}
    assert celery_queues == {"default", "mail_data", "email"}
    declared = {e["name"] for e in TOPOLOGY["exchanges"]}
    assert not declared & celery_queues
    assert not {b["destination"] for b in TOPOLOGY["bindings"]} & celery_queues
    bindings = testinfra.get_host("podman://app-broker").check_output(
        "rabbitmqctl -q list_bindings -p /celery source_name destination_name routing_key"
    )
    for queue in celery_queues:
        assert f"{queue}\t{queue}\t{queue}" in bindings, bindings


def test_tuning_one_queue_restarts_that_queue_alone():
    # docs/operations.md, "A backlog after an outage" (for good): `--tags workers`.
    before = main_pids()
    tuned = topology_with("mail_data", worker={"autoscale": "3,1"})
    run = run_playbook(extra_vars={"celerystack_topology": tuned}, tags="workers")
    try:
        assert run.rc == 0, run.output
        after = main_pids()
        assert after["celery-worker-mail_data"] != before["celery-worker-mail_data"]
        unchanged = {u: p for u, p in after.items() if u != "celery-worker-mail_data"}
        assert unchanged == {u: p for u, p in before.items() if u != "celery-worker-mail_data"}
        unit = app_host().file("/etc/systemd/system/celery-worker-mail_data.service")
        assert "--autoscale=3,1" in unit.content_string
        # Nothing but app1 changed (its unit, the reload, the restart).
        assert {h for h, c in run.changed().items() if c} == {"app1"}, run.output
    finally:
        restored = run_playbook(tags="workers")
        assert restored.rc == 0, restored.output


def test_a_restart_left_due_by_a_tag_limited_run_is_made_by_the_next_run():
    # The operator's old trap: the application's configuration changed, but the run that changed
    # it did not reach the services. The next run, even one that changes nothing itself, must
    # restart every service still running on the old configuration.
    before = main_pids()
    verbose = {"celery_app_log_level": "DEBUG"}
    app_only = run_playbook(
        extra_vars=verbose, tags="app", skip_tags="workers,beat,flower", limit="app"
    )
    try:
        assert app_only.rc == 0, app_only.output
        assert main_pids() == before
        host = app_host()
        stale = host.check_output(STALE).split()
        assert sorted(stale) == sorted(
            f"/run/celerystack/started/{u}.service" for u in SERVICES if u != "monit"
        )
        catch_up = run_playbook(extra_vars=verbose, tags="app", limit="app")
        assert catch_up.rc == 0, catch_up.output
        after = main_pids()
        assert all(after[u] != before[u] for u in SERVICES if u != "monit"), (before, after)
        assert after["monit"] == before["monit"]
        assert host.run(STALE).stdout == ""
        # Converged: nothing more to restart.
        again = run_playbook(extra_vars=verbose, tags="app", limit="app", check=True)
        assert again.rc == 0 and not any(again.changed().values()), again.output
    finally:
        restored = run_playbook(tags="app", limit="app")
        assert restored.rc == 0, restored.output


def faulty_topology() -> tuple[dict, list[str]]:
    """One topology with a fault in every part the check covers, and the path each is named by:
    the platform-wide check reports every problem of a topology at once."""
    topology = copy.deepcopy(TOPOLOGY)
    queues = topology["queues"]
    faults = {
        "default": {"worker": {"concurrency": "many", "concurency": 4}},
        "mail_data": {"worker": {"autoscale": "1,4"}},
        "email": {"worker": {"concurrency": -2, "soft_time_limit": 900, "time_limit": 600}},
        "logstash": {"routes": ["celerystack_app.mail.tasks.heartbeat"]},
    }
    for name, fields in faults.items():
        queues[queue_index(name)].update(fields)  # the topology names its queues only
    queues += [{"name": "email"}, {"name": "e mail"}]
    topology["bindings"].append({"source": "logstash", "destination": "nowhere"})
    q = "celerystack_topology.queues"
    named = [
        f"{q}[0].worker: unknown keys ['concurency']",
        f"{q}[0].worker.concurrency: must be an integer from 1 to 1000, got 'many'",
        f"{q}[{queue_index('mail_data')}].worker.autoscale",
        f"{q}[{queue_index('email')}].worker.concurrency: must be an integer from 1 to 1000, "
        "got -2",
        f"{q}[{queue_index('email')}].worker.soft_time_limit",
        f"{q}[{queue_index('logstash')}].routes",
        f"{q}[{len(queues) - 2}].name: queue declared twice",
        f"{q}[{len(queues) - 1}].name",
        f"celerystack_topology.bindings[{len(topology['bindings']) - 1}].destination",
    ]
    return topology, named


# Bad values through the whole site.yml on the converged stack: each run must end in the first
# play with changed=0 on every host, name every bad variable or field path, and leave every
# service running. The topology's faults go in one run (its check reports them all); each role
# variable goes in a run of its own (a role's check stops at its first), the runs side by side:
# a refused run changes nothing, so they cannot disturb each other.
FAULTY, FAULTS_NAMED = faulty_topology()
BAD = [
    ({"celerystack_topology": FAULTY}, FAULTS_NAMED),
    ({"celery_app_mail_data_rate_limit": "fast"}, ["celery_app_mail_data_rate_limit"]),
    ({"celery_app_broker_scheme": "http"}, ["celery_app_broker_scheme"]),
    ({"celery_app_broker_failover_hosts": ["mq2,mq3"]}, ["celery_app_broker_failover_hosts"]),
    ({"celery_worker_defaults": {"concurrency": 0}}, ["celery_worker_defaults"]),
    ({"celery_worker_queues": ["nope"]}, ["celery_worker_queues"]),
    ({"celery_beat_max_interval": 0}, ["celery_beat_max_interval"]),
    ({"flower_port": 70000}, ["flower_port"]),
    ({"monit_cycle": 1}, ["monit_cycle"]),
    ({"rabbitmq_amqp_port": 0}, ["rabbitmq_amqp_port"]),
    ({"redis_port": "six"}, ["redis_port"]),
    ({"mariadb_bind_addresses": ["db.example.org"]}, ["mariadb_bind_addresses"]),
]


def test_a_bad_value_anywhere_changes_nothing_anywhere():
    before = main_pids()
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda bad: run_playbook(extra_vars=bad[0]), BAD))
    problems = []
    for (bad, named), run in zip(BAD, runs, strict=True):
        missing = [n for n in named if n not in run.output]
        if run.rc == 0 or missing:
            problems.append(f"{sorted(bad)}: rc={run.rc}, not named: {missing}\n{run.output}")
        elif not run.recap or set(run.changed().values()) != {0}:
            problems.append(f"{sorted(bad)}: changed something\n{run.output}")
        elif "TASK [celerystack.platform.rabbitmq : Install" in run.output:
            problems.append(f"{sorted(bad)}: went past the checks\n{run.output}")
    assert not problems, "\n\n".join(problems)
    assert main_pids() == before
    for host, unit in STORES.items():
        assert testinfra.get_host(f"podman://{host}").service(unit).is_running
