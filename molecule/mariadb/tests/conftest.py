import pytest
import testinfra

pytest_plugins = ["celerystack_testlib"]

CA = "/tmp/celerystack-test-ca.crt"  # noqa: S108 (scratch file on a throw-away test host)


@pytest.fixture(scope="session", autouse=True)
def ca_on_clients():
    """Give the client hosts the CA, as an application host would have it."""
    ca = testinfra.get_host("podman://db").file("/etc/mysql/tls/ca.crt").content_string
    for name in ("app1", "outsider"):
        testinfra.get_host(f"podman://{name}").run(f"cat > {CA} <<'EOF'\n{ca}EOF")
