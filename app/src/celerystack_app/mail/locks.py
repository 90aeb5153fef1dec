"""`only_one(key, timeout)`: at most one holder of a key at a time, across every worker host.

The lock is a Redis key under LOCK_PREFIX holding a random token, set with NX and an expiry, so a
holder that dies releases it after `timeout` seconds at the latest. Release deletes the key only if
it still holds our token (a holder whose lock expired never frees someone else's lock).
"""

from __future__ import annotations

import functools
import logging
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


def acquire(client, key: str, timeout: int) -> str | None:
    token = uuid.uuid4().hex
    if client.set(settings.LOCK_PREFIX + key, token, nx=True, ex=timeout):
        return token
    return None


def release(client, key: str, token: str) -> bool:
    return bool(client.eval(_RELEASE, 1, settings.LOCK_PREFIX + key, token))


def only_one(key: str, timeout: int, client_factory=None):
    """Run the function only if no one else holds `key`; otherwise raise LockHeld."""
    if timeout <= 0:
        raise ValueError("only_one timeout must be a positive number of seconds")

    def decorator(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            client = (client_factory or lock_client)()
            token = acquire(client, key, timeout)
            if token is None:
                raise LockHeld(f"lock {key!r} is held by another run")
            try:
                return function(*args, **kwargs)
            finally:
                if not release(client, key, token):
                    log.warning("lock %r expired before %s finished", key, function.__name__)

        return wrapper

    return decorator
