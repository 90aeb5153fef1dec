import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import beat_schedule as beat

HEARTBEAT = {
    "name": "heartbeat",
    "task": "app.tasks.heartbeat",
    "interval": {"every": 30, "period": "seconds"},
}


def live(spec, **changes):
    """A task as the snapshot reads it back after the module wrote `spec`."""
    task = beat.normalize(spec)
    task.update(changes)
    return task


def actions(changes):
    return [(c["action"], c["name"]) for c in changes]


@pytest.mark.parametrize(
    ("current", "wanted", "purge", "expected"),
    [
        pytest.param([], [HEARTBEAT], False, [("create", "heartbeat")], id="new task"),
        pytest.param([live(HEARTBEAT)], [HEARTBEAT], False, [], id="converged"),
        pytest.param(
            [live(HEARTBEAT)],
            [dict(HEARTBEAT, interval={"every": 10, "period": "seconds"})],
            False,
            [("update", "heartbeat")],
            id="interval changed",
        ),
        pytest.param(
            [live(HEARTBEAT)],
            [dict(HEARTBEAT, kwargs={"name": "x"})],
            False,
            [("update", "heartbeat")],
            id="kwargs changed",
        ),
        pytest.param(
            [live(HEARTBEAT, enabled=False)],
            [HEARTBEAT],
            False,
            [("update", "heartbeat")],
            id="disabled in the admin is enabled again",
        ),
        pytest.param(
            [live(HEARTBEAT), live(dict(HEARTBEAT, name="old"))],
            [HEARTBEAT],
            True,
            [("delete", "old")],
            id="managed and undeclared is purged",
        ),
        pytest.param(
            [live(HEARTBEAT), live(dict(HEARTBEAT, name="admin made"), description="by hand")],
            [HEARTBEAT],
            True,
            [],
            id="admin-made task survives the purge",
        ),
        pytest.param(
            [live(HEARTBEAT), live(dict(HEARTBEAT, name="old"))],
            [HEARTBEAT],
            False,
            [],
            id="no purge unless asked",
        ),
    ],
)
def test_plan(current, wanted, purge, expected):
    assert actions(beat.plan(current, wanted, purge)) == expected


def test_crontab_fields_default_and_timezone_is_compared():
    nightly = {"name": "n", "task": "t", "crontab": {"minute": "15", "hour": "3"}}
    task = beat.normalize(nightly)
    assert task["schedule"]["values"] == {
        "minute": "15",
        "hour": "3",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "UTC",
    }
    paris = dict(nightly, crontab={"minute": "15", "hour": "3", "timezone": "Europe/Paris"})
    assert actions(beat.plan([task], [paris])) == [("update", "n")]


def test_the_diff_shows_the_schedule_before_and_after():
    changes = beat.plan([live(HEARTBEAT)], [dict(HEARTBEAT, interval={"every": 10})])
    diff = beat.diff_of(changes)
    assert diff["before"]["heartbeat"]["schedule"]["values"]["every"] == 30
    assert diff["after"]["heartbeat"]["schedule"]["values"]["every"] == 10


def test_times_compare_in_one_spelling():
    spec = dict(HEARTBEAT, expires="2030-01-01T00:00:00Z")
    assert beat.normalize(spec)["expires"] == "2030-01-01T00:00:00+00:00"
    assert beat.plan([live(spec)], [dict(spec, expires="2030-01-01T00:00:00+00:00")]) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "task": "t"}, "task 'x': declare exactly one of interval"),
        (
            dict(HEARTBEAT, crontab={"minute": "1"}),
            "task 'heartbeat': declare exactly one of interval, crontab, solar, clocked "
            "(found interval, crontab)",
        ),
        (
            dict(HEARTBEAT, interval={"every": 0}),
            "task 'heartbeat': interval.every must be a positive integer",
        ),
        (
            {"name": "c", "task": "t", "clocked": {"clocked_time": "2030-01-01T00:00:00+00:00"}},
            "task 'c': a clocked schedule runs once; set one_off: true",
        ),
        (dict(HEARTBEAT, expires="tomorrow"), "task 'heartbeat': expires is not an ISO 8601 time"),
        (
            dict(HEARTBEAT, expires="2030-01-01T00:00:00"),
            "task 'heartbeat': expires needs a UTC offset",
        ),
        (
            {"name": "s", "task": "t", "solar": {"event": "noon", "latitude": 1, "longitude": 2}},
            "task 's': solar.event must be one of",
        ),
    ],
)
def test_bad_declarations_are_refused_naming_task_and_field(spec, message):
    with pytest.raises(beat.ScheduleError) as err:
        beat.plan([], [spec])
    assert str(err.value).startswith(message)


def test_a_name_declared_twice_is_refused():
    with pytest.raises(beat.ScheduleError, match="declared more than once: heartbeat"):
        beat.plan([], [HEARTBEAT, HEARTBEAT])
