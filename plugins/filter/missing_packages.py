# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which packages a host has (read once per run), and which of a role's it still needs."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def missing_packages(names, installed):
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError(f"missing_packages expects a list of package names, got {names!r}")
    if isinstance(installed, str) or not isinstance(installed, (list, tuple, set, frozenset)):
        return list(names)
    have = set(installed)
    return [
        name
        for name in names
        if not isinstance(name, str) or "=" in name or ":" in name or name not in have
    ]


def dpkg_installed(result):
    """The installed packages' names from a registered run of
    ``dpkg-query --show --showformat='${db:Status-Abbrev} ${Package}\\n'``; none unless it ran and
    succeeded. A package counts when it is installed and wanted installed or held (``ii``,
    ``hi``; apt leaves a held, installed package as it is): one half-installed, half-configured,
    with an error flag or only its configuration left is apt's to finish."""
    if not isinstance(result, Mapping) or result.get("rc") != 0 or result.get("skipped"):
        return None
    names = []
    for line in str(result.get("stdout", "")).splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] in ("ii", "hi"):
            names.append(fields[1])
    return names


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {"missing_packages": missing_packages, "dpkg_installed": dpkg_installed}
