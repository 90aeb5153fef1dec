"""Every secret of the vault rotated while events flow, exactly as docs/operations.md says: a
stand-in for Logstash publishes a steady stream of events (publisher confirms) through the whole
rotation, and afterwards every confirmed event is one row, every old credential is refused, every
new one works, and no secret was printed.

The rotation is the documented one, done for every secret at once (one stream, two runs):
- `playbooks/pki.yml -e celerystack_pki_rotate_keys=true`: a new key and certificate per store;
- run 1: every vault value new; Redis, MariaDB and Django keep the old one in their rotation
  window (`vault_*_previous_passwords`, `vault_django_secret_key_fallbacks`);
- run 2: the windows closed.
The vault values are given as extra variables from a file, in place of `ansible-vault edit`: the
scenario's vault file stays as committed. This is the scenario's final test: the stack keeps the
new secrets, so nothing may run after it (`@pytest.mark.final`).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import uuid
from pathlib import Path

import pytest
import testinfra
from celerystack_app_host import app_host, django_shell
from celerystack_testlib import (
    ansible_log,
    flat_secrets,
    run_playbook,
    scenario_dir,
    vault_values,
    wait_until,
)

testinfra_hosts = ["app1"]
STANDIN = "cs-logstash-standin"
PASSWORDS = "/root/standin-passwords"
COUNT = "/root/standin-confirmed"
PKI = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "/nonexistent")).parent / "files" / "pki"
STORES = {"app-broker": 5671, "app-cache": 6379, "app-db": 3306}
# Secrets whose store keeps the old value next to the new one for a rotation window, and the
# vault variable that holds the old value (inventories/prod/group_vars, vault.yml.example).
WINDOWS = {
    "vault_redis_admin_password": "vault_redis_admin_previous_passwords",
    "vault_redis_broker_password": "vault_redis_broker_previous_passwords",
    "vault_redis_lock_password": "vault_redis_lock_previous_passwords",
    "vault_mariadb_migration_password": "vault_mariadb_migration_previous_passwords",
    "vault_mariadb_runtime_password": "vault_mariadb_runtime_previous_passwords",
    "vault_django_secret_key": "vault_django_secret_key_fallbacks",
}

# Logstash's part, run on app1 under the application's Python (kombu) as a transient unit: one
# connection, publisher confirms, one event every 2 s with ids <prefix>-1, -2, ... An event
# counts once the broker confirmed it; an unconfirmed one is sent again (same id) after a
# reconnect. Each reconnect tries the passwords of PASSWORDS in order (new, then old), as a
# Logstash fleet does while its own configuration rolls out. Prints no password.
STANDIN_CODE = r"""
import json, os, signal, sys, time
import django
django.setup()
from celerystack_app.celery import app

prefix, passwords_file, count_file = sys.argv[1:4]
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
options = {**(app.conf.broker_transport_options or {}), "confirm_publish": True,
           "confirm_timeout": 10}

def connect():
    while not stopping:
        with open(passwords_file) as passwords:
            for number, password in enumerate(passwords.read().split()):
                conn = app.connection_for_write().clone(
                    password=password, connect_timeout=5, transport_options=options)
                try:
                    conn.connect()
                    print(f"connected with password {number}", flush=True)
                    return conn
                except Exception as err:
                    print(f"password {number}: {type(err).__name__}", flush=True)
                    conn.release()
        time.sleep(1)
    sys.exit(0)

confirmed = 0
conn = connect()
while not stopping:
    body = json.dumps({"id": f"{prefix}-{confirmed + 1}", "subject": "rotation"})
    try:
        conn.Producer().publish(
            body.encode(), exchange="logstash", routing_key="logstash", retry=False,
            content_type="application/json", content_encoding="binary", serializer=None,
            delivery_mode=2,
        )
    except Exception as err:
        print(f"publish not confirmed ({type(err).__name__}), reconnecting", flush=True)
        conn.release()
        conn = connect()
        continue
    confirmed += 1
    with open(count_file + ".new", "w") as out:
        out.write(str(confirmed))
    os.replace(count_file + ".new", count_file)
    time.sleep(2)
"""

# Run on app1 with the application's Python: one outcome per login, "ok" or "refused" (or what
# else happened). The credentials come on standard input as JSON: {probe: password}.
LOGINS = r"""
import base64, json, ssl, sys, urllib.error, urllib.request
import django
django.setup()
import pymysql, redis
from django.conf import settings
from celerystack_app.celery import app

