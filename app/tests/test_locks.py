import fnmatch
import io
import json
import socket
import subprocess
import sys

import pytest
from celerystack_app.mail import locks


class FakeRedis:
    """SET NX EX and the release script, with a clock the test moves."""

    def __init__(self):
        self.now = 0.0
        self.keys = {}

    def _live(self, key):
        value = self.keys.get(key)
        if value and value[1] <= self.now:
            del self.keys[key]
            return None
        return value

    def set(self, key, value, nx=False, ex=None):
        if nx and self._live(key):
            return None
        self.keys[key] = (value, self.now + ex)
        return True

    def get(self, key):
        value = self._live(key)
        return value[0].encode() if value else None

    def ttl(self, key):
        value = self._live(key)
        return int(value[1] - self.now) if value else -2

    def scan_iter(self, match, count):
        return [key.encode() for key in list(self.keys) if fnmatch.fnmatchcase(key, match)]

    def eval(self, script, numkeys, key, token):
        value = self._live(key)
        if value and value[0] == token:
            del self.keys[key]
            return 1
        return 0


@pytest.fixture
def redis():
    return FakeRedis()


def test_a_second_holder_is_refused_while_the_first_runs(redis):
    @locks.only_one("job", timeout=60, client_factory=lambda: redis)
    def outer():
        return inner()

    @locks.only_one("job", timeout=60, client_factory=lambda: redis)
    def inner():
        return "ran"

    with pytest.raises(locks.LockHeld, match="lock 'job' is held"):
        outer()


def test_the_lock_is_released_when_the_function_raises(redis):
    @locks.only_one("job", timeout=60, client_factory=lambda: redis)
    def failing():
        assert "lock:job" in redis.keys  # held under the lock namespace while running
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert redis.keys == {}
    with pytest.raises(RuntimeError):
        failing()  # and can be taken again


def test_a_dead_holders_lock_expires_and_is_not_freed_by_it_later(redis):
    stale = locks.acquire(redis, "job", timeout=10)
    assert locks.acquire(redis, "job", timeout=10) is None
    redis.now = 11
    fresh = locks.acquire(redis, "job", timeout=10)
    assert fresh is not None
    assert not locks.release(redis, "job", stale)  # the old holder cannot free the new lock
    assert locks.acquire(redis, "job", timeout=10) is None
    assert locks.release(redis, "job", fresh)


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        locks.only_one("job", timeout=0)


def test_a_lock_names_its_holder_process_and_task(redis):
    value = locks.acquire(redis, "job", timeout=60, task_id="t-1")
    holder = locks.holder_of(value)
    assert holder["host"] == socket.gethostname()
    assert holder["task"] == "t-1"
    assert locks.holder_state(holder) == "alive"  # this process
    assert locks.holder_state(holder, hostname="another-host") == "elsewhere"


def test_a_holder_that_exited_is_dead_and_a_foreign_value_is_unknown():
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(gone.stdout)
    holder = {"host": socket.gethostname(), "pid": pid, "started": 1, "task": None}
    assert locks.holder_state(holder) == "dead"
    # The pid of a live process with another start time: the pid was reused, the holder is gone.
    reused = dict(holder, pid=locks.os.getpid())
    assert locks.holder_state(reused) == "dead"
    assert locks.holder_state(locks.holder_of("0123abcd")) == "unknown"
    assert locks.holder_of('{"host": "x"}') is None


def test_held_lists_the_matching_locks_with_their_holders(redis):
    locks.acquire(redis, "report:daily", timeout=60)
    redis.now = 10
    locks.acquire(redis, "report:weekly", timeout=600)
    redis.set("lock:legacy", "0123abcd", ex=30)
    redis.set("other:report:x", "not a lock", ex=30)
    listed = locks.held(redis, "report:*")
    assert [(lock["key"], lock["ttl"], lock["state"]) for lock in listed] == [
        ("report:daily", 50, "alive"),
        ("report:weekly", 600, "alive"),
    ]
    assert [lock["state"] for lock in locks.held(redis)] == ["unknown", "alive", "alive"]


def test_the_locks_command_frees_a_lock_only_while_it_holds_the_listed_value(redis, monkeypatch):
    from django.core.management import call_command

    monkeypatch.setattr(locks, "lock_client", lambda: redis)

    def run(*argv):
        out = io.StringIO()
        call_command("locks", *argv, stdout=out)
        return json.loads(out.getvalue())

    stale = locks.acquire(redis, "job", timeout=10)
    listed = run("list", "--match", "j*")
    assert listed["host"] == socket.gethostname()
    assert [lock["value"] for lock in listed["locks"]] == [stale]
    redis.now = 11  # it expired, and another holder took it
    fresh = locks.acquire(redis, "job", timeout=10)
    assert run("delete", "job", "--value", stale) == {"deleted": False, "key": "job"}
    assert run("delete", "job", "--value", fresh, "--dry-run") == {"deleted": True, "key": "job"}
    assert run("list")["locks"][0]["value"] == fresh  # a dry run frees nothing
    assert run("delete", "job", "--value", fresh) == {"deleted": True, "key": "job"}
    assert run("list")["locks"] == []
