import os
import stat
from unittest.mock import MagicMock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible_collections.celerystack.platform.plugins.action import vault_vars as vv

PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n"
PROD = ("prod", VaultSecret(b"prod-password"))
DEFAULT = ("default", VaultSecret(b"default-password"))
WRONG = ("prod", VaultSecret(b"not-the-password"))


class Tagged(str):
    """Stands for the str subclasses templating hands an action plugin."""


class TaggedInt(int):
    pass


def decrypt(path, secrets=(PROD,)):
    return vv.load(VaultLib(list(secrets)).decrypt(path.read_bytes()).decode())


def test_plain_gives_exact_types():
    data = vv.plain({Tagged("k"): [Tagged("v"), TaggedInt(3), True, None, 1.5, (1, 2)]})
    assert data == {"k": ["v", 3, True, None, 1.5, [1, 2]]}
    # Exactly str and int, not subclasses (a tagged str would not dump as plain YAML).
    assert [type(v).__name__ for v in [next(iter(data)), *data["k"][:2]]] == ["str", "str", "int"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "x"}, "vars: every key must be a string"),
        ({"a": {"b": [object()]}}, "vars['a']['b'][0]: a object cannot be written as YAML"),
    ],
)
def test_plain_names_what_cannot_be_written(value, message):
    with pytest.raises(vv.VaultVarsError, match=r"^" + message.replace("[", r"\[")):
        vv.plain(value)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("0600", 0o600), ("600", 0o600), (0o640, 0o640), ("0644", 0o644)],
)
def test_parse_mode(mode, expected):
    assert vv.parse_mode(mode) == expected


@pytest.mark.parametrize("mode", ["rw", "0800", True, "70000"])
def test_parse_mode_refuses(mode):
    with pytest.raises(vv.VaultVarsError, match="mode must be"):
        vv.parse_mode(mode)


@pytest.mark.parametrize(
    ("secrets", "vault_id", "preferred", "chosen"),
    [
        pytest.param([PROD], None, None, "prod", id="the one secret"),
        pytest.param([DEFAULT], None, None, "default", id="--vault-password-file"),
        pytest.param([DEFAULT, PROD], "prod", None, "prod", id="named"),
        pytest.param([DEFAULT, PROD], None, "prod", "prod", id="the one that opened the file"),
    ],
)
def test_choose_secret(secrets, vault_id, preferred, chosen):
    assert vv.choose_secret(secrets, vault_id, preferred)[0] == chosen


@pytest.mark.parametrize(
    ("secrets", "vault_id", "message"),
    [
        pytest.param([], None, "run with --vault-id/--ask-vault-pass", id="none loaded"),
        pytest.param(None, "prod", "run with --vault-id/--ask-vault-pass", id="none at all"),
        pytest.param(
            [DEFAULT], "prod", r"vault_id 'prod' is not among .*\(default\)", id="unknown"
        ),
        pytest.param(
            [DEFAULT, PROD], None, r"several vault secrets \(default, prod\)", id="ambiguous"
        ),
    ],
)
def test_choose_secret_refuses(secrets, vault_id, message):
    with pytest.raises(vv.VaultVarsError, match=message):
        vv.choose_secret(secrets, vault_id)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(None, {"a": 1}, {"added": ["a"]}, id="new file"),
        pytest.param({"a": 1}, {"a": 1}, {"unchanged": ["a"]}, id="same"),
        pytest.param({"a": 1, "b": 2}, {"a": 3}, {"modified": ["a"], "removed": ["b"]}, id="flat"),
        pytest.param(
            {"keys": {"db1": PEM, "mq1": PEM}},
            {"keys": {"db1": PEM + "x", "redis1": PEM}},
            {"added": ["keys['redis1']"], "modified": ["keys['db1']"], "removed": ["keys['mq1']"]},
            id="nested mapping keys are named",
        ),
        pytest.param(
            {"keys": {}},
            {"keys": {"db1": PEM}},
            {"added": ["keys['db1']"], "removed": ["keys"]},
            id="an empty mapping is a value of its own",
        ),
        pytest.param({"l": [1]}, {"l": [1, 2]}, {"modified": ["l"]}, id="lists are one value"),
    ],
)
def test_names_diff(before, after, expected):
    names = vv.names_diff(before, after)
    assert names == {k: expected.get(k, []) for k in ("added", "modified", "removed", "unchanged")}


