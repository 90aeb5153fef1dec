"""`only_one(key, timeout)`: at most one holder of a key at a time, across every worker host.

The lock is a Redis key under LOCK_PREFIX, set with NX and an expiry, so a holder that dies
releases it after `timeout` seconds at the latest. Its value names the holder (host, pid, the
process's start time, the task) plus a random token: `celerystack-manage locks` (and
playbooks/locks.yml over every host) can then tell a lock whose holder is gone from one still in
use, and free only the former. Release and delete remove the key only if it still holds the value
they read (a holder whose lock expired never frees someone else's lock).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import uuid

from django.conf import settings

log = logging.getLogger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class LockHeld(Exception):
    """Another holder has the lock."""


def lock_client():
    import redis

    return redis.Redis(**settings.LOCK_REDIS)


def process_started(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), None when there is no such
    process. With the pid it identifies a process: a pid reused later has another start time."""
    try:
        with open(f"/proc/{pid}/stat") as proc:
            stat = proc.read()
    except OSError:
        return None
    # Field 22, counted after the command name, which is in parentheses and may hold spaces.
    return int(stat.rsplit(")", 1)[1].split()[19])


def holder_value(task_id: str | None = None) -> str:
    """The value a lock holds: who holds it, and a token no other holder has."""
    pid = os.getpid()
    holder = {
        "host": socket.gethostname(),
        "pid": pid,
        "started": process_started(pid),
        "task": task_id,
        "token": uuid.uuid4().hex,
    }
    return json.dumps(holder, sort_keys=True, separators=(",", ":"))


def holder_of(value: str | bytes | None) -> dict | None:
    """The holder a lock's value names; None for a value this module did not write."""
    try:
        holder = json.loads(value)
    except (TypeError, ValueError):
        return None
    if not isinstance(holder, dict) or not {"host", "pid", "started"} <= holder.keys():
        return None
    return holder


def holder_state(holder: dict | None, hostname: str | None = None) -> str:
    """`alive` or `dead` for a holder on this host (`hostname`), `elsewhere` for a holder on
    another host, `unknown` for a value that names no holder."""
    if holder is None:
        return "unknown"
    if holder["host"] != (hostname or socket.gethostname()):
        return "elsewhere"
    alive = holder["started"] is not None and process_started(holder["pid"]) == holder["started"]
    return "alive" if alive else "dead"


def acquire(client, key: str, timeout: int, task_id: str | None = None) -> str | None:
    """Take `key` for `timeout` seconds; the value to release it with, or None when held."""
    value = holder_value(task_id)
    if client.set(settings.LOCK_PREFIX + key, value, nx=True, ex=timeout):
        return value
    return None


def release(client, key: str, value: str) -> bool:
    """Free `key` if it still holds `value` (the one acquire returned, or one read by `held`)."""
    return bool(client.eval(_RELEASE, 1, settings.LOCK_PREFIX + key, value))


def holds(client, key: str, value: str) -> bool:
    """Whether `key` holds `value` now (what release would free)."""
    current = client.get(settings.LOCK_PREFIX + key)
    return (current.decode() if isinstance(current, bytes) else current) == value


def held(client, pattern: str = "*") -> list[dict]:
    """Every lock whose key (without the prefix) matches the glob `pattern`, sorted by key: its
    value, seconds left and holder state as seen from this host."""
    locks = []
    for name in client.scan_iter(match=settings.LOCK_PREFIX + pattern, count=500):
        name = name.decode() if isinstance(name, bytes) else name
        value = client.get(name)
        if value is None:  # released since the scan saw it
            continue
        value = value.decode() if isinstance(value, bytes) else value
        holder = holder_of(value)
        locks.append(
            {
                "key": name[len(settings.LOCK_PREFIX) :],
                "value": value,
                "ttl": client.ttl(name),
                "holder": holder,
                "state": holder_state(holder),
            }
        )
    return sorted(locks, key=lambda lock: lock["key"])


def current_task_id() -> str | None:
    from celery import current_task

    return current_task.request.id if current_task else None


def only_one(key: str, timeout: int, client_factory=None):
    """Run the function only if no one else holds `key`; otherwise raise LockHeld."""
    if timeout <= 0:
        raise ValueError("only_one timeout must be a positive number of seconds")

    def decorator(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            client = (client_factory or lock_client)()
            token = acquire(client, key, timeout, current_task_id())
            if token is None:
                raise LockHeld(f"lock {key!r} is held by another run")
            try:
                return function(*args, **kwargs)
            finally:
                if not release(client, key, token):
                    log.warning("lock %r expired before %s finished", key, function.__name__)

        return wrapper

    return decorator
