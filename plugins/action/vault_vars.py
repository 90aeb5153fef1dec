# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of celerystack.platform.vault_vars (documentation: plugins/modules/vault_vars.py).

It runs on the controller only: the values never leave it, and the file is written with the vault
secret this very run was given, so nobody types a second password. The functions above the
ActionModule are its core (pure, except converge() and atomic_write(), which touch only the one
file) and are unit-tested on their own.
"""

from __future__ import annotations

import datetime
import os
import stat
import tempfile
from collections.abc import Mapping

import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import VaultLib, is_encrypted
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    # no_log: a validation error must not echo a value back.
    "vars": {"type": "dict", "required": True, "no_log": True},
    "mode": {"type": "raw", "default": "0600"},
    "vault_id": {"type": "str"},
}

HEADER = (
    "# Written by celerystack.platform.vault_vars. Values changed with ansible-vault edit are\n"
    "# kept as data; comments are not: each write replaces the whole file.\n"
)


class VaultVarsError(Exception):
    """A request that cannot be carried out; the message is safe to show (it holds no value)."""


def plain(value, name="vars"):
    """The value as plain Python types (str, int, float, bool, None, dict, list).

    Templated values arrive as subclasses of str and dict that carry Ansible's tags; the YAML
    written must hold the data only, and compare equal to what safe_load reads back.
    """
    if value is None or isinstance(value, datetime.date):
        return value
    # Exact types: YAML's safe dumper refuses subclasses (bool before int: it is one).
    for kind in (bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise VaultVarsError("%s: every key must be a string" % name)
            out[str.__str__(key)] = plain(item, "%s[%r]" % (name, str.__str__(key)))
        return out
    if isinstance(value, (list, tuple)):
        return [plain(item, "%s[%d]" % (name, i)) for i, item in enumerate(value)]
    raise VaultVarsError("%s: a %s cannot be written as YAML" % (name, type(value).__name__))


def parse_mode(mode):
    """The file mode as an int, from 0o600, 384 or the string "0600"."""
    wrong = VaultVarsError("mode must be an octal string like '0600', not %r" % (mode,))
    if isinstance(mode, bool):
        raise wrong
    if isinstance(mode, int):
        value = mode
    else:
        try:
            value = int(str(mode), 8)
        except ValueError:
            raise wrong from None
    if not 0 <= value <= 0o7777:
        raise VaultVarsError("mode must be between 0000 and 7777, not %o" % value)
    return value


def choose_secret(secrets, vault_id=None, preferred=None):
    """(vault id, secret) to encrypt with, from the run's (vault id, secret) pairs.

    `vault_id` names one; without it a single loaded secret is used, else the one that
    decrypted the existing file (`preferred`). Anything else is ambiguous and refused: a file
    encrypted with the wrong password breaks the next run of every playbook on the inventory.
    """
    secrets = list(secrets or [])
    ids = sorted({str(sid) for sid, _secret in secrets})
    if not secrets:
        raise VaultVarsError(
            "no vault secret was given to this run: run with --vault-id/--ask-vault-pass "
            "(the file is encrypted with the run's own vault secret)"
        )
    if vault_id:
        for sid, secret in secrets:
            if sid == vault_id:
                return sid, secret
        raise VaultVarsError(
            "vault_id %r is not among the vault ids of this run (%s): add --vault-id %s@prompt"
            % (vault_id, ", ".join(ids), vault_id)
        )
    if len(secrets) == 1:
        return secrets[0]
    for sid, secret in secrets:
        if preferred is not None and sid == preferred:
            return sid, secret
    raise VaultVarsError(
        "this run has several vault secrets (%s): set vault_id to the one to encrypt with"
        % ", ".join(ids)
    )


def render(data):
    """The YAML text of `data`: sorted keys, multi-line strings (PEM) as literal blocks."""

    class Dumper(yaml.SafeDumper):
        pass

    def represent_str(dumper, text):
        style = "|" if "\n" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    Dumper.add_representer(str, represent_str)
    body = yaml.dump(
        data,
        Dumper=Dumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        explicit_start=True,
        width=1000,
    )
    return HEADER + body


def load(text):
    """The mapping a variables file holds ({} when it is empty)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        # The parser's message quotes the text around the error, which may be a secret.
        mark = getattr(err, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark is not None else ""
        raise VaultVarsError("the existing file is not valid YAML%s" % where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VaultVarsError("the existing file does not hold a mapping of variables")
    return data


def _leaves(data, prefix=""):
    """{name: value} for every leaf; a nested mapping's keys are named parent['key']."""
    out = {}
    for key, value in data.items():
        name = "%s[%r]" % (prefix, key) if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(_leaves(value, name))
        else:
            out[name] = value
    return out


def names_diff(before, after):
    """Which variable names were added, modified, removed or kept: names only, never values."""
    old, new = _leaves(before or {}), _leaves(after or {})
    return {
        "added": sorted(set(new) - set(old)),
        "modified": sorted(n for n in set(old) & set(new) if old[n] != new[n]),
        "removed": sorted(set(old) - set(new)),
        "unchanged": sorted(n for n in set(old) & set(new) if old[n] == new[n]),
    }


def diff_text(names, path, existed):
    """A diff of names for --diff: a modified value shows as an old and a new line."""
    kept = list(names["unchanged"])
    before = kept + names["removed"] + [n + ": (old value)" for n in names["modified"]]
    after = kept + names["added"] + [n + ": (new value)" for n in names["modified"]]
    return {
        "before_header": path + (" (variable names; values hidden)" if existed else " (absent)"),
        "after_header": path + " (variable names; values hidden)",
        "before": "".join(line + "\n" for line in sorted(before)),
        "after": "".join(line + "\n" for line in sorted(after)),
    }


def atomic_write(path, data, mode):
    """Replace `path` with `data` in one rename: readers see the old file or the new one."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        # Before the data goes in, so the secret is never readable by others, even briefly.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def converge(path, wanted, secrets, vault_id=None, mode=0o600, check_mode=False):
    """Make `path` hold `wanted`, vault-encrypted; return what changed (names, never values).

    The data are compared, not the bytes: encrypting the same text twice gives different
    ciphertext (a fresh salt each time), so comparing bytes would rewrite the file on every run.
    """
    # The target of a symbolic link is what the inventory reads; keep the link.
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    # In check mode an earlier task may not have made the directory yet: the file is absent.
    if not os.path.isdir(directory) and not check_mode:
        raise VaultVarsError("directory %s does not exist" % directory)
    vault = VaultLib(list(secrets or []))
    current, used_id, encrypted, current_mode = None, None, True, None
    if os.path.exists(path):
        with open(path, "rb") as handle:
            raw = handle.read()
        current_mode = stat.S_IMODE(os.stat(path).st_mode)
        encrypted = is_encrypted(raw)
        if encrypted:
            if not vault.secrets:
                raise VaultVarsError(
                    "%s is vault-encrypted and this run has no vault secret: run with "
                    "--vault-id/--ask-vault-pass" % path
                )
            try:
                raw, used_id, _secret = vault.decrypt_and_get_vault_id(raw)
            except AnsibleError:
                raise VaultVarsError(
                    "%s cannot be decrypted with the vault secrets of this run; run with the "
                    "vault password it was encrypted with (nothing was written)" % path
                ) from None
        try:
            current = load(to_text(raw, errors="surrogate_or_strict"))
        except VaultVarsError as err:
            raise VaultVarsError("%s: %s" % (path, err)) from None
    chosen_id, secret = choose_secret(secrets, vault_id, preferred=used_id)
    names = names_diff(current, wanted)
    # A plain-text file is encrypted even when its data are right: it may hold secrets.
    rewrite = current is None or not encrypted or current != wanted
    chmod = not rewrite and current_mode != mode
    if not check_mode:
        if rewrite:
            vaulttext = vault.encrypt(render(wanted), secret=secret, vault_id=chosen_id)
            atomic_write(path, to_bytes(vaulttext), mode)
        elif chmod:
            os.chmod(path, mode)
    return {
        "changed": rewrite or chmod,
        "path": path,
        "vault_id": chosen_id,
        "mode": "%04o" % mode,
        "added": names["added"],
        "modified": names["modified"],
        "removed": names["removed"],
        "diff": diff_text(names, path, current is not None),
    }


class ActionModule(ActionBase):
    """Write a vault-encrypted variables file on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            outcome = converge(
                path=args["path"],
                wanted=plain(args["vars"]),
                secrets=self._loader._vault.secrets,
                vault_id=args["vault_id"],
                mode=parse_mode(args["mode"]),
                check_mode=bool(self._task.check_mode),
            )
        except VaultVarsError as err:
            result.update(failed=True, msg=str(err))
            return result
        diff = outcome.pop("diff")
        if self._task.diff:
            result["diff"] = diff
        result.update(outcome)
        return result
