"""TLS end to end, as inventories/prod sets it up: every client on the application host verifies
its store's certificate against the inventory's CA (made by playbooks/pki.yml), a CA it does not
know is refused, and no store answers in plain text."""

from __future__ import annotations

import datetime
import json
import shlex

import pytest
from celerystack_app_host import app_host
from celerystack_testlib import vault_values
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SECRETS = vault_values()
testinfra_hosts = ["app1"]
CA = "/etc/celerystack/tls/broker-ca.crt"
# On the test host (root writes it, the probe only reads it).
OTHER_CA = "/root/other-ca.crt"

# Run on app1 with the application's own Python (its PyMySQL and redis clients). Prints one
# outcome per probe: "ok", "untrusted" (certificate verification failed) or what else happened.
PROBES = r"""
import json, socket, ssl, sys
import pymysql, redis
ca, other = sys.argv[1], sys.argv[2]
db_password, lock_password = sys.stdin.read().split()

def outcome(err):
    # A client library may wrap the TLS error (redis-py says only "ConnectionError"): the cause
    # chain holds the verification failure.
    cause = err
    while cause is not None:
        verification = isinstance(cause, ssl.SSLCertVerificationError)
        if verification or "CERTIFICATE_VERIFY_FAILED" in repr(cause):
            return "untrusted"
        cause = cause.__cause__ or cause.__context__
    return type(err).__name__ + ": " + repr(err)[:200]

def handshake(host, port, cafile):
    context = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return "ok"
    except Exception as err:
        return outcome(err)

def database(**tls):
    try:
        pymysql.connect(host="app-db", user="celerystack", password=db_password,
                        database="celerystack", connect_timeout=10, **tls).close()
        return "ok"
    except Exception as err:
        return outcome(err)

def lock_store(**tls):
    try:
        redis.Redis(host="app-cache", port=6379, username="locks", password=lock_password,
                    socket_timeout=10, **tls).ping()
        return "ok"
    except Exception as err:
        return outcome(err)

def closed(host, port):
    try:
        socket.create_connection((host, port), timeout=10).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"

print(json.dumps({
    "amqps": handshake("app-broker", 5671, ca),
    "amqps other CA": handshake("app-broker", 5671, other),
    "management": handshake("app-broker", 15671, ca),
    "management other CA": handshake("app-broker", 15671, other),
    "amqp plain port": closed("app-broker", 5672),
    "management plain port": closed("app-broker", 15672),
    "redis": lock_store(ssl=True, ssl_ca_certs=ca),
    "redis other CA": lock_store(ssl=True, ssl_ca_certs=other),
    "redis in plain text": lock_store(),
    "mariadb": database(ssl={"ca": ca, "check_hostname": True}),
    "mariadb other CA": database(ssl={"ca": other, "check_hostname": True}),
    "mariadb in plain text": database(ssl_disabled=True),
}))
"""


def other_ca_pem() -> str:
    """A CA that signed nothing of the platform's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not the platform's CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def probes() -> dict[str, str]:
    host = app_host()
    host.run(f"printf %s {shlex.quote(other_ca_pem())} > {OTHER_CA}")
    passwords = " ".join(
        SECRETS[name] for name in ("vault_mariadb_runtime_password", "vault_redis_lock_password")
    )
    result = host.run(
        f"printf %s {shlex.quote(passwords)} | /opt/celerystack/venv/bin/python -c "
        f"{shlex.quote(PROBES)} {CA} {OTHER_CA}"
    )
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("store", ["amqps", "management", "redis", "mariadb"])
def test_each_store_is_verified_against_the_inventory_ca(probes, store):
    assert probes[store] == "ok", probes


@pytest.mark.parametrize("store", ["amqps", "management", "redis", "mariadb"])
def test_a_client_that_does_not_trust_the_ca_is_refused(probes, store):
    assert probes[f"{store} other CA"] == "untrusted", probes


def test_no_store_answers_in_plain_text(probes):
    assert probes["amqp plain port"] == "refused", probes
    assert probes["management plain port"] == "refused", probes
    assert probes["redis in plain text"] != "ok", probes
    # MariaDB has one port for both; the application's accounts REQUIRE SSL. The event round
    # trip, beat and Flower tests pass with these ports closed: the application speaks TLS only.
    assert "Access denied" in probes["mariadb in plain text"], probes
