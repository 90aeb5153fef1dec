"""Helpers shared by the molecule scenarios' testinfra suites.

Scenario conftest files import the hooks from here, so every suite gets the same behaviour:
the unit's journal printed next to a failing host test, ``@pytest.mark.last`` tests run after all
others (``@pytest.mark.final`` ones after those: they leave the stack changed), and controller-side
playbook runs parsed into a recap.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

_RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
# A colour escape left in by an environment that forces colour (CI sets ANSIBLE_FORCE_COLOR).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class PlaybookRun:
    """What one ansible-playbook run printed and how it ended."""

    rc: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items()}


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Return {host: {ok, changed, unreachable, failed}} from a PLAY RECAP."""
    return {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in _RECAP.finditer(_ANSI.sub("", output))
    }


def scenario_dir() -> Path:
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])


def _load_vars_file(file: Path) -> dict:
    """A variables file as YAML; a vault-encrypted one is decrypted with the password the scenario
    gives its playbook runs (ANSIBLE_VAULT_PASSWORD_FILE)."""
    text = file.read_text()
    if text.startswith("$ANSIBLE_VAULT;"):
        from ansible.parsing.vault import VaultLib, VaultSecret

        password = Path(os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]).read_bytes().strip()
        text = VaultLib([("default", VaultSecret(password))]).decrypt(text).decode()
    return yaml.safe_load(text) or {}


def inventory_vars(group: str = "all") -> dict:
    """The scenario's group variables as written (untemplated): group_vars/<group>.yml, or
    every file of group_vars/<group>/ (where a scenario links a shared file, the topology)."""
    path = scenario_dir() / "inventory" / "group_vars" / group
    files = sorted(path.glob("*.yml")) if path.is_dir() else [path.with_suffix(".yml")]
    found = {}
    for file in files:
        found.update(_load_vars_file(file))
    return found


def vault_values(group: str = "all") -> dict:
    """Every `vault_*` test secret of the scenario, by name (a value may be a mapping, such as
    the TLS keys by host)."""
    return {k: v for k, v in inventory_vars(group).items() if k.startswith("vault_")}


def flat_secrets(group: str = "all") -> dict[str, str]:
    """Every vault secret as a string that must never appear anywhere, by a name that says which:
    `vault_x`, or `vault_x[key]` inside a mapping (the TLS keys by host)."""
    found: dict[str, str] = {}
    for name, value in vault_values(group).items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in items:
            label = name if key is None else f"{name}[{key}]"
            found[label] = secret_strings([item])[0]
    return found


def secret_strings(values) -> list[str]:
    """The strings that must never appear in output, from vault values: each plain secret, and
    for a PEM block one line of its body (a printed key would be re-wrapped or escaped, never
    verbatim as a whole)."""
    found: list[str] = []
    for value in values:
        if isinstance(value, dict):
            found += secret_strings(value.values())
        elif isinstance(value, str) and value.startswith("-----BEGIN"):
            found.append(value.splitlines()[1])
        else:
            found.append(str(value))
    return found


def run_playbook(
    playbook: str = "converge.yml",
    *,
    extra_vars: dict | None = None,
    extra_vars_file: Path | None = None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    inventory: str | None = None,
    tags: str | None = None,
    skip_tags: str | None = None,
    timeout: int = 900,
) -> PlaybookRun:
    """Run a scenario playbook from the controller against the scenario's hosts."""
    path = Path(playbook)
    if not path.is_absolute():
        path = scenario_dir() / playbook
    inventory = inventory or str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    cmd = ["ansible-playbook", "-i", inventory, str(path)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if extra_vars_file:  # secrets: in a file, never on a command line
        cmd += ["-e", f"@{extra_vars_file}"]
    if limit:
        cmd += ["--limit", limit]
    if check:
        cmd += ["--check", "--diff"]
    elif diff:
        cmd += ["--diff"]
    if tags:
        cmd += ["--tags", tags]
    if skip_tags:
        cmd += ["--skip-tags", skip_tags]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=playbook_env(), timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    return PlaybookRun(proc.returncode, output, parse_recap(output))


def playbook_env(**extra: str) -> dict[str, str]:
    """The environment of a controller-side ansible run: plain text (whatever colour the caller's
    environment forces), logged to the scenario's log, which the no-secret tests search."""
    return dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LOG_PATH=_log_path(),
        **extra,
    )


