"""The collection's topology core, loaded from the checkout as the deployment runs it.

The application's tests build their topology with it, so they read exactly the projection the
celery_app role writes for the same inventory topology.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_TOPOLOGY = ROOT / "inventories/sandbox/group_vars/all/topology.yml"

_spec = importlib.util.spec_from_file_location(
    "celerystack_topology_core", ROOT / "plugins/module_utils/topology.py"
)
core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(core)


def projection(topology: dict) -> dict:
    """What the celery_app role writes as topology.json for this inventory topology."""
    return core.application(topology)


def sandbox_topology() -> dict:
    import yaml

    return yaml.safe_load(SANDBOX_TOPOLOGY.read_text())["celerystack_topology"]