def test_the_diff_names_and_never_shows_a_value():
    names = vv.names_diff(
        {"keep": PEM, "old": PEM, "ca": PEM}, {"keep": PEM, "ca": "x", "new": PEM}
    )
    diff = vv.diff_text(names, "/inv/vault_pki.yml", existed=True)
    assert diff["before"] == "ca: (old value)\nkeep\nold\n"
    assert diff["after"] == "ca: (new value)\nkeep\nnew\n"
    assert "values hidden" in diff["before_header"]
    assert "PRIVATE" not in str(diff) and "MIG" not in str(diff)
    assert vv.diff_text(vv.names_diff(None, {"a": 1}), "/f", existed=False)["before_header"] == (
        "/f (absent)"
    )


def test_render_writes_pem_as_literal_blocks_and_reads_back():
    data = {"vault_tls_private_keys": {"mq1": PEM, "db1": PEM}, "vault_pki_ca_private_key": PEM}
    text = vv.render(data)
    assert text.startswith("# Written by celerystack.platform.vault_vars")
    assert "vault_pki_ca_private_key: |\n  -----BEGIN PRIVATE KEY-----\n" in text
    assert text.index("db1:") < text.index("mq1:")
    assert vv.load(text) == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "does not hold a mapping"),
        ("a: [secret-value\n", r"not valid YAML \(line 2\)"),
    ],
)
def test_load_refuses_without_quoting_the_file(text, message):
    with pytest.raises(vv.VaultVarsError, match=message) as err:
        vv.load(text)
    assert "secret-value" not in str(err.value)


def test_load_reads_an_empty_file_as_no_variables():
    assert vv.load("") == {}


def test_converge_creates_an_encrypted_file_with_the_runs_vault_id(tmp_path):
    path = tmp_path / "vault_pki.yml"
    result = vv.converge(str(path), {"k": PEM}, [PROD])
    assert result["changed"] and result["added"] == ["k"] and result["vault_id"] == "prod"
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;1.2;AES256;prod\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert decrypt(path) == {"k": PEM}
    assert os.listdir(tmp_path) == ["vault_pki.yml"]  # no temporary file left behind
    assert PEM not in str(result)


def test_the_default_vault_id_writes_a_1_1_file(tmp_path):
    path = tmp_path / "v.yml"
    vv.converge(str(path), {"k": "v"}, [DEFAULT])
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")


def test_converge_keeps_a_file_whose_data_are_the_same(tmp_path):
    path = tmp_path / "v.yml"
    vv.converge(str(path), {"k": PEM, "n": {"a": 1}}, [PROD])
    before = path.read_bytes()
    result = vv.converge(str(path), {"n": {"a": 1}, "k": PEM}, [PROD])
    assert not result["changed"]
    assert path.read_bytes() == before


def test_converge_rewrites_changed_data_and_names_them(tmp_path):
    path = tmp_path / "v.yml"
    vv.converge(str(path), {"a": "1", "b": "2"}, [PROD])
    result = vv.converge(str(path), {"a": "3", "c": "4"}, [PROD])
    assert (result["added"], result["modified"], result["removed"]) == (["c"], ["a"], ["b"])
    assert decrypt(path) == {"a": "3", "c": "4"}


