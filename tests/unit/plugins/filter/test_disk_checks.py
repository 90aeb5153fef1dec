import pathlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.filter.disk_checks import (
    disk_checks,
    limit_bytes,
)

ROOT = pathlib.Path(__file__).resolve().parents[4]


def test_every_host_watches_its_logs_and_each_store_its_own_directory():
    assert disk_checks([]) == [
        {"name": "disk-logs", "path": "/var/log", "free_below_mb": None, "usage_limit": 80}
    ]
    checks = disk_checks(["database", "broker", "cache"], usage_limit=75)
    assert [(c["name"], c["path"]) for c in checks] == [
        ("disk-logs", "/var/log"),
        ("disk-rabbitmq", "/var/lib/rabbitmq"),
        ("disk-redis", "/var/lib/redis"),
        ("disk-mariadb", "/var/lib/mysql"),
    ]
    assert {c["usage_limit"] for c in checks} == {75}
    assert [c["name"] for c in checks if c["free_below_mb"]] == ["disk-rabbitmq"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("2GB", 2 * 1000**3),
        ("500MiB", 500 * 1024**2),
        ("100MB", 100 * 1000**2),
        ("64KiB", 64 * 1024),
        ("1000", 1000),
    ],
)
def test_rabbitmq_sizes_are_read_in_rabbitmqs_own_units(limit, expected):
    assert limit_bytes(limit) == expected


def test_monit_alerts_with_more_free_space_than_rabbitmq_blocks_at():
    checks = disk_checks(["broker"], broker_disk_free_limit="100MB")
    (broker,) = [c for c in checks if c["free_below_mb"]]
    # 2 x 100 MB = 200,000,000 bytes, rounded up to whole MiB.
    assert broker["free_below_mb"] == 191
    assert broker["free_below_mb"] * 1024**2 >= 2 * 100 * 1000**2
    checks = disk_checks(["broker"], broker_disk_free_limit="1GiB", broker_factor=1.5)
    assert checks[1]["free_below_mb"] == 1536


def test_a_relative_limit_is_times_the_hosts_memory():
    checks = disk_checks(["broker"], broker_disk_free_limit=1.5, memory_mb=1024)
    assert checks[1]["free_below_mb"] == 3072
    with pytest.raises(AnsibleFilterError, match="memory_mb is not given"):
        disk_checks(["broker"], broker_disk_free_limit=1.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"usage_limit": 100}, "usage_limit must be a percentage from 1 to 99"),
        ({"usage_limit": 0}, "usage_limit must be a percentage"),
        ({"broker_factor": 1}, "broker_factor must be a number above 1"),
        ({"broker_factor": True}, "broker_factor must be a number above 1"),
        ({"broker_disk_free_limit": "2 GB"}, "must be a size such as 2GB"),
        ({"broker_disk_free_limit": "2TB"}, "must be a size such as 2GB"),
        ({"broker_disk_free_limit": -1, "memory_mb": 1024}, "must be above 0"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        disk_checks(["broker"], **kwargs)


def test_an_unknown_store_is_named():
    with pytest.raises(AnsibleFilterError, match="among"):
        disk_checks(["queue"])


def test_the_default_limit_is_the_rabbitmq_roles_default():
    # The monit role reads rabbitmq_disk_free_limit where the inventory sets it, and falls back on
    # this filter's default: the two must agree, or monit would align with a limit nobody set.
    defaults = yaml.safe_load((ROOT / "roles/rabbitmq/defaults/main.yml").read_text())
    monit = (ROOT / "roles/monit/vars/main.yml").read_text()
    assert disk_checks.__defaults__[1] == defaults["rabbitmq_disk_free_limit"]
    assert f"rabbitmq_disk_free_limit | default('{defaults['rabbitmq_disk_free_limit']}')" in monit