def _log_path() -> str:
    return str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log")


def assert_required_variables_are_named(role: str, variables: list[str], tmp_path: Path) -> None:
    """Applying `role` with none of its variables set fails in argument validation, before any
    task runs, and names every required variable. Runs against the controller in check mode."""
    playbook = tmp_path / "missing.yml"
    playbook.write_text(
        f"- hosts: localhost\n  gather_facts: false\n  roles:\n    - celerystack.platform.{role}\n"
    )
    run = run_playbook(str(playbook), inventory="localhost,", check=True)
    assert run.rc != 0
    assert "missing required arguments" in run.output, run.output
    for variable in variables:
        assert variable in run.output, variable


def assert_no_secret_in_log(role: str, extra_secrets: list[str], tls_hosts: list[str]) -> str:
    """No vault value, extra secret or TLS private key of `tls_hosts` appears in any playbook
    output of the scenario. Returns the log for scenario-specific checks."""
    log = ansible_log()
    assert f"TASK [celerystack.platform.{role}" in log  # the log really holds the role's runs
    pki = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki"
    keys = [(pki / f"{host}.key").read_text().splitlines()[1] for host in tls_hosts]
    secrets = [*secret_strings(vault_values().values()), *extra_secrets, *keys]
    leaked = [secret for secret in secrets if secret in log]
    assert not leaked, f"{len(leaked)} secret(s) printed by a playbook run"
    return log


def ansible_log() -> str:
    """Everything every playbook of this scenario printed so far: molecule's own runs log there
    through the provisioner's ANSIBLE_LOG_PATH, and run_playbook() appends its runs."""
    return Path(_log_path()).read_text(errors="replace")


def wait_until(check, seconds: float = 60) -> bool:
    """Poll `check()` every second until it is true or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1)
    return False


def scenario_hosts() -> list[str]:
    """Names of the scenario's test hosts, from molecule's inventory."""
    inventory = yaml.safe_load(Path(os.environ["MOLECULE_INVENTORY_FILE"]).read_text())
    return sorted(inventory["all"]["hosts"])


def pytest_configure(config):
    config.addinivalue_line("markers", "last: run after every other test of the scenario")
    config.addinivalue_line(
        "markers", "final: run after the `last` tests (it leaves the scenario's stack changed)"
    )
    # testinfra's ansible backend has no podman mapping and would run every command as an ad-hoc
    # `ansible` process (about a second each); talk to the containers with `podman exec` instead.
    # A module narrows its hosts with `testinfra_hosts`; by default it runs on every host.
    if os.environ.get("MOLECULE_INVENTORY_FILE") and config.option.connection == "ansible":
        config.option.connection = "podman"
        config.option.hosts = None


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    module = metafunc.module
    if os.environ.get("MOLECULE_INVENTORY_FILE") and not hasattr(module, "testinfra_hosts"):
        module.testinfra_hosts = scenario_hosts()


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        return (
            2 if item.get_closest_marker("final") else 1 if item.get_closest_marker("last") else 0
        )

    items.sort(key=rank)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    host = getattr(item, "funcargs", {}).get("host")
    units = getattr(item.module, "JOURNAL_UNITS", ())
    if host is None:
        return
    for unit in units:
        journal = host.run(f"journalctl -u {unit} -n 40 --no-pager").stdout
        report.sections.append((f"journal of {unit} on {host.backend.get_hostname()}", journal))
