# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The core of the ``files`` module: converge a set of related paths in one call.

A role that writes several related files (a service's unit, its drop-in directory and link, a
configuration and its rules) used to pay one round trip per path, two for a template or copy
(a stat, then the attributes). This core plans every path first, checks every new file with its
``validate`` command before anything is moved into place (a bad file changes nothing), then
applies the plan in the order given. Pure Python, no Ansible import: tested on its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import grp
import os
import pwd
import re
import shlex
import shutil
import stat
import tempfile

STATES = ("file", "directory", "link", "absent")
_MODE = re.compile(r"^0?[0-7]{3,4}$")
_KEYS = {"path", "state", "content", "src", "owner", "group", "mode", "validate", "secret"}
# Above this a diff shows only that the content changed (like Ansible's own max_file_size_for_diff).
DIFF_LIMIT = 104448


class FilesError(Exception):
    """A path cannot be converged; the message names it."""


def entry_errors(entries, prune=()):
    """Every problem of the requested entries, each naming files[i].field; [] when all are fine."""
    errors = []
    seen = set()
    if not isinstance(entries, list):
        return ["files must be a list of entries"]
    for i, entry in enumerate(entries):
        where = "files[%d]" % i
        if not isinstance(entry, dict):
            errors.append("%s must be a mapping" % where)
            continue
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            errors.append("%s has unknown keys %s" % (where, ", ".join(unknown)))
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/") or path != os.path.normpath(path):
            errors.append("%s.path must be an absolute, normalised path, not %r" % (where, path))
        elif path in seen:
            errors.append("%s.path %s is given twice" % (where, path))
        else:
            seen.add(path)
        state = entry.get("state", "file")
        if state not in STATES:
            errors.append("%s.state must be one of %s, not %r" % (where, ", ".join(STATES), state))
        if state == "file" and not isinstance(entry.get("content"), str):
            errors.append("%s.content is required (text) for a file" % where)
        if state != "file" and entry.get("content") is not None:
            errors.append("%s.content is only for a file" % where)
        if state == "link" and not (isinstance(entry.get("src"), str) and entry["src"]):
            errors.append("%s.src is required for a link" % where)
        if state != "link" and entry.get("src") is not None:
            errors.append("%s.src is only for a link" % where)
        mode = entry.get("mode")
        if mode is not None and not (isinstance(mode, str) and _MODE.match(mode)):
            errors.append("%s.mode must be an octal string such as '0640', not %r" % (where, mode))
        validate = entry.get("validate")
        if validate is not None and (state != "file" or "%s" not in str(validate)):
            errors.append("%s.validate is for a file and must contain %%s" % where)
    for pattern in prune:
        if not isinstance(pattern, str) or not pattern.startswith("/") or "*" not in pattern:
            errors.append("prune pattern %r must be an absolute glob with a *" % (pattern,))
    return errors


def _lookup(name, find, field, kind):
    """The number of a user or group name; -1 (leave it as it is) for none."""
    if name is None:
        return -1
    try:
        return getattr(find(name), field)
    except KeyError:
        raise FilesError("no such %s: %s" % (kind, name)) from None


def _uid(owner):
    return _lookup(owner, pwd.getpwnam, "pw_uid", "user")


def _gid(group):
    return _lookup(group, grp.getgrnam, "gr_gid", "group")


