"""The shipped inventories: production's layout parses and site.yml passes --syntax-check against
it once a user has made their vault and run the PKI helper as the README says; every secret there
is a vault variable; the sandbox runs exactly one beat."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "inventories" / "prod"
SECRET_NAME = re.compile(r"(passwords?|secret|secret_key(_fallbacks)?|cookie|private_key)$")


def ansible(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def prod_copy(tmp_path_factory) -> tuple[Path, list[str]]:
    """A user's copy of inventories/prod with their vault and TLS made as the README says."""
    copy = tmp_path_factory.mktemp("inv") / "prod"
    shutil.copytree(PROD, copy)
    password = copy.parent / "vault-password"
    password.write_text("a-test-vault-password\n")
    vault = copy / "group_vars" / "all" / "vault.yml"
    shutil.copy(copy / "vault.yml.example", vault)
    vault_id = ["--vault-id", f"prod@{password}"]
    encrypted = ansible("ansible-vault", "encrypt", *vault_id, str(vault))
    assert encrypted.returncode == 0, encrypted.stderr
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;prod")
    # The TLS keys and certificates (tests/unit/test_pki.py proves the helper itself).
    # The example hosts do not exist: their addresses are not learnt.
    pki = ansible(
        "ansible-playbook",
        "playbooks/pki.yml",
        "-i",
        str(copy),
        *vault_id,
        "-e",
        "celerystack_pki_learn_addresses=false",
    )
    assert pki.returncode == 0, pki.stdout + pki.stderr
    # Encrypted with the run's own vault id, like the user's vault.
    pki_vault = (copy / "group_vars" / "all" / "vault_pki.yml").read_text()
    assert pki_vault.startswith("$ANSIBLE_VAULT;1.2;AES256;prod\n")
    return copy, vault_id


def test_the_production_inventory_has_every_layer_and_one_beat(prod_copy):
    inventory, vault_id = prod_copy
    graph = ansible("ansible-inventory", "-i", str(inventory), *vault_id, "--graph")
    assert graph.returncode == 0, graph.stderr
    print(graph.stdout)
    listed = ansible("ansible-inventory", "-i", str(inventory), *vault_id, "--list")
    groups = json.loads(listed.stdout)
    hosts = {name: set(groups.get(name, {}).get("hosts", [])) for name in groups}
    assert len(hosts["brokers"]) == len(hosts["cache"]) == len(hosts["databases"]) == 1
    assert len(hosts["workers"]) == 4
    assert len(hosts["beat"]) == 1
    assert hosts["flower"]
    assert set(groups["app"]["children"]) == {"workers", "beat", "flower"}


def test_site_passes_syntax_check_against_the_production_inventory(prod_copy):
    inventory, vault_id = prod_copy
    run = ansible("ansible-playbook", "site.yml", "-i", str(inventory), *vault_id, "--syntax-check")
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_vault_holds_every_secret_production_uses(prod_copy):
    inventory, vault_id = prod_copy
    listed = ansible("ansible-inventory", "-i", str(inventory), *vault_id, "--list")
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    defined = set(next(iter(hostvars.values())))
    referenced = set()
    for path in (PROD / "group_vars").rglob("*.yml"):
        text = path.read_text()
        # A rotation window's variables are optional: `vault_x | default([])`.
        referenced |= set(re.findall(r"\bvault_[a-z_]+\b(?! \| default\()", text))
        for name, value in (yaml.safe_load(text) or {}).items():
            # A secret-named setting in plain group_vars must only point at a vault variable (or
            # at the host's entry of one: the TLS keys; or at an optional rotation window's).
            if SECRET_NAME.search(name):
                assert re.fullmatch(
                    r"\{\{ vault_[a-z_]+(\[inventory_hostname\]| \| default\(\[\]\))? \}\}",
                    str(value),
                ), f"{path.name}: {name}"
    assert referenced
    assert referenced <= defined, referenced - defined


def test_the_sandbox_inventory_runs_one_beat_and_flower_on_an_application_host():
    listed = ansible("ansible-inventory", "-i", "inventories/sandbox", "--list")
    assert listed.returncode == 0, listed.stderr
    groups = json.loads(listed.stdout)
    assert groups["beat"]["hosts"] == ["worker1"]
    assert groups["flower"]["hosts"] == ["worker1"]
    assert set(groups["app"]["children"]) == {"workers", "beat", "flower"}
    run = ansible("ansible-playbook", "site.yml", "-i", "inventories/sandbox", "--syntax-check")
    assert run.returncode == 0, run.stdout + run.stderr


def plain(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run in a shell with only the virtualenv on PATH: no harness/env.sh, no ANSIBLE_*.
    (The installed collection is run by name against live hosts by the site scenario.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CS_"))}
    env.update(ANSIBLE_NOCOLOR="1")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_the_collection_resolves_from_the_checkout_in_a_plain_shell():
    run = plain("ansible-playbook", "site.yml", "-i", "inventories/sandbox", "--syntax-check")
    assert run.returncode == 0, run.stdout + run.stderr
