"""The units module's core: systemctl's answers parsed, the plan, one call per verb."""

import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import units as core

NAMES = ["celery-worker-a.service", "celery-worker-b.service", "celery.target"]


def show(*blocks):
    return (
        "\n\n".join(
            "Id={}\nLoadState={}\nActiveState={}\nUnitFileState={}".format(*block)
            for block in blocks
        )
        + "\n"
    )


def states(*rows):
    return core.parse_show(show(*rows), [row[0] for row in rows])


def test_a_converged_host_needs_nothing():
    found = states(
        ("celery-worker-a.service", "loaded", "active", "enabled"),
        ("celery-worker-b.service", "loaded", "activating", "enabled"),
        ("celery.target", "loaded", "active", "enabled"),
    )
    actions = core.plan(NAMES, found, restart=[], stale=[])
    assert actions == {"enable": [], "restart": [], "start": [], "missing": []}
    assert core.diff(found, actions) == {"before": {}, "after": {}}


def test_disabled_stopped_asked_and_stale_units_each_get_their_verb():
    found = states(
        ("celery-worker-a.service", "loaded", "inactive", "disabled"),
        ("celery-worker-b.service", "loaded", "failed", "enabled"),
        ("celery.target", "loaded", "active", "enabled"),
    )
    actions = core.plan(NAMES, found, restart=[], stale=["celery-worker-b.service"])
    assert actions == {
        "enable": ["celery-worker-a.service"],
        "restart": ["celery-worker-b.service"],
        "start": ["celery-worker-a.service"],
        "missing": [],
    }
    calls = []
    core.apply(actions, lambda argv: calls.append(argv) or (0, "", ""))
    assert calls == [
        ["systemctl", "enable", "celery-worker-a.service"],
        ["systemctl", "restart", "celery-worker-b.service"],
        ["systemctl", "start", "celery-worker-a.service"],
    ]
    assert core.diff(found, actions)["after"]["celery-worker-b.service"] == {
        "enabled": "enabled",
        "active": "restarted",
    }


def test_all_restarts_of_a_host_are_one_systemctl_call():
    found = states(*[(name, "loaded", "active", "enabled") for name in NAMES])
    actions = core.plan(NAMES, found, restart=NAMES[:2], stale=[NAMES[0]])
    calls = []
    core.apply(actions, lambda argv: calls.append(argv) or (0, "", ""))
    assert calls == [["systemctl", "restart", NAMES[0], NAMES[1]]]


def test_a_unit_systemd_does_not_know_is_left_alone():
    found = states(
        ("celery-worker-a.service", "not-found", "inactive", ""),
        ("celery-worker-b.service", "loaded", "active", "enabled"),
        ("celery.target", "loaded", "active", "enabled"),
    )
    actions = core.plan(NAMES, found, restart=["celery-worker-a.service"], stale=[])
    assert actions["missing"] == ["celery-worker-a.service"]
    assert actions["restart"] == [] and actions["start"] == [] and actions["enable"] == []


def test_a_failed_systemctl_is_reported_with_its_message():
    actions = {"enable": [], "restart": ["x.service"], "start": [], "missing": []}
    with pytest.raises(
        core.UnitsError, match=r"systemctl restart x\.service failed \(1\): Job failed"
    ):
        core.apply(actions, lambda argv: (1, "", "Job failed\n"))


def test_show_output_must_match_the_units_asked():
    with pytest.raises(core.UnitsError, match="gave 1 blocks for 2 units"):
        core.parse_show(
            show(("a.service", "loaded", "active", "enabled")), ["a.service", "b.service"]
        )


def test_outdated_services_are_those_whose_record_differs_or_is_missing(tmp_path):
    (tmp_path / "a.service").write_text("gen-2\n")
    (tmp_path / "b.service").write_text("gen-1\n")
    services = ["a.service", "b.service", "c.service"]
    assert core.outdated(services, "gen-2", str(tmp_path)) == ["b.service", "c.service"]
    # No current generation (a host the application has not reached yet): nothing is outdated.
    assert core.outdated(services, None, str(tmp_path)) == []


def test_a_generation_record_is_its_first_line(tmp_path):
    (tmp_path / "generation").write_text("abc\n")
    (tmp_path / "empty").write_text("")
    assert core.read_generation(str(tmp_path / "generation")) == "abc"
    assert core.read_generation(str(tmp_path / "empty")) is None
    assert core.read_generation(str(tmp_path / "none")) is None
