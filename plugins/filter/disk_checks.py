# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""monit's disk-space rules for one host: which directories, and at what thresholds."""

from __future__ import annotations

import math
import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: disk_checks
author: Celerystack engineers (@celerystack)
version_added: 0.4.0
short_description: The file systems monit watches on a host, with their alert thresholds
description:
  - Returns one check per directory that fills up on a Celerystack host, the file system under it
    being what monit measures. Every host has its logs (C(/var/log), where the Celery logs and
    the journal are); a broker host adds RabbitMQ's store (C(/var/lib/rabbitmq)), a cache host
    Redis's (C(/var/lib/redis)), a database host MariaDB's (C(/var/lib/mysql)).
  - Every check alerts when the space or the inodes in use pass O(usage_limit) percent.
  - The broker's check also alerts while RabbitMQ still accepts messages. RabbitMQ blocks every
    publisher when its free space falls below its C(disk_free_limit)
    (O(broker_disk_free_limit)); monit alerts when the free space falls below O(broker_factor)
    times that, so the person on call hears of it before publishers stop.
options:
  _input:
    description: The stores this host runs, any of C(broker), C(cache), C(database).
    type: list
    elements: str
    required: true
  usage_limit:
    description: Percentage of space or inodes in use above which monit alerts (1 to 99).
    type: int
    default: 80
  broker_disk_free_limit:
    description:
      - RabbitMQ's C(disk_free_limit) as the rabbitmq role takes it, a size (C(2GB), C(500MiB))
        or a number relative to the host's memory (C(1.5)).
    type: raw
    default: 2GB
  broker_factor:
    description: How many times RabbitMQ's limit of free space makes monit alert (above 1).
    type: float
    default: 2
  memory_mb:
    description: The broker host's memory in MiB, for a relative O(broker_disk_free_limit).
    type: int
"""

EXAMPLES = """
- name: The disk checks of this host
  ansible.builtin.set_fact:
    disks: "{{ ['broker'] | celerystack.platform.disk_checks(broker_disk_free_limit='2GB') }}"
"""

RETURN = """
_value:
  description: One check per watched directory.
  type: list
  elements: dict
  contains:
    name: {description: "The monit service name (disk-logs, disk-rabbitmq, ...).", type: str}
    path: {description: The directory whose file system is measured., type: str}
    usage_limit: {description: Percentage of space and inodes in use that alerts., type: int}
    free_below_mb:
      description: Free space in MiB below which monit alerts (the broker's only), else null.
      type: int
"""

LOGS = ("logs", "/var/log")
# The directories the Debian packages keep their data in (each role installs the package).
STORES = {
    "broker": ("rabbitmq", "/var/lib/rabbitmq"),
    "cache": ("redis", "/var/lib/redis"),
    "database": ("mariadb", "/var/lib/mysql"),
}
# RabbitMQ's own units (rabbit_resource_monitor_misc): kB, MB, GB are powers of 1000; KiB, MiB,
# GiB powers of 1024. The rabbitmq role's preflight accepts exactly these.
_UNITS = {
    "": 1,
    "kB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_SIZE = re.compile(r"^([0-9]+)(kB|MB|GB|KiB|MiB|GiB)?$")


def limit_bytes(limit, memory_mb=None):
    """RabbitMQ's disk_free_limit in bytes: a size, or a number times the host's memory."""
    if isinstance(limit, bool):
        raise AnsibleFilterError("broker_disk_free_limit must be a size or number, not %r" % limit)
    if isinstance(limit, (int, float)):
        if limit <= 0:
            raise AnsibleFilterError("broker_disk_free_limit must be above 0, not %r" % limit)
        if memory_mb is None:
            raise AnsibleFilterError(
                "broker_disk_free_limit %r is relative to memory; memory_mb is not given" % limit
            )
        return int(limit * int(memory_mb) * 1024**2)
    match = _SIZE.match(str(limit))
    if not match:
        raise AnsibleFilterError(
            "broker_disk_free_limit must be a size such as 2GB or 500MiB, not %r" % (limit,)
        )
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def disk_checks(
    stores,
    usage_limit=80,
    broker_disk_free_limit="2GB",
    broker_factor=2,
    memory_mb=None,
):
    if not isinstance(stores, list) or not set(stores) <= STORES.keys():
        raise AnsibleFilterError(
            "disk_checks expects a list of stores among %s, not %r" % (sorted(STORES), stores)
        )
    if isinstance(usage_limit, bool) or not 1 <= int(usage_limit) <= 99:
        raise AnsibleFilterError(
            "usage_limit must be a percentage from 1 to 99, not %r" % (usage_limit,)
        )
    if isinstance(broker_factor, bool) or float(broker_factor) <= 1:
        raise AnsibleFilterError("broker_factor must be a number above 1, not %r" % broker_factor)
    checks = [{"name": "disk-" + LOGS[0], "path": LOGS[1], "free_below_mb": None}]
    for store in sorted(set(stores), key=list(STORES).index):
        name, path = STORES[store]
        free_below_mb = None
        if store == "broker":
            threshold = limit_bytes(broker_disk_free_limit, memory_mb) * float(broker_factor)
            # Rounded up, so that monit never waits for less free space than it was told.
            free_below_mb = math.ceil(threshold / 1024**2)
        checks.append({"name": "disk-" + name, "path": path, "free_below_mb": free_below_mb})
    for check in checks:
        check["usage_limit"] = int(usage_limit)
    return checks


class FilterModule:
    def filters(self):
        return {"disk_checks": disk_checks}
