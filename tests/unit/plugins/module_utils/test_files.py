"""The files module's core on a real file system (tmp_path): plan, diff, check-before-move."""

import os
import stat

import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import files as core


def ok(_argv):
    return 0, "", ""


def converge(entries, prune=(), run=ok):
    assert core.entry_errors(entries, prune) == []
    steps, pruned = core.plan(entries, prune)
    changed = core.changed(steps, pruned)
    if changed:
        core.apply(steps, pruned, run=run)
    return changed, core.diffs(steps, pruned)


def test_a_second_run_changes_nothing(tmp_path):
    entries = [
        {"path": str(tmp_path / "d"), "state": "directory", "mode": "0750"},
        {"path": str(tmp_path / "d" / "a.conf"), "content": "a = 1\n", "mode": "0640"},
        {
            "path": str(tmp_path / "d" / "link"),
            "state": "link",
            "src": str(tmp_path / "d" / "a.conf"),
        },
    ]
    changed = converge(entries)[0]
    assert changed == [entry["path"] for entry in entries]
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "a.conf").st_mode) == 0o640
    assert (tmp_path / "d" / "a.conf").read_text() == "a = 1\n"
    assert os.readlink(tmp_path / "d" / "link") == str(tmp_path / "d" / "a.conf")
    assert converge(entries) == ([], [])


