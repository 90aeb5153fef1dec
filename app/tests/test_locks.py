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
