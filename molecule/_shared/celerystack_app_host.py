"""The application host of a scenario that deploys the application (site, and mariadb's platform
on Redis): commands as the service user with the deployed settings, tasks sent and timed, and
steady event streams run as transient units.
"""

from __future__ import annotations

import base64
import json
import shlex
import urllib.error
import urllib.request
import uuid

import testinfra
from celerystack_testlib import wait_until

ENV_FILE = "/etc/celerystack/app.env"
MANAGE = "/opt/celerystack/venv/bin/celerystack-manage"
APP_HOST = "app1"


def app_host():
    return testinfra.get_host(f"podman://{APP_HOST}")


def as_app(*argv, stdin=None, app=""):
    """Run a command as the service user with the application's environment file loaded (`app`:
    another application of the platform, by name; its user and paths are celerystack-<name>)."""
    user = f"celerystack-{app}" if app else "celerystack"
    command = f"set -a; . /etc/{user}/app.env; set +a; exec runuser -u {user} -- {shlex.join(argv)}"
    if stdin is not None:
        command = f"{command} <<'PYEOF'\n{stdin}\nPYEOF"
    return app_host().run(f"bash -c {shlex.quote(command)}")


def manage(app=""):
    """The application's management command (the reference application's, in its virtualenv)."""
    return f"/opt/celerystack-{app}/venv/bin/celerystack-manage" if app else MANAGE


def django_shell(code, app=""):
    """Run Python in `manage.py shell` as the service user; returns the completed command."""
    return as_app(manage(app), "shell", "--no-imports", stdin=code, app=app)


def ran_at(name: str, app: str = "") -> float | None:
    """When the heartbeat of that name ran (its row's time, as a Unix time), if it has."""
    result = django_shell(
        "from celerystack_app.mail.models import Heartbeat\n"
        f"row = Heartbeat.objects.filter(name={name!r}).first()\n"
        "print('AT', row.at.timestamp() if row else '-')",
        app,
    )
    value = next(ln for ln in result.stdout.splitlines() if ln.startswith("AT")).split()[1]
    return None if value == "-" else float(value)


def send(name: str, when: str) -> float:
    """Send a heartbeat task with `when` (countdown=... or eta=...); the Unix time it was sent."""
    sent = django_shell(
        "import datetime, time\n"
        "from celerystack_app.mail.tasks import heartbeat\n"
        "now = datetime.datetime.now(datetime.timezone.utc)\n"
        f"heartbeat.apply_async(kwargs={{'name': {name!r}}}, {when})\n"
        "print('SENT', now.timestamp())"
    )
    assert sent.rc == 0, sent.stderr
    return float(next(ln for ln in sent.stdout.splitlines() if ln.startswith("SENT")).split()[1])


def start_stream(unit: str, events: int, rate: int) -> None:
    """`celerystack-manage roundtrip` as a transient unit on the application host: `events`
    Logstash events at `rate` a second, each accepted by the broker, then a wait until every
    one is a row. The figures are its last output line."""
    roundtrip = f"{MANAGE} roundtrip --events {events} --rate {rate} --timeout 600"
    command = f"set -a; . {ENV_FILE}; set +a; exec runuser -u celerystack -- {roundtrip}"
    # One an earlier, interrupted run of the test left is stopped first.
    app_host().run(f"systemctl stop {unit}; systemctl reset-failed {unit}")
    started = app_host().run(
        f"systemd-run --unit={unit} --collect -p StandardOutput=truncate:/run/{unit}.out"
        f" -p StandardError=truncate:/run/{unit}.err bash -c {shlex.quote(command)}"
    )
    assert started.rc == 0, started.stderr


def stream_result(unit: str) -> dict:
    host = app_host()
    assert wait_until(lambda: host.run(f"systemctl is-active {unit}").rc != 0, 660)
    out = host.file(f"/run/{unit}.out").content_string
    err = host.file(f"/run/{unit}.err").content_string
    assert out.strip(), err
    return json.loads(out.strip().splitlines()[-1])


def flower(path: str, password: str | None = None, port: int = 5555) -> tuple[int, str]:
    """GET a Flower page from the controller, as a browser on the network would."""
    address = app_host().check_output("hostname -I").split()[0]
    request = urllib.request.Request(f"http://{address}:{port}{path}")
    if password is not None:
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (test URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


LONG_RUNNING = """
from celerystack_app.mail.tasks import long_running
long_running.apply_async(kwargs={"key": KEY, "seconds": SECONDS}, queue="default")
"""


def send_long_running(key: str, seconds: int) -> None:
    code = LONG_RUNNING.replace("KEY", repr(key)).replace("SECONDS", str(seconds))
    result = django_shell(code)
    assert result.rc == 0, result.stderr


def completion(key: str) -> tuple[int, bool]:
    """(attempts, completed) of the long task with this key."""
    result = django_shell(
        "from celerystack_app.mail.models import Completion\n"
        f"c = Completion.objects.filter(key={key!r}).first()\n"
        "print('COMPLETION', c.attempts if c else 0, bool(c and c.completed_at))"
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("COMPLETION"))
    attempts, done = line.split()[1:]
    return int(attempts), done == "True"


def started_long_running(seconds: int) -> str:
    """Send a long task to the default queue; returns its key once its first attempt runs."""
    key = f"long-{uuid.uuid4().hex[:8]}"
    send_long_running(key, seconds)
    assert wait_until(lambda: completion(key)[0] == 1, 60), completion(key)
    return key


def main_pid(unit: str) -> str:
    return app_host().check_output(f"systemctl show -P MainPID {unit}")
