"""Controller-side proof for the celery_app role and the beat_schedule module: module cases
against the live database, a running beat that picks up a change, check mode, bad input, and no
secret in any output."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from celerystack_app_host import ENV_FILE, app_host, django_shell
from celerystack_testlib import (
    assert_no_secret_in_log,
    assert_required_variables_are_named,
    inventory_vars,
    parse_recap,
    playbook_env,
    run_playbook,
    wait_until,
)

SCHEDULES = inventory_vars("app")["celery_app_schedules"]


def test_check_mode_after_converge_reports_no_change():
    run = run_playbook(check=True)
    assert run.rc == 0, run.output
    assert run.changed() and set(run.changed().values()) == {0}, run.output


def test_a_run_limited_to_the_database_keeps_the_application_hosts_grants():
    # The grants come from the application hosts' addresses; a --limit leaves their facts out, so
    # the preflight learns them (or the run would fail, or worse, drop the accounts).
    run = run_playbook(limit="databases", check=True)
    assert run.rc == 0, run.output
    assert set(run.recap) == {"app-db"}, run.output
    assert run.changed() == {"app-db": 0}, run.output
    assert "Gather the addresses of the application hosts this run leaves out" in run.output


class Installed:
    """The collection built from the checkout and installed from its tarball, as the README's
    "Installed as a collection instead" says, with a way to run commands beside it."""

    def __init__(self, root: Path):
        self.root = root
        self.collections = root / "collections"
        self.env = playbook_env(ANSIBLE_COLLECTIONS_PATH=str(self.collections))
        self.inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)

    def run(self, *argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    here = Installed(tmp_path_factory.mktemp("installed"))
    build = here.run("ansible-galaxy", "collection", "build", "--output-path", ".", str(project))
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = str(next(here.root.glob("celerystack-platform-*.tar.gz")))
    install = here.run(
        "ansible-galaxy",
        "collection",
        "install",
        "--offline",
        "--no-deps",
        "-p",
        "collections",
        tarball,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return here


def test_the_built_collection_runs_its_playbooks_by_name_against_the_live_stack(installed):
    # Run by name from outside the checkout, where only the installed copy can resolve.
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    contents = installed.collections / "ansible_collections" / "celerystack" / "platform"
    assert not (contents / "inventories").exists() and not (contents / "collections").exists()
    for playbook in ("roundtrip", "preflight", "pki"):
        parsed = installed.run(
            "ansible-playbook",
            f"celerystack.platform.{playbook}",
            "-i",
            installed.inventory,
            "--syntax-check",
        )
        assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    # The smoke test, and a check-mode converge of the workers: both read-only on the stack.
    for playbook, extra in (("smoke", []), ("site", ["--check", "--diff", "--tags", "workers"])):
        used = installed.run(
            "ansible-playbook",
            f"celerystack.platform.{playbook}",
            "-i",
            installed.inventory,
            *extra,
        )
        output = used.stdout + used.stderr
        assert used.returncode == 0, output
        assert project not in output, output
        recap = parse_recap(output)
        assert "app1" in recap and all(h["failed"] == 0 for h in recap.values()), output
    assert all(h["changed"] == 0 for h in recap.values()), output


def test_ansible_builder_reads_the_collections_execution_environment_metadata(installed):
    # What ansible-builder would put into an execution environment for this collection
    # (meta/execution-environment.yml), read from the installed copy as a build would.
    introspect = installed.run("ansible-builder", "introspect", str(installed.collections))
    output = introspect.stdout + introspect.stderr
    assert introspect.returncode == 0, output
    ours = [line for line in output.splitlines() if "celerystack.platform" in line]
    for requirement in ("cryptography", "pip", "openssh-client", "tar", "findutils"):
        assert any(line.lstrip("- '").startswith(requirement) for line in ours), output


def test_ansible_runner_converges_the_live_stack_with_the_site_playbook_by_name(installed):
    # How AWX / Automation Controller runs a playbook: ansible-runner, with a private data
    # directory of its own (an execution environment image holds the installed collection, as
    # ANSIBLE_COLLECTIONS_PATH does here). A whole converge of the converged stack: nothing to do.
    private = installed.root / "runner"
    (private / "env").mkdir(parents=True)
    used = installed.run(
        "ansible-runner",
        "run",
        str(private),
        "--playbook",
        "celerystack.platform.site",
        "--inventory",
        installed.inventory,
        timeout=1200,
    )
    output = used.stdout + used.stderr
    assert used.returncode == 0, output
    recap = parse_recap(output)
    assert set(recap) >= {"app1", "app-broker", "app-cache", "app-db"}, output
    assert all(h["failed"] == 0 and h["changed"] == 0 for h in recap.values()), output
    # The run's record is where AWX reads it: the artifacts of the private data directory.
    (artifact,) = (private / "artifacts").iterdir()
    assert (artifact / "rc").read_text().strip() == "0"
    assert "PLAY RECAP" in (artifact / "stdout").read_text()


def test_beat_schedule_cases_against_the_live_database():
    run = run_playbook("schedule-cases.yml")
    assert run.rc == 0, run.output


def heartbeats(name: str = "beat") -> int:
    """Stored heartbeat rows of that name (beat's own are "beat")."""
    result = django_shell(
        "from celerystack_app.mail.models import Heartbeat\n"
        f"print('BEATS', Heartbeat.objects.filter(name='{name}').count())"
    )
    return int(next(ln for ln in result.stdout.splitlines() if ln.startswith("BEATS")).split()[1])


def test_the_beat_service_fires_the_seeded_task_and_takes_a_change_without_a_restart():
    host = app_host()
    # The seeded heartbeat (every 60 s) was due when beat started, and a worker ran it.
    assert wait_until(
        lambda: "Sending due task heartbeat" in host.check_output("journalctl -u celery-beat")
    )
    assert wait_until(lambda: heartbeats() > 0, 60)
    pid = host.check_output("systemctl show -P MainPID celery-beat")
    since = host.check_output("date +%s")
    stored = heartbeats()
    faster = [dict(SCHEDULES[0], interval={"every": 2, "period": "seconds"}), *SCHEDULES[1:]]
    run = run_playbook(
        "../../playbooks/app.yml",
        extra_vars={"celery_app_schedules": faster},
        limit="app1",
    )
    try:
        assert run.rc == 0, run.output
        time.sleep(15)
        journal = host.check_output(f"journalctl -u celery-beat --since @{since}")
        # Every 60 s before the change; every 2 s after it, from the same beat process, and the
        # workers ran what it sent.
        assert journal.count("Sending due task heartbeat") >= 4, journal
        assert host.check_output("systemctl show -P MainPID celery-beat") == pid
        assert heartbeats() >= stored + 4
    finally:
        restored = run_playbook("../../playbooks/app.yml", limit="app1")
        assert restored.rc == 0, restored.output


# Each case asks for a real change (the rate limit) next to one bad value: the run must stop
# before any change, name the variable, and leave the settings as they were.
BAD_INPUTS = [
    ({"celery_app_secret_key": "too-short"}, "celery_app_secret_key"),
    ({"celery_app_broker_scheme": "http"}, "celery_app_broker_scheme"),
    ({"celery_app_db_host": ""}, "celery_app_db_host"),
    ({"celerystack_topology": {"vhost": "/celery", "queues": []}}, "celerystack_topology.queues"),
    ({"celery_app_db_tls_ca": "not a certificate"}, "DB_TLS_CA"),
]


@pytest.mark.parametrize(("bad", "variable"), BAD_INPUTS, ids=[c[1] for c in BAD_INPUTS])
def test_bad_input_fails_before_any_change(bad, variable):
    before = app_host().file(ENV_FILE).content_string
    run = run_playbook(
        "../../playbooks/app.yml",
        extra_vars={"celery_app_mail_data_rate_limit": "9/s", **bad},
        limit="app1",
    )
    assert run.rc != 0
    assert variable in run.output, run.output
    assert run.recap["app1"]["changed"] == 0, run.output
    assert app_host().file(ENV_FILE).content_string == before


def test_missing_secrets_are_named_by_argument_validation(tmp_path):
    assert_required_variables_are_named(
        "celery_app",
        [
            "celery_app_secret_key",
            "celery_app_db_password",
            "celery_app_db_migration_password",
            "celery_app_broker_password",
            "celery_app_lock_password",
        ],
        tmp_path,
    )


@pytest.mark.parametrize(
    ("role", "variables"),
    [("flower", ["flower_basic_auth_password"]), ("monit", ["monit_http_password"])],
)
def test_missing_service_secrets_are_named_by_argument_validation(role, variables, tmp_path):
    assert_required_variables_are_named(role, variables, tmp_path)


@pytest.mark.last
def test_no_secret_reaches_any_playbook_output():
    assert_no_secret_in_log("celery_app", [], tls_hosts=[])