CA = "/etc/celerystack/tls/broker-ca.crt"

def outcome(call):
    try:
        call()
        return "ok"
    except redis.exceptions.AuthenticationError:
        return "refused"
    except redis.exceptions.NoPermissionError:
        return "ok"  # logged in; the user may not PING
    except urllib.error.HTTPError as err:
        return "refused" if err.code == 401 else f"HTTP {err.code}"
    except pymysql.err.OperationalError as err:
        return "refused" if err.args[0] == 1045 else repr(err)[:200]
    except Exception as err:
        text = repr(err)
        refusals = ("ACCESS_REFUSED", "(1045, ", "Access denied for user")
        if any(refusal in text for refusal in refusals):
            return "refused"
        return type(err).__name__ + ": " + text[:200]

def http(url, user, password, context=None):
    request = urllib.request.Request(url)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", "Basic " + token)
    urllib.request.urlopen(request, timeout=15, context=context).close()

def amqp(password):
    conn = app.connection_for_write().clone(password=password, connect_timeout=10)
    try:
        conn.connect()
    finally:
        conn.release()

def lock_store(user, password):
    redis.Redis(**{**settings.LOCK_REDIS, "username": user, "password": password}).ping()

def database(user, password):
    db = settings.DATABASES["default"]
    pymysql.connect(host=db["HOST"], port=db["PORT"], user=user, password=password,
                    database=db["NAME"], ssl=db["OPTIONS"]["ssl"], connect_timeout=10).close()

api = ssl.create_default_context(cafile=CA)
flower = f"http://{sys.argv[1]}:5555/"
checks = {
    "rabbitmq celery": lambda pw: amqp(pw),
    "rabbitmq admin": lambda pw: http("https://app-broker:15671/api/whoami", "admin", pw, api),
    "rabbitmq flower": lambda pw: http("https://app-broker:15671/api/whoami", "flower", pw, api),
    "redis admin": lambda pw: lock_store("admin", pw),
    "redis broker": lambda pw: lock_store("celery", pw),
    "redis lock": lambda pw: lock_store("locks", pw),
    "mariadb runtime": lambda pw: database("celerystack", pw),
    "mariadb migration": lambda pw: database("celerystack_migrate", pw),
    "flower": lambda pw: http(flower, "admin", pw),
    "monit": lambda pw: http("http://127.0.0.1:2812/", "monit", pw),
}
passwords = json.load(sys.stdin)
print(json.dumps({probe: outcome(lambda: checks[probe](pw)) for probe, pw in passwords.items()}))
"""
# Which vault variable each login probe uses.
PROBES = {
    "rabbitmq celery": "vault_rabbitmq_celery_password",
    "rabbitmq admin": "vault_rabbitmq_admin_password",
    "rabbitmq flower": "vault_rabbitmq_flower_password",
    "redis admin": "vault_redis_admin_password",
    "redis broker": "vault_redis_broker_password",
    "redis lock": "vault_redis_lock_password",
    "mariadb runtime": "vault_mariadb_runtime_password",
    "mariadb migration": "vault_mariadb_migration_password",
    "flower": "vault_flower_password",
    "monit": "vault_monit_password",
}

SERVED_CERTIFICATE = r"""
import hashlib, json, socket, ssl, sys
import django
django.setup()
import pymysql
from django.conf import settings

CA = "/etc/celerystack/tls/broker-ca.crt"

