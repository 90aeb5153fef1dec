import shlex

import testinfra

pytest_plugins = ["celerystack_testlib"]

ENV_FILE = "/etc/celerystack/app.env"
MANAGE = "/opt/celerystack/venv/bin/celerystack-manage"


def app_host():
    return testinfra.get_host("podman://app1")


def as_app(*argv, stdin=None):
    """Run a command as the service user with the application's environment file loaded."""
    command = f"set -a; . {ENV_FILE}; set +a; exec runuser -u celerystack -- {shlex.join(argv)}"
    if stdin is not None:
        command = f"{command} <<'PYEOF'\n{stdin}\nPYEOF"
    return app_host().run(f"bash -c {shlex.quote(command)}")


def django_shell(code):
    """Run Python in `manage.py shell` as the service user; returns the completed command."""
    return as_app(MANAGE, "shell", "--no-imports", stdin=code)
