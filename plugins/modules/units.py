#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: units
short_description: Keep a set of systemd units enabled and running, restarting the outdated ones
version_added: 0.5.0
author: Celerystack engineers (@celerystack)
description:
  - Ensures each unit in O(names) is enabled and running, in one module run on the host. The
    units to restart (O(restart)), and the services that started on an older configuration
    generation than the current one (O(generation)), are restarted with one C(systemctl restart)
    for all of them, so a host's services restart side by side.
  - A Celery service records the generation it read when it started (the C(ExecStartPre) of the
    application's shared drop-in writes it under O(started_dir)); a service whose record differs
    from the current generation, or that has none, runs on an older configuration and is
    restarted, even when the change was made by an earlier, interrupted or tag-limited run.
  - A unit systemd does not know fails the task; in check mode it is left alone and returned in
    RV(missing) (a new host, where the run would install it).
attributes:
  check_mode:
    support: full
    description: Reports what would be enabled, restarted and started.
  diff_mode:
    support: full
    description: Each unit that changes, with its enablement and activity before and after.
options:
  names:
    description: The units, enabled and running afterwards; enabled, restarted and started in this
      order.
    type: list
    elements: str
    required: true
  restart:
    description: Units of O(names) to restart whatever their generation.
    type: list
    elements: str
    default: []
  generation:
    description: The file holding the current configuration generation; without it (or when it is
      missing or empty) no unit is outdated.
    type: path
  generation_units:
    description: The units of O(names) that record the generation they started with.
    type: list
    elements: str
    default: []
  started_dir:
    description: Where each of O(generation_units) records its generation, one file per unit.
    type: path
    default: /run/celerystack/started
"""

EXAMPLES = r"""
- name: Ensure the worker services run, restarting the tuned one and any on an old configuration
  celerystack.platform.units:
    names: [celery-worker-default.service, celery-worker-email.service, celery.target]
    restart: [celery-worker-email.service]
    generation: /etc/celerystack/generation
    generation_units: [celery-worker-default.service, celery-worker-email.service]
"""

RETURN = r"""
enabled:
  description: The units enabled (or that would be).
  returned: always
  type: list
  elements: str
restarted:
  description: The units restarted (or that would be), the outdated ones among them.
  returned: always
  type: list
  elements: str
started:
  description: The units started (or that would be).
  returned: always
  type: list
  elements: str
outdated:
  description: The units that ran on an older configuration generation.
  returned: always
  type: list
  elements: str
missing:
  description: The units systemd does not know, left alone.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils import units as core


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            restart=dict(type="list", elements="str", default=[]),
            generation=dict(type="path"),
            generation_units=dict(type="list", elements="str", default=[]),
            started_dir=dict(type="path", default="/run/celerystack/started"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    names = params["names"]
    strays = sorted(set(params["restart"] + params["generation_units"]) - set(names))
    if not names or strays:
        module.fail_json(
            msg="names must list every unit; restart and generation_units name others: %s" % strays
        )
    try:
        rc, out, err = module.run_command(
            ["systemctl", "show", "-p", ",".join(core.PROPERTIES), *names]
        )
        if rc != 0:
            raise core.UnitsError("systemctl show failed (%d): %s" % (rc, err.strip()))
        states = core.parse_show(out, names)
        current = core.read_generation(params["generation"]) if params["generation"] else None
        stale = core.outdated(params["generation_units"], current, params["started_dir"])
        actions = core.plan(names, states, params["restart"], stale)
        if actions["missing"] and not module.check_mode:
            raise core.UnitsError("systemd knows no unit %s" % ", ".join(actions["missing"]))
        if not module.check_mode:
            core.apply(actions, module.run_command)
    except core.UnitsError as err:
        module.fail_json(msg=str(err))
    changed = bool(actions["enable"] or actions["restart"] or actions["start"])
    module.exit_json(
        changed=changed,
        enabled=actions["enable"],
        restarted=actions["restart"],
        started=actions["start"],
        outdated=[name for name in stale if name in actions["restart"]],
        missing=actions["missing"],
        diff=core.diff(states, actions),
    )


if __name__ == "__main__":
    main()
