import os
import shlex
from pathlib import Path

import pytest
import testinfra
from celerystack_testlib import vault_values

pytest_plugins = ["celerystack_testlib"]

CELERY = ("celery", vault_values()["vault_rabbitmq_celery_password"])
CA = "/tmp/celerystack-test-ca.crt"  # noqa: S108 (scratch file on a throw-away test host)


CLIENT_CERT = "/tmp/celerystack-test-client.crt"  # noqa: S108 (throw-away test host)
CLIENT_KEY = "/tmp/celerystack-test-client.key"  # noqa: S108


@pytest.fixture(scope="session", autouse=True)
def ca_on_client():
    """Give the client host the CA, and its own certificate for mutual TLS (test PKI)."""
    ca = testinfra.get_host("podman://rabbit-tls").file("/etc/rabbitmq/tls/ca.crt").content_string
    client = testinfra.get_host("podman://client")
    client.run(f"cat > {CA} <<'EOF'\n{ca}EOF")
    pki = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki"
    for path, source in ((CLIENT_CERT, "client.crt"), (CLIENT_KEY, "client.key")):
        client.run(f"umask 077; cat > {path} <<'EOF'\n{(pki / source).read_text()}EOF")


def http_status(name, url, credentials):
    """HTTP status of a basic-auth GET, made on host `name` (the brokers have no curl)."""
    script = (
        "import base64, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Basic ' + "
        "base64.b64encode(sys.argv[2].encode()).decode()})\n"
        "try:\n    print(urllib.request.urlopen(req).status)\n"
        "except urllib.error.HTTPError as err:\n    print(err.code)\n"
    )
    return testinfra.get_host(f"podman://{name}").check_output(
        shlex.join(["python3", "-c", script, url, credentials])
    )


def probe(address, vhost, action, *args, user=CELERY, tls=None, cert=False):
    """Run the AMQP probe on the client host; credentials go through the environment."""
    env = f"AMQP_USER={shlex.quote(user[0])} AMQP_PASSWORD={shlex.quote(user[1])}"
    options = ["--tls", tls] if tls else []
    if cert:
        options += ["--cert", CLIENT_CERT, "--key", CLIENT_KEY]
    cmd = shlex.join(["python3", "/usr/local/lib/amqp_probe.py", *options, address, vhost, action])
    cmd += "".join(" " + shlex.quote(arg) for arg in args)
    return testinfra.get_host("podman://client").check_output(f"{env} {cmd}")
