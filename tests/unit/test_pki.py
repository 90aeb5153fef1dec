"""playbooks/pki.yml on the controller, against a user's copy of inventories/prod: it makes a CA,
a key and a certificate per TLS host, keeps the keys in one vault file only, shows none of them,
changes nothing the second time, and renews, rotates and reissues exactly what it is asked to."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "inventories" / "prod"
TLS_HOSTS = ("mq1", "redis1", "db1")
# The production layout with short names, and one store reached by an address.
HOSTS = """\
---
all:
  children:
    brokers:
      hosts:
        mq1:
          ansible_host: 10.1.2.3
    cache:
      hosts:
        redis1:
    databases:
      hosts:
        db1:
    app:
      children:
        workers:
          hosts:
            worker1:
        beat:
          hosts:
            ops1:
        flower:
          hosts:
            ops1:
"""
RECAP = re.compile(r"^localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", re.M)


def ansible(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


class Inventory:
    """A user's inventory directory and the vault password file it is used with."""

    def __init__(self, path: Path, password: Path):
        self.path, self.password = path, password
        self.pki = path / "files" / "pki"
        self.vault = path / "group_vars" / "all" / "vault_pki.yml"

    def pki_run(self, *extra: str, password: Path | None = None) -> subprocess.CompletedProcess:
        run = ansible(
            "ansible-playbook",
            "playbooks/pki.yml",
            "-i",
            str(self.path),
            "--vault-password-file",
            str(password or self.password),
            # The test hosts do not exist: their addresses are not learnt (the site scenario
            # proves that part on real hosts).
            "-e",
            "celerystack_pki_learn_addresses=false",
            *extra,
        )
        print(run.stdout[-3000:], run.stderr[-3000:])
        return run

    def copy(self, dest: Path) -> Inventory:
        shutil.copytree(self.path, dest, symlinks=True)
        return Inventory(dest, self.password)

    def files(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.path)): p.read_bytes()
            for p in self.path.rglob("*")
            if p.is_file()
        }

    def keys(self) -> dict:
        view = ansible(
            "ansible-vault", "view", "--vault-password-file", str(self.password), str(self.vault)
        )
        assert view.returncode == 0, view.stderr
        return yaml.safe_load(view.stdout)

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.pki / f"{name}.crt").read_bytes())


def changed(run: subprocess.CompletedProcess) -> int:
    assert run.returncode == 0, run.stdout + run.stderr
    return int(RECAP.search(run.stdout).group(1))


def public(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_public(pem: str) -> bytes:
    return public(serialization.load_pem_private_key(pem.encode(), None).public_key())


def assert_no_key_in(run: subprocess.CompletedProcess, keys: dict) -> None:
    pems = [keys["vault_pki_ca_private_key"], *keys["vault_tls_private_keys"].values()]
    body = [line for pem in pems for line in pem.splitlines() if "-----" not in line]
    assert body
    output = run.stdout + run.stderr
    assert not [line for line in body if line in output]
    assert "PRIVATE KEY" not in output


class Issued(NamedTuple):
    """An inventory after the helper's first run, that run, the next, and the files in between."""

    inventory: Inventory
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Inventory:
    """inventories/prod copied as the README says, its own vault.yml made; no PKI yet."""
    base = tmp_path_factory.mktemp("pki")
    password = base / "vault-password"
    password.write_text("a-test-vault-password\n")
    inventory = Inventory(base / "mine", password)
    shutil.copytree(PROD, inventory.path)
    (inventory.path / "hosts.yml").write_text(HOSTS)
    user_vault = inventory.path / "group_vars" / "all" / "vault.yml"
    shutil.copy(inventory.path / "vault.yml.example", user_vault)
    made = ansible(
        "ansible-vault", "encrypt", "--vault-password-file", str(password), str(user_vault)
    )
    assert made.returncode == 0, made.stderr
    return inventory


@pytest.fixture(scope="module")
def issued(fresh, tmp_path_factory) -> Issued:
    """A copy of `fresh` after the helper ran on it twice."""
    inventory = fresh.copy(tmp_path_factory.mktemp("issued") / "mine")
    first = inventory.pki_run()
    files = inventory.files()
    return Issued(inventory, first, inventory.pki_run(), files)


def test_the_first_run_makes_a_ca_certificates_and_one_encrypted_key_file(fresh, issued):
    inventory = issued.inventory
    assert changed(issued.first) > 0
    assert inventory.vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert stat.S_IMODE(inventory.vault.stat().st_mode) == 0o600
    keys = inventory.keys()
    assert set(keys) == {"vault_pki_ca_private_key", "vault_tls_private_keys"}
    assert set(keys["vault_tls_private_keys"]) == set(TLS_HOSTS)
    for name in ("ca", *TLS_HOSTS):
        assert stat.S_IMODE((inventory.pki / f"{name}.crt").stat().st_mode) == 0o644
    assert sorted(p.name for p in inventory.pki.iterdir()) == sorted(
        ["README.md", "ca.crt", *(f"{h}.crt" for h in TLS_HOSTS)]
    )
    # The user's own vault is the same file, byte for byte.
    user_vault = Path("group_vars/all/vault.yml")
    assert (inventory.path / user_vault).read_bytes() == (fresh.path / user_vault).read_bytes()


def test_the_ca_is_a_ca_and_signed_each_certificate_for_the_inventorys_names(issued):
    inventory = issued.inventory
    ca = inventory.cert("ca")
    assert ca.issuer == ca.subject
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    keys = inventory.keys()
    assert key_public(keys["vault_pki_ca_private_key"]) == public(ca.public_key())
    for host in TLS_HOSTS:
        cert = inventory.cert(host)
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == host
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == [host]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.ExtendedKeyUsageOID.SERVER_AUTH in eku
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
        lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        assert 395 < lifetime.days <= 397
        assert key_public(keys["vault_tls_private_keys"][host]) == public(cert.public_key())
    sans = inventory.cert("mq1").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]


