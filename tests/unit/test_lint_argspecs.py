"""harness/lint-argspecs: a role whose defaults/main.yml and meta/argument_specs.yml agree passes;
each way they can drift apart is one reported line."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "harness" / "lint-argspecs"


def _load():
    loader = importlib.machinery.SourceFileLoader("lint_argspecs", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


lint = _load()

PORT = {"type": "int", "default": 5672, "description": "Port."}
PASSWORD = {"type": "str", "required": True, "no_log": True, "description": "Password."}


def specs(**entry_points):
    return {"argument_specs": {name: {"options": o} for name, o in entry_points.items()}}


CASES = {
    "in step": (
        {"r_port": 5672, "r_host": "{{ inventory_hostname }}"},
        specs(main={"r_port": PORT, "r_password": PASSWORD, "r_host": {"type": "str"}}),
        [],
    ),
    "other entry point, own description": (
        {"r_port": 5672},
        specs(main={"r_port": PORT}, preflight={"r_port": dict(PORT, description="Other.")}),
        [],
    ),
    "default without spec": (
        {"r_port": 5672, "r_extra": 1},
        specs(main={"r_port": PORT}),
        ["r: r_extra: set in defaults/main.yml but not an option of `main`"],
    ),
    "spec without default, not required": (
        {},
        specs(main={"r_port": PORT}),
        [
            "r: r_port: neither required nor set in defaults/main.yml"
            " (its spec `default:` is documentation only)"
        ],
    ),
    "mismatched literal default": (
        {"r_port": 5673},
        specs(main={"r_port": PORT}),
        ["r: r_port: spec default 5672 != defaults/main.yml 5673"],
    ),
    "same value, other type": (
        {"r_port": "5672"},
        specs(main={"r_port": PORT}),
        ['r: r_port: spec default 5672 != defaults/main.yml "5672"'],
    ),
    "literal default missing from spec": (
        {"r_port": 5672},
        specs(main={"r_port": {"type": "int"}}),
        ["r: r_port: spec has no `default:`; defaults/main.yml has 5672"],
    ),
    "required but defaulted": (
        {"r_password": ""},
        specs(main={"r_password": PASSWORD}),
        ["r: r_password: required but set in defaults/main.yml"],
    ),
    "entry point disagrees with main": (
        {"r_port": 5672},
        specs(main={"r_port": PORT}, preflight={"r_port": dict(PORT, default=1)}),
        [
            "r: r_port: spec (entry point `preflight`) differs from its spec in `main`",
            "r: r_port: spec (entry point `preflight`) default 1 != defaults/main.yml 5672",
        ],
    ),
    "defaults without specs": (
        {"r_port": 5672},
        None,
        [
            "r: -: has defaults/main.yml but no meta/argument_specs.yml",
            "r: r_port: set in defaults/main.yml but not an option of `main`",
        ],
    ),
}


@pytest.mark.parametrize(("defaults", "argument_specs", "problems"), CASES.values(), ids=CASES)
def test_check_role(defaults, argument_specs, problems):
    assert lint.check_role("r", defaults, argument_specs) == problems


def test_every_role_dir_is_checked(tmp_path, capsys):
    """Roles named with a leading underscore, and roles with no defaults file, are not skipped."""
    (tmp_path / "_private" / "defaults").mkdir(parents=True)
    (tmp_path / "_private" / "defaults" / "main.yml").write_text("---\n_private_x: 1\n")
    (tmp_path / "nodefaults" / "meta").mkdir(parents=True)
    (tmp_path / "nodefaults" / "meta" / "argument_specs.yml").write_text(
        "---\nargument_specs:\n  main:\n    options:\n      nodefaults_y: {type: str}\n"
    )
    assert lint.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "_private: -: has defaults/main.yml but no meta/argument_specs.yml",
        "_private: _private_x: set in defaults/main.yml but not an option of `main`",
        "nodefaults: nodefaults_y: neither required nor set in defaults/main.yml",
    ]