def handshake(host, port):
    context = ssl.create_default_context(cafile=CA)
    with socket.create_connection((host, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()

def database():
    db = settings.DATABASES["default"]
    conn = pymysql.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                           password=db["PASSWORD"], ssl=db["OPTIONS"]["ssl"], connect_timeout=10)
    try:
        return hashlib.sha256(conn._sock.getpeercert(binary_form=True)).hexdigest()
    finally:
        conn.close()

print(json.dumps({"app-broker": handshake("app-broker", 5671),
                  "app-cache": handshake("app-cache", 6379), "app-db": database()}))
"""


def python_on_app(code: str, stdin: str = "", *args: str) -> dict:
    """Run `code` with the application's Python and settings on app1 as root; its last line is
    JSON. Standard input comes through printf (a shell builtin: no secret on a command line)."""
    command = (
        f"set -a; . /etc/celerystack/app.env; set +a; printf %s {shlex.quote(stdin)} | "
        f"/opt/celerystack/venv/bin/python -c {shlex.quote(code)} {shlex.join(args)}"
    )
    result = app_host().run(f"bash -c {shlex.quote(command)}")
    assert result.rc == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def logins(values: dict) -> dict[str, str]:
    address = app_host().check_output("hostname -I").split()[0]
    passwords = json.dumps({probe: values[name] for probe, name in PROBES.items()})
    return python_on_app(LOGINS, passwords, address)


def served_certificates() -> dict[str, str]:
    return python_on_app(SERVED_CERTIFICATE)


def file_fingerprint(host: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    certificate = x509.load_pem_x509_certificate((PKI / f"{host}.crt").read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex()


def signed_with_the_key() -> str:
    result = django_shell("from django.core import signing\nprint('SIGNED', signing.dumps('rot'))")
    return next(ln for ln in result.stdout.splitlines() if ln.startswith("SIGNED")).split()[1]


def signature_accepted(token: str) -> bool:
    result = django_shell(
        "from django.core import signing\n"
        f"try:\n    print('CHECK', signing.loads({token!r}))\n"
        "except signing.BadSignature:\n    print('CHECK refused')"
    )
    return "CHECK rot" in result.stdout


def cookie_accepted(cookie: str) -> bool:
    broker = testinfra.get_host("podman://app-broker")
    command = f"rabbitmqctl --erlang-cookie {shlex.quote(cookie)} -q eval 'ok.'"
    return broker.run(f"timeout 60 {command}").rc == 0


def confirmed_events() -> int:
    found = app_host().run(f"cat {COUNT}").stdout.strip()
    return int(found or 0)


def stored_events(prefix: str, confirmed: int) -> tuple[int, int]:
    """(rows, confirmed events with a row) of the stand-in's events. An event sent but not yet
    confirmed when the stand-in stopped may have a row too: it is not a confirmed one."""
    result = django_shell(
        "from celerystack_app.mail.models import MailData\n"
        f"ids = list(MailData.objects.filter(event_id__startswith={prefix + '-'!r})"
        ".values_list('event_id', flat=True))\n"
        f"numbers = {{int(i.rsplit('-', 1)[1]) for i in ids}}\n"
        f"print('STORED', len(ids), len([n for n in numbers if n <= {confirmed}]))"
    )
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("STORED"))
    return int(line.split()[1]), int(line.split()[2])


def new_values(old: dict) -> dict:
    """A new value for every vault secret of vault.yml.example (the TLS keys are the PKI
    helper's), each as long as the old one asks for."""
    fresh = {name: secrets.token_urlsafe(32) for name in old if not name.startswith("vault_tls")}
    fresh["vault_django_secret_key"] = secrets.token_urlsafe(60)
    fresh["vault_rabbitmq_erlang_cookie"] = secrets.token_hex(24)  # letters and digits only
    return fresh


def write_vars(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def rotation(tmp_path_factory):
    """Rotate everything under load; returns what was seen on the way."""
    host = app_host()
    work = tmp_path_factory.mktemp("rotation")
    old = {
        k: v
        for k, v in vault_values().items()
        if k in PROBES.values() or k in WINDOWS or k == "vault_rabbitmq_erlang_cookie"
    }
    old_flat = flat_secrets()
    new = new_values(old)
    seen: dict = {"old": old, "new": new, "old_flat": old_flat}
    seen["certificates before"] = served_certificates()
    token = signed_with_the_key()

    # The stream starts on the old broker password.
    prefix = f"rot-{uuid.uuid4().hex[:8]}"
    host.run(f"printf %s {shlex.quote(old['vault_rabbitmq_celery_password'])} > {PASSWORDS}")
    host.run(f"rm -f {COUNT}; printf %s {shlex.quote(STANDIN_CODE)} > /root/standin.py")
    started = host.run(
        f"systemd-run --unit {STANDIN} --property EnvironmentFile=/etc/celerystack/app.env "
        f"/opt/celerystack/venv/bin/python /root/standin.py {prefix} {PASSWORDS} {COUNT}"
    )
    assert started.rc == 0, started.stderr
    assert wait_until(lambda: confirmed_events() >= 3, 60), host.run(
        f"journalctl -u {STANDIN} --no-pager"
    ).stdout
    # From now on Logstash's configuration has the new password first, the old one second.
    stream = [new["vault_rabbitmq_celery_password"], old["vault_rabbitmq_celery_password"]]
    host.run(f"printf '%s\\n' {shlex.join(stream)} > {PASSWORDS}")

    # docs/operations.md, "Rotating secrets": the PKI helper, then site.yml twice.
    project = scenario_dir().parent.parent
    keys = run_playbook(
        str(project / "playbooks" / "pki.yml"), extra_vars={"celerystack_pki_rotate_keys": True}
    )
    seen["pki"] = keys
    site = str(project / "site.yml")
    opened = {**new, **{WINDOWS[name]: [old[name]] for name in WINDOWS}}
    seen["round 1"] = run_playbook(site, extra_vars_file=write_vars(work / "open.json", opened))
    seen["events after round 1"] = confirmed_events()
    seen["window logins old"] = logins(old)
    seen["window logins new"] = logins(new)
    seen["window signature"] = signature_accepted(token)
    seen["round 2"] = run_playbook(site, extra_vars_file=write_vars(work / "closed.json", new))
    seen["events after round 2"] = confirmed_events()

    host.run(f"systemctl stop {STANDIN}")
    seen["confirmed"] = confirmed_events()
    seen["stored"] = (0, 0)

    def all_stored() -> bool:
        seen["stored"] = stored_events(prefix, seen["confirmed"])
        return seen["stored"][1] >= seen["confirmed"]

    wait_until(all_stored, 420)
    seen["standin journal"] = host.run(f"journalctl -u {STANDIN} --no-pager").stdout
    seen["logins old"] = logins(old)
    seen["logins new"] = logins(new)
    seen["signature"] = signature_accepted(token)
    seen["old cookie"] = cookie_accepted(old["vault_rabbitmq_erlang_cookie"])
    seen["new cookie"] = cookie_accepted(new["vault_rabbitmq_erlang_cookie"])
    seen["certificates after"] = served_certificates()
    return seen


@pytest.mark.final
def test_both_runs_succeed_and_the_pki_helper_gave_every_store_a_new_key(rotation):
    for run in ("pki", "round 1", "round 2"):
        assert rotation[run].rc == 0, rotation[run].output
    assert set(rotation["round 2"].changed()) == {
        "app-broker",
        "app-broker2",
        "app-broker3",
        "app-cache",
        "app-db",
        "app1",
    }


@pytest.mark.final
def test_every_confirmed_event_is_one_row(rotation):
    # The stream kept flowing through both runs (broker restarts included) ...
    assert rotation["events after round 1"] > 3
    assert rotation["events after round 2"] > rotation["events after round 1"]
    # ... and every event the broker confirmed became exactly one row.
    rows, confirmed_rows = rotation["stored"]
    assert confirmed_rows == rotation["confirmed"], rotation["stored"]
    assert rows in (confirmed_rows, confirmed_rows + 1), rotation["stored"]  # no event twice


@pytest.mark.final
def test_the_windows_accept_old_and_new_until_the_second_run(rotation):
    windowed = [probe for probe, name in PROBES.items() if name in WINDOWS]
    assert {p: rotation["window logins old"][p] for p in windowed} == dict.fromkeys(windowed, "ok")
    assert rotation["window logins new"] == dict.fromkeys(PROBES, "ok")
    assert rotation["window signature"], "a signature made with the old key was refused"


@pytest.mark.final
def test_every_old_credential_is_refused_and_every_new_one_works(rotation):
    assert rotation["logins old"] == dict.fromkeys(PROBES, "refused")
    assert rotation["logins new"] == dict.fromkeys(PROBES, "ok")
    assert not rotation["signature"], "a signature made with the old key is still accepted"
    assert not rotation["old cookie"] and rotation["new cookie"]


@pytest.mark.final
def test_every_store_serves_its_new_certificate(rotation):
    before, after = rotation["certificates before"], rotation["certificates after"]
    for store in STORES:
        assert after[store] != before[store], store
        assert after[store] == file_fingerprint(store), store


@pytest.mark.final
def test_no_old_or_new_secret_was_printed(rotation):
    log = ansible_log() + rotation["standin journal"]
    values = {**rotation["old_flat"], **{f"new {k}": v for k, v in rotation["new"].items()}}
    values.update({f"new {k}": v for k, v in flat_secrets().items()})
    assert not [name for name, value in values.items() if value in log]