def test_only_what_differs_changes_and_the_diff_shows_it(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("a = 1\n")
    os.chmod(path, 0o644)
    changed, diff = converge([{"path": str(path), "content": "a = 2\n", "mode": "0644"}])
    assert changed == [str(path)]
    assert diff == [
        {
            "before_header": str(path),
            "after_header": str(path),
            "before": "a = 1\n",
            "after": "a = 2\n",
        }
    ]
    changed, diff = converge([{"path": str(path), "content": "a = 2\n", "mode": "0600"}])
    assert diff == [
        {
            "before": {"path": str(path), "state": "file", "mode": "0644"},
            "after": {"path": str(path), "state": "file", "mode": "0600"},
        }
    ]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_secret_file_never_shows_its_content(tmp_path):
    path = tmp_path / "secrets"
    path.write_text("PASSWORD=old\n")
    diff = converge([{"path": str(path), "content": "PASSWORD=new\n", "secret": True}])[1]
    assert "old" not in str(diff) and "new\n" not in str(diff).replace("changed)\\n", "")
    assert path.read_text() == "PASSWORD=new\n"


def test_check_mode_plans_without_writing(tmp_path):
    entries = [{"path": str(tmp_path / "new"), "content": "x\n"}]
    steps, pruned = core.plan(entries)
    assert core.changed(steps, pruned) == [str(tmp_path / "new")]
    assert not (tmp_path / "new").exists()


def test_a_failed_check_changes_nothing_at_all(tmp_path):
    good = tmp_path / "good.conf"
    bad = tmp_path / "bad.conf"
    good.write_text("old\n")
    seen = []

    def run(argv):
        seen.append(argv)
        # The staged copy has the destination's name (systemd-analyze needs a unit's suffix).
        assert os.path.basename(argv[-1]) in ("good.conf", "bad.conf")
        return (1, "", "syntax error") if argv[-1].endswith("bad.conf") else (0, "", "")

    entries = [
        {"path": str(good), "content": "new\n", "validate": "check %s"},
        {"path": str(tmp_path / "dir"), "state": "directory"},
        {"path": str(bad), "content": "broken\n", "validate": "check %s"},
    ]
    steps, pruned = core.plan(entries)
    with pytest.raises(core.FilesError, match=r"bad\.conf failed its check.*syntax error"):
        core.apply(steps, pruned, run=run)
    assert good.read_text() == "old\n"
    assert not bad.exists() and not (tmp_path / "dir").exists()
    assert len(seen) == 2
    assert sorted(os.listdir(tmp_path)) == ["good.conf"]


def test_prune_removes_only_unmanaged_matches(tmp_path):
    keep = tmp_path / "celerystack-a.conf"
    stale = tmp_path / "celerystack-b.conf"
    other = tmp_path / "other.conf"
    for path in (stale, other):
        path.write_text("x\n")
    changed, diff = converge(
        [{"path": str(keep), "content": "a\n"}], prune=[str(tmp_path / "celerystack-*.conf")]
    )
    assert changed == [str(keep), str(stale)]
    assert diff[-1] == {
        "before": {"path": str(stale), "state": "present"},
        "after": {"path": str(stale), "state": "absent"},
    }
    assert sorted(os.listdir(tmp_path)) == ["celerystack-a.conf", "other.conf"]


def test_a_link_is_repointed_and_a_file_becomes_a_link(tmp_path):
    link = tmp_path / "override.conf"
    link.write_text("a hand-written file\n")
    changed, diff = converge([{"path": str(link), "state": "link", "src": "/etc/shared.conf"}])
    assert changed == [str(link)] and os.readlink(link) == "/etc/shared.conf"
    assert diff[0]["before"]["state"] == "file" and diff[0]["after"]["src"] == "/etc/shared.conf"
    converge([{"path": str(link), "state": "link", "src": "/etc/other.conf"}])
    assert os.readlink(link) == "/etc/other.conf"


def test_a_directory_is_never_replaced(tmp_path):
    (tmp_path / "d").mkdir()
    for entry in ({"content": "x"}, {"state": "link", "src": "/x"}):
        with pytest.raises(core.FilesError, match="is a directory"):
            core.plan([dict(entry, path=str(tmp_path / "d"))])
    (tmp_path / "f").write_text("x")
    with pytest.raises(core.FilesError, match="is a file, not a directory"):
        core.plan([{"path": str(tmp_path / "f"), "state": "directory"}])


def test_absent_removes_files_and_directories(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    (tmp_path / "f").write_text("x")
    changed = converge(
        [
            {"path": str(tmp_path / "d"), "state": "absent"},
            {"path": str(tmp_path / "f"), "state": "absent"},
            {"path": str(tmp_path / "none"), "state": "absent"},
        ]
    )[0]
    assert changed == [str(tmp_path / "d"), str(tmp_path / "f")]
    assert os.listdir(tmp_path) == []


def test_owner_and_group_are_set(tmp_path):
    path = tmp_path / "f"
    converge(
        [{"path": str(path), "content": "x", "owner": "root", "group": "root", "mode": "0400"}]
    )
    assert os.stat(path).st_uid == 0 and stat.S_IMODE(os.stat(path).st_mode) == 0o400
    with pytest.raises(core.FilesError, match="no such user: nobody-here"):
        core.plan([{"path": str(path), "content": "x", "owner": "nobody-here"}])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "relative", "content": ""}, r"files\[0\].path must be an absolute"),
        ({"path": "/a/../b", "content": ""}, r"files\[0\].path must be an absolute, normalised"),
        ({"path": "/a"}, r"files\[0\].content is required"),
        ({"path": "/a", "state": "link"}, r"files\[0\].src is required"),
        ({"path": "/a", "state": "dir"}, r"files\[0\].state must be one of"),
        ({"path": "/a", "content": "", "mode": 416}, r"files\[0\].mode must be an octal string"),
        ({"path": "/a", "content": "", "mode": "0999"}, r"files\[0\].mode must be an octal string"),
        (
            {"path": "/a", "content": "", "validate": "check"},
            r"files\[0\].validate is for a file and must contain %s",
        ),
        ({"path": "/a", "content": "", "colour": "red"}, r"files\[0\] has unknown keys colour"),
        (
            {"path": "/a", "state": "directory", "content": ""},
            r"files\[0\].content is only for a file",
        ),
    ],
)
def test_bad_entries_are_named(entry, message):
    errors = core.entry_errors([entry])
    assert errors and any(__import__("re").search(message, error) for error in errors), errors


def test_a_path_given_twice_and_a_bad_prune_pattern_are_named():
    errors = core.entry_errors(
        [{"path": "/a", "content": ""}, {"path": "/a", "content": ""}], prune=["x*"]
    )
    assert errors == [
        "files[1].path /a is given twice",
        "prune pattern 'x*' must be an absolute glob with a *",
    ]


def test_an_owner_without_a_name_is_shown_by_number(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    os.chown(path, 54321, 54321)
    diff = converge([{"path": str(path), "content": "x", "owner": "root", "group": "root"}])[1]
    assert diff[0]["before"]["owner"] == "54321" and diff[0]["before"]["group"] == "54321"
    assert diff[0]["after"]["owner"] == "root"
    assert os.stat(path).st_uid == 0
