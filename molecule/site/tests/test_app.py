"""The deployed application, on its host: installed offline, configured, migrated, scheduled,
secrets closed, and able to reach its broker, database and lock store."""

from __future__ import annotations

import json
import uuid

import pytest
from celerystack_app_host import ENV_FILE, MANAGE, app_host, as_app, django_shell
from celerystack_testlib import ansible_log, flat_secrets, vault_values, wait_until

SECRETS = vault_values()
# Each secret as the string that must never show (a PEM key by one line of its body).
FLAT = flat_secrets()
testinfra_hosts = ["app1"]


def test_the_virtualenv_came_from_the_wheelhouse_without_any_index():
    host = app_host()
    marker = host.file("/opt/celerystack/venv/WHEELHOUSE").content_string.strip()
    assert (
        host.file(f"/opt/celerystack/wheelhouse/{marker}/DIGEST").content_string.strip() == marker
    )
    assert host.run("/opt/celerystack/venv/bin/pip show celerystack-app").rc == 0
    # The host cannot reach a package index at all: the install can only have come from the
    # wheelhouse.
    offline = host.run(
        "timeout 60 /opt/celerystack/venv/bin/pip download --no-deps --retries 0 --timeout 5 "
        "-d /tmp/probe six"
    )
    assert offline.rc != 0


def test_django_deployment_check_passes_with_the_deployed_settings():
    result = as_app(MANAGE, "check", "--deploy", "--fail-level", "WARNING")
    assert result.rc == 0, result.stdout + result.stderr


def test_every_migration_is_applied_and_migrate_ran_once():
    plan = as_app(MANAGE, "showmigrations", "--plan")
    assert plan.rc == 0, plan.stderr
    assert "[X]" in plan.stdout and "[ ]" not in plan.stdout
    log = ansible_log()
    runs = log.split("TASK [celerystack.platform.celery_app : Apply the pending migrations]")[1:]
    outcomes = [run.split("TASK [")[0] for run in runs]
    assert sum("changed: [app1]" in outcome for outcome in outcomes) == 1, outcomes


def test_the_declared_schedules_are_in_the_database():
    result = django_shell(
        "import json\n"
        "from django_celery_beat.models import PeriodicTask\n"
        "print(json.dumps({t.name: [t.task, str(t.interval or t.crontab), t.enabled]"
        " for t in PeriodicTask.objects.all()}))"
    )
    assert result.rc == 0, result.stderr
    tasks = json.loads(result.stdout.strip().splitlines()[-1])
    # inventories/prod/group_vars/app.yml, as the scenario's copy links it.
    assert tasks["heartbeat"][0] == "celerystack_app.mail.tasks.heartbeat"
    assert tasks["heartbeat"][1] == "every 60 seconds"
    purge = tasks["nightly purge of stored mail events"]
    assert purge[0] == "celerystack_app.mail.tasks.purge_old_mail_data"
    assert purge[1].startswith("15 3 * * *") and "UTC" in purge[1], purge


def test_the_secrets_are_readable_by_the_service_user_only():
    host = app_host()
    secrets = host.file("/etc/celerystack/secrets")
    assert (secrets.user, secrets.mode) == ("celerystack", 0o400)
    assert host.run("runuser -u nobody -- cat /etc/celerystack/secrets").rc != 0
    assert host.run("runuser -u celerystack -- cat /etc/celerystack/secrets").rc == 0
    settings = host.file(ENV_FILE).content_string
    assert not [name for name, value in FLAT.items() if value in settings]
    # The migration password is never written on the host.
    found = host.run(
        f"grep -rl {SECRETS['vault_mariadb_migration_password']} /etc/celerystack /opt/celerystack"
    )
    assert found.stdout == ""


def test_the_application_reaches_database_lock_store_and_broker():
    event = f"probe-{uuid.uuid4()}"
    code = f"""
from celerystack_app.mail.locks import lock_client, acquire, release
from celerystack_app.mail.models import MailData
from celerystack_app.mail.tasks import store_mail_data
created = store_mail_data.apply(kwargs={{"event_id": "{event}", "subject": "probe"}}).get()
again = store_mail_data.apply(kwargs={{"event_id": "{event}", "subject": "probe"}}).get()
client = lock_client()
token = acquire(client, "probe", 30)
refused = acquire(client, "probe", 30)
released = release(client, "probe", token)
result = store_mail_data.apply_async(kwargs={{"event_id": "{event}-queued"}})
print("RESULT", created, again, MailData.objects.filter(event_id="{event}").count(),
      bool(token), refused, released)
"""
    result = django_shell(code)
    assert result.rc == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    assert line.split()[1:] == ["True", "False", "1", "True", "None", "True"]
    # apply_async went through the broker to the queue the topology routes the task to, and the
    # mail_data worker service stored it.
    check = (
        "from celerystack_app.mail.models import MailData\n"
        f"print('ROWS', MailData.objects.filter(event_id='{event}-queued').count())"
    )
    assert wait_until(lambda: "ROWS 1" in django_shell(check).stdout, 60)


@pytest.mark.parametrize("path", ["/opt/celerystack/venv", "/etc/celerystack/app.env"])
def test_code_and_settings_cannot_be_changed_by_the_service_user(path):
    assert as_app("test", "-w", path).rc != 0