def test_no_private_key_is_in_the_output(issued):
    for run in (issued.first, issued.second):
        assert_no_key_in(run, issued.inventory.keys())


def test_the_second_run_changes_nothing(issued):
    assert changed(issued.second) == 0
    assert issued.inventory.files() == issued.files


def test_check_mode_writes_nothing_and_names_what_it_would_make(fresh, tmp_path):
    inventory = fresh.copy(tmp_path / "mine")
    before = inventory.files()
    run = inventory.pki_run("--check", "--diff")
    assert changed(run) > 0
    assert inventory.files() == before
    assert "vault_tls_private_keys['db1']" in run.stdout
    assert "changed: [localhost] => (item=mq1)" in run.stdout
    assert "PRIVATE KEY" not in run.stdout + run.stderr


def test_a_certificate_due_for_renewal_is_reissued_with_its_key(issued, tmp_path):
    inventory = issued.inventory.copy(tmp_path / "mine")
    keys = inventory.keys()
    old = {host: inventory.cert(host) for host in TLS_HOSTS}
    run = inventory.pki_run("-e", "celerystack_pki_renew_days=100000")
    # One task wrote them all (the recap counts tasks): the certificates, not the vault file.
    assert changed(run) == 1
    assert all(f"changed: [localhost] => (item={host})" in run.stdout for host in TLS_HOSTS)
    for host in TLS_HOSTS:
        new = inventory.cert(host)
        assert new.serial_number != old[host].serial_number
        assert public(new.public_key()) == public(old[host].public_key())
    assert inventory.keys() == keys
    assert changed(inventory.pki_run()) == 0


def test_a_key_rotation_gives_every_host_a_new_key_and_certificate(issued, tmp_path):
    inventory = issued.inventory.copy(tmp_path / "mine")
    old = inventory.keys()
    ca = (inventory.pki / "ca.crt").read_bytes()
    run = inventory.pki_run("-e", "celerystack_pki_rotate_keys=true")
    assert changed(run) > 0
    new = inventory.keys()
    assert new["vault_pki_ca_private_key"] == old["vault_pki_ca_private_key"]
    assert (inventory.pki / "ca.crt").read_bytes() == ca
    for host in TLS_HOSTS:
        assert new["vault_tls_private_keys"][host] != old["vault_tls_private_keys"][host]
        cert = inventory.cert(host)
        assert key_public(new["vault_tls_private_keys"][host]) == public(cert.public_key())
    assert_no_key_in(run, new)