def test_check_mode_reports_and_writes_nothing(tmp_path):
    path = tmp_path / "v.yml"
    assert vv.converge(str(path), {"a": "1"}, [PROD], check_mode=True)["changed"]
    assert not path.exists()
    vv.converge(str(path), {"a": "1"}, [PROD])
    before = path.read_bytes()
    assert vv.converge(str(path), {"a": "2"}, [PROD], check_mode=True)["modified"] == ["a"]
    assert path.read_bytes() == before
    # A directory an earlier task would have made is no error in check mode.
    missing = tmp_path / "group_vars" / "all" / "v.yml"
    assert vv.converge(str(missing), {"a": "1"}, [PROD], check_mode=True)["changed"]
    with pytest.raises(vv.VaultVarsError, match="does not exist"):
        vv.converge(str(missing), {"a": "1"}, [PROD])


def test_a_plain_text_file_is_encrypted_even_when_its_data_are_right(tmp_path):
    path = tmp_path / "v.yml"
    path.write_text("a: '1'\n")
    result = vv.converge(str(path), {"a": "1"}, [PROD])
    assert result["changed"] and result["modified"] == []
    assert decrypt(path) == {"a": "1"}


def test_only_the_mode_is_corrected_when_the_data_are_right(tmp_path):
    path = tmp_path / "v.yml"
    vv.converge(str(path), {"a": "1"}, [PROD])
    before = path.read_bytes()
    path.chmod(0o644)
    assert vv.converge(str(path), {"a": "1"}, [PROD])["changed"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == before


def test_a_file_the_run_cannot_decrypt_is_left_alone(tmp_path):
    path = tmp_path / "v.yml"
    vv.converge(str(path), {"a": "1"}, [PROD])
    before = path.read_bytes()
    with pytest.raises(vv.VaultVarsError, match="cannot be decrypted with the vault secrets"):
        vv.converge(str(path), {"a": "2"}, [WRONG])
    with pytest.raises(vv.VaultVarsError, match="--vault-id/--ask-vault-pass"):
        vv.converge(str(path), {"a": "2"}, [])
    assert path.read_bytes() == before


def test_a_new_password_is_used_after_the_file_opened_with_its_own(tmp_path):
    path = tmp_path / "v.yml"
    vv.converge(str(path), {"a": "1"}, [PROD])
    result = vv.converge(str(path), {"a": "2"}, [DEFAULT, PROD])
    assert result["vault_id"] == "prod"


def test_a_symbolic_link_keeps_pointing_at_the_rewritten_file(tmp_path):
    target = tmp_path / "real.yml"
    link = tmp_path / "v.yml"
    link.symlink_to(target)
    vv.converge(str(link), {"a": "1"}, [PROD])
    assert link.is_symlink() and decrypt(target) == {"a": "1"}


def action(tmp_path, args, secrets, check_mode=False, diff=False):
    task = MagicMock(args=args, check_mode=check_mode, diff=diff, async_val=0)
    loader = DataLoader()
    loader.set_vault_secrets(secrets)
    plugin = vv.ActionModule(task, MagicMock(), MagicMock(), loader, None, None)
    return plugin.run(task_vars={})


def test_the_action_returns_names_and_a_diff_but_no_value(tmp_path):
    path = tmp_path / "v.yml"
    args = {"path": str(path), "vars": {"vault_tls_private_keys": {"db1": PEM}}}
    result = action(tmp_path, args, [PROD], diff=True)
    assert result["changed"] and result["added"] == ["vault_tls_private_keys['db1']"]
    assert result["diff"]["after"] == "vault_tls_private_keys['db1']\n"
    assert "PRIVATE" not in str(result)
    assert decrypt(path) == args["vars"]


def test_the_action_fails_with_the_message_of_its_core(tmp_path):
    args = {"path": str(tmp_path / "v.yml"), "vars": {"a": "1"}, "mode": "rw"}
    assert action(tmp_path, args, [PROD])["msg"].startswith("mode must be")
    result = action(tmp_path, dict(args, mode="0600"), [])
    assert result["failed"] and "--vault-id/--ask-vault-pass" in result["msg"]
    assert not (tmp_path / "v.yml").exists()
