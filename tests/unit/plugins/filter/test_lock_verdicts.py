import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.filter.lock_verdicts import lock_verdicts


def lock(key, host, pid, seen_from, value=None):
    holder = {"host": host, "pid": pid, "started": 7, "task": None} if host else None
    if holder is None:
        state = "unknown"
    elif host != seen_from:
        state = "elsewhere"
    else:
        state = "dead" if pid >= 1000 else "alive"
    return {
        "key": key,
        "value": value or f"{key}/{host}/{pid}",
        "ttl": 60,
        "holder": holder,
        "state": state,
    }


def reports(*locks_args, hosts=("app1", "app2")):
    return [
        {"host": seen_from, "locks": [lock(*args, seen_from=seen_from) for args in locks_args]}
        for seen_from in hosts
    ]


def test_each_holder_is_judged_by_its_own_host():
    verdicts = lock_verdicts(reports(("b", "app2", 1000), ("a", "app1", 10)))
    assert [(v["key"], v["state"], v["free"]) for v in verdicts] == [
        ("a", "alive", False),
        ("b", "dead", True),
    ]
    assert verdicts[1]["holder"]["host"] == "app2"
    assert verdicts[1]["summary"] == "b: dead, held by app2 pid 1000, 60 s left"


def test_a_holder_on_no_reporting_host_or_no_holder_is_unknown_and_kept_unless_forced():
    given = reports(("gone", "app9", 1000), ("legacy", None, 0))
    assert [(v["state"], v["free"]) for v in lock_verdicts(given)] == [
        ("unknown", False),
        ("unknown", False),
    ]
    assert all(v["free"] for v in lock_verdicts(given, force=True))
    assert lock_verdicts(given)[1]["summary"] == (
        "legacy: unknown, held by a holder it does not name, 60 s left"
    )


def test_a_lock_taken_again_between_two_reports_is_changing():
    given = reports(("job", "app1", 1000))
    given[1]["locks"][0]["value"] = "taken again"
    assert [(v["state"], v["free"]) for v in lock_verdicts(given)] == [("changing", False)]


def test_a_lock_freed_before_its_holders_host_listed_it_is_changing():
    given = reports(("job", "app1", 1000))
    given[0]["locks"] = []  # app1, the holder's host, listed after it was freed
    assert [v["state"] for v in lock_verdicts(given)] == ["changing"]


@pytest.mark.parametrize("bad", [None, "x", [{"host": "app1"}], [["app1"]]])
def test_anything_but_reports_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="list of"):
        lock_verdicts(bad)