def _name(number, find, field):
    """The name of a user or group number, or the number when it has none."""
    try:
        return getattr(find(number), field)
    except KeyError:
        return str(number)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _text(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _attributes(st, entry):
    """What differs between a path's owner, group and mode and the entry's; {} when nothing."""
    wanted = {}
    if entry.get("owner") is not None and st.st_uid != _uid(entry["owner"]):
        wanted["owner"] = (_name(st.st_uid, pwd.getpwuid, "pw_name"), entry["owner"])
    if entry.get("group") is not None and st.st_gid != _gid(entry["group"]):
        wanted["group"] = (_name(st.st_gid, grp.getgrgid, "gr_name"), entry["group"])
    if entry.get("mode") is not None and stat.S_IMODE(st.st_mode) != int(entry["mode"], 8):
        wanted["mode"] = ("%04o" % stat.S_IMODE(st.st_mode), "%04o" % int(entry["mode"], 8))
    return wanted


def _kind(st):
    if st is None:
        return "absent"
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    return "file"


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def plan(entries, prune=()):
    """What each path needs: a list of steps, in the order given, then the pruned paths.

    A step is a dict: path, entry, kind (what is there now), action (create, replace, attributes,
    remove, or None), attributes (the differences) and, for a file, before (its bytes or None).
    """
    steps = []
    for entry in entries:
        path = entry["path"]
        state = entry.get("state", "file")
        st = _lstat(path)
        kind = _kind(st)
        step = {
            "path": path,
            "entry": entry,
            "kind": kind,
            "action": None,
            "attributes": {},
            "before": None,
        }
        if state == "absent":
            step["action"] = None if kind == "absent" else "remove"
        elif state == "directory":
            if kind == "absent":
                step["action"] = "create"
            elif kind != "directory":
                raise FilesError("%s is a %s, not a directory; remove it by hand" % (path, kind))
            else:
                step["attributes"] = _attributes(st, entry)
        elif state == "link":
            if kind == "directory":
                raise FilesError("%s is a directory, not a link; remove it by hand" % path)
            if kind == "absent":
                step["action"] = "create"
            elif kind != "link" or os.readlink(path) != entry["src"]:
                step["action"] = "replace"
                step["before"] = os.readlink(path).encode() if kind == "link" else None
        else:
            if kind == "directory":
                raise FilesError("%s is a directory, not a file; remove it by hand" % path)
            if kind == "file":
                step["before"] = _read(path)
            if kind != "file" or step["before"] != entry["content"].encode("utf-8"):
                step["action"] = "create" if kind == "absent" else "replace"
            else:
                step["attributes"] = _attributes(st, entry)
        steps.append(step)
    managed = set(entry["path"] for entry in entries)
    pruned = []
    for pattern in prune:
        for path in sorted(glob.glob(pattern)):
            if path not in managed and path not in pruned:
                pruned.append(path)
    return steps, pruned


def changed(steps, pruned):
    return [step["path"] for step in steps if step["action"] or step["attributes"]] + list(pruned)


def diffs(steps, pruned):
    """Ansible's diff entries (a list), one or two per changed path; never a secret's content."""
    result = []
    for step in steps:
        entry, path = step["entry"], step["path"]
        state = entry.get("state", "file")
        if step["action"] in ("create", "replace") and state == "file":
            before = _text(step["before"]) if step["before"] is not None else ""
            after = entry["content"]
            if entry.get("secret"):
                before, after = (
                    "(secret content)\n" if step["before"] is not None else "",
                    "(secret content, changed)\n",
                )
            elif before is None or len(after) > DIFF_LIMIT or len(before) > DIFF_LIMIT:
                before, after = "(content)\n", "(new content, %d bytes)\n" % len(after)
            result.append(
                {"before_header": path, "after_header": path, "before": before, "after": after}
            )
        elif step["action"] or step["attributes"]:
            before = {"path": path, "state": step["kind"]}
            after = {"path": path, "state": state}
            if state == "link":
                before["src"] = _text(step["before"]) if step["before"] is not None else None
                after["src"] = entry["src"]
            for name, (old, new) in sorted(step["attributes"].items()):
                before[name], after[name] = old, new
            result.append({"before": before, "after": after})
    for path in pruned:
        result.append(
            {
                "before": {"path": path, "state": "present"},
                "after": {"path": path, "state": "absent"},
            }
        )
    return result


def _chown_chmod(path, entry):
    uid, gid = _uid(entry.get("owner")), _gid(entry.get("group"))
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)
    if entry.get("mode") is not None:
        os.chmod(path, int(entry["mode"], 8))


def _stage(step, staging):
    """Writes a new file's content under staging with its final name, owner and mode."""
    entry = step["entry"]
    folder = tempfile.mkdtemp(dir=staging)
    staged = os.path.join(folder, os.path.basename(step["path"]))
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(entry["content"].encode("utf-8"))
    _chown_chmod(staged, entry)
    return staged


def _validate(step, staged, run):
    command = step["entry"].get("validate")
    if not command:
        return
    rc, out, err = run(shlex.split(command.replace("%s", staged)))
    if rc != 0:
        output = (err or out or "").strip()
        raise FilesError("%s failed its check (%s): %s" % (step["path"], command, output[-2000:]))


def _put(step, staged):
    """Moves a staged file into place atomically (a temporary name in the target's directory)."""
    path = step["path"]
    target = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
    os.close(target[0])
    try:
        shutil.copyfile(staged, target[1])
        _chown_chmod(target[1], step["entry"])
        os.rename(target[1], path)
    except BaseException:
        if os.path.lexists(target[1]):
            os.unlink(target[1])
        raise


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def apply(steps, pruned, run, staging=None):
    """Applies a plan. Every new file is written and checked first; if one fails its check,
    nothing has changed. Then the steps run in the order given, and the pruned paths go."""
    staging_dir = tempfile.mkdtemp(dir=staging)
    try:
        staged = {}
        for step in steps:
            if (
                step["action"] in ("create", "replace")
                and step["entry"].get("state", "file") == "file"
            ):
                staged[step["path"]] = _stage(step, staging_dir)
                _validate(step, staged[step["path"]], run)
        for step in steps:
            entry, path = step["entry"], step["path"]
            state = entry.get("state", "file")
            if step["action"] == "remove":
                _remove(path)
            elif state == "directory":
                if step["action"] == "create":
                    os.makedirs(path)
                if step["action"] or step["attributes"]:
                    _chown_chmod(path, entry)
            elif state == "link":
                if step["action"]:
                    temporary = os.path.join(
                        os.path.dirname(path), ".%s.%d" % (os.path.basename(path), os.getpid())
                    )
                    os.symlink(entry["src"], temporary)
                    os.rename(temporary, path)
            elif step["action"]:
                _put(step, staged[path])
            elif step["attributes"]:
                _chown_chmod(path, entry)
        for path in pruned:
            _remove(path)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
