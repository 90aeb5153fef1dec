from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.filter.missing_packages import (
    dpkg_installed,
    missing_packages,
)

# dpkg-query --show --showformat='${db:Status-Abbrev} ${Package}\n' on a host (trimmed).
DPKG = {
    "rc": 0,
    "stdout": "\n".join(
        [
            "ii  logrotate",
            "ii  monit",
            "hi  mariadb-common",  # held at its version, installed
            "iHR python3-apt",  # half-installed, reinstall required
            "rc  redis-server",  # removed, its configuration left
            "iU  mariadb-server",  # unpacked, not configured
            "iF  python3-venv",  # half-configured
            "un  rabbitmq-server",  # known, not installed
        ]
    ),
}


def test_only_installed_packages_wanted_or_held_count():
    assert dpkg_installed(DPKG) == ["logrotate", "monit", "mariadb-common"]


@pytest.mark.parametrize(
    "result",
    [
        {"rc": 127, "stdout": ""},  # no dpkg on the host
        {"rc": 2, "stdout": "ii  monit"},
        {"skipped": True, "changed": False},
        {"failed": True, "msg": "unreachable"},
        None,
    ],
)
def test_a_run_that_did_not_succeed_gives_no_list(result):
    assert dpkg_installed(result) is None


def test_only_the_packages_not_installed_are_returned_in_order():
    installed = dpkg_installed(DPKG)
    names = ["redis-server", "monit", "mariadb-server", "logrotate", "python3-venv"]
    assert missing_packages(names, installed) == ["redis-server", "mariadb-server", "python3-venv"]


def test_everything_installed_gives_an_empty_list():
    assert missing_packages(["monit", "logrotate"], ["logrotate", "monit", "curl"]) == []


@pytest.mark.parametrize("installed", [None, "monit", {"monit": 1}, 3])
def test_without_a_list_of_installed_packages_every_name_is_returned_so_apt_decides(installed):
    assert missing_packages(["monit", "logrotate"], installed) == ["monit", "logrotate"]


@pytest.mark.parametrize("name", ["monit=1:5.33.0-1", "monit:amd64"])
def test_a_version_or_architecture_is_left_to_apt(name):
    assert missing_packages([name], ["monit"]) == [name]


@pytest.mark.parametrize("names", ["monit", None, {"monit": 1}])
def test_anything_but_a_list_of_names_is_refused(names):
    with pytest.raises(AnsibleFilterError, match="list of package names"):
        missing_packages(names, ["monit"])