def test_a_ca_rotation_reissues_every_certificate_from_a_new_ca(issued, tmp_path):
    inventory = issued.inventory.copy(tmp_path / "mine")
    old_keys, old_ca = inventory.keys(), inventory.cert("ca")
    run = inventory.pki_run("-e", "celerystack_pki_rotate_ca=true")
    assert changed(run) > 0
    assert "The CA is new" in run.stdout
    keys, ca = inventory.keys(), inventory.cert("ca")
    assert ca.subject != old_ca.subject
    assert key_public(keys["vault_pki_ca_private_key"]) == public(ca.public_key())
    assert keys["vault_tls_private_keys"] == old_keys["vault_tls_private_keys"]
    for host in TLS_HOSTS:
        inventory.cert(host).verify_directly_issued_by(ca)
    assert_no_key_in(run, keys)


def test_a_new_subject_alt_name_reissues_that_host_only(issued, tmp_path):
    inventory = issued.inventory.copy(tmp_path / "mine")
    host_vars = inventory.path / "host_vars"
    host_vars.mkdir()
    (host_vars / "db1.yml").write_text(
        "---\ncelerystack_tls_subject_alt_names: [DNS:db.internal, IP:10.0.0.5]\n"
    )
    before = inventory.files()
    run = inventory.pki_run()
    assert changed(run) == 1
    assert "changed: [localhost] => (item=db1)" in run.stdout
    after = inventory.files()
    assert [name for name in after if after[name] != before[name]] == ["files/pki/db1.crt"]
    sans = inventory.cert("db1").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.DNSName) == ["db1", "db.internal"]
    assert sans.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]


def test_a_wrong_vault_password_fails_without_writing(issued, tmp_path):
    inventory = issued.inventory.copy(tmp_path / "mine")
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    before = inventory.files()
    run = inventory.pki_run("-e", "celerystack_pki_rotate_keys=true", password=wrong)
    assert run.returncode != 0
    assert "Decryption failed" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert inventory.files() == before


def test_a_run_without_a_vault_secret_says_how_to_give_one(fresh, tmp_path):
    inventory = fresh.copy(tmp_path / "mine")
    (inventory.path / "group_vars" / "all" / "vault.yml").unlink()
    before = inventory.files()
    run = ansible(
        "ansible-playbook",
        "playbooks/pki.yml",
        "-i",
        str(inventory.path),
        "-e",
        "celerystack_pki_learn_addresses=false",
    )
    assert run.returncode != 0
    assert "run with --vault-id/--ask-vault-pass" in run.stdout
    assert "PRIVATE KEY" not in run.stdout + run.stderr
    assert inventory.files() == before


def test_a_ca_certificate_whose_key_the_vault_lacks_is_never_replaced_silently(issued, tmp_path):
    inventory = issued.inventory.copy(tmp_path / "mine")
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Someone else's CA")])
    now = datetime.datetime.now(datetime.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(other, hashes.SHA256())
    )
    (inventory.pki / "ca.crt").write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    before = inventory.files()
    run = inventory.pki_run()
    assert run.returncode != 0
    assert "ca.crt is a CA whose key is not vault_pki_ca_private_key" in run.stdout
    assert "celerystack_pki_rotate_ca=true" in run.stdout
    assert inventory.files() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            '{"celerystack_pki_groups": ["brokers", "queues"]}',
            "celerystack_pki_groups must be a list of the inventory's group names",
            id="unknown group",
        ),
        pytest.param(
            '{"celerystack_pki_groups": ["workers"], "celerystack_pki_renew_days": "soon"}',
            "celerystack_pki_renew_days must be a whole number of days",
            id="renew days",
        ),
        pytest.param(
            '{"celerystack_tls_subject_alt_names": ["DNS:ok.internal", "mq.internal", "IP:10.1"]}',
            "celerystack_tls_subject_alt_names a list of 'DNS:<name>' and 'IP:<address>' strings;"
            " wrong: mq.internal, IP:10.1",
            id="subject alt names",
        ),
    ],
)
def test_a_bad_setting_is_named_before_anything_is_made(fresh, tmp_path, extra, message):
    inventory = fresh.copy(tmp_path / "mine")
    before = inventory.files()
    run = inventory.pki_run("-e", extra)
    assert run.returncode != 0
    assert message in " ".join(run.stdout.split())
    assert inventory.files() == before
