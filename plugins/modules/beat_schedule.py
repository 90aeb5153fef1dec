#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: beat_schedule
short_description: Declare django-celery-beat periodic tasks, keyed by name
version_added: 0.1.0
author: Celerystack engineers (@celerystack)
description:
  - Converges the periodic tasks of a Django application that uses django-celery-beat's
    DatabaseScheduler. Runs with the application's own interpreter and settings, and writes
    through the real models, so validation and change signals run.
  - Schedules (interval, crontab with timezone, solar, clocked) are resolved by first match and
    never deleted; a task's schedule row is shared with any other task that has the same one.
  - Tasks the module writes carry a marker in their description. O(purge_unmanaged) removes only
    marked tasks that are no longer declared, never tasks created in the Django admin.
  - All changes happen in one transaction, and the scheduler is told once at the end
    (C(PeriodicTasks)), so a running beat picks them up without a restart.
attributes:
  check_mode:
    support: full
    description: Computes the changes from the live database in a transaction and writes nothing.
  diff_mode:
    support: full
    description: Returns C(before) and C(after) of every task that changes.
options:
  python:
    description: The application's interpreter (its virtualenv's C(bin/python)).
    type: path
    required: true
  settings:
    description: The Django settings module.
    type: str
    required: true
  environment_file:
    description: A file of C(NAME=value) lines the application needs in its environment.
    type: path
  environment:
    description: More environment variables for the application.
    type: dict
    default: {}
  run_as:
    description: Run the application's interpreter as this user (with C(runuser)).
    type: str
  tasks:
    description: The periodic tasks, keyed by O(tasks[].name).
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Unique name of the periodic task., type: str, required: true}
      task: {description: Celery task name to send., type: str, required: true}
      interval:
        description: Every O(tasks[].interval.every) O(tasks[].interval.period).
        type: dict
        suboptions:
          every: {description: How many periods., type: int, required: true}
          period:
            description: The unit.
            type: str
            choices: [days, hours, minutes, seconds, microseconds]
            default: seconds
      crontab:
        description: Cron fields (each C(*) unless given) and the timezone they are read in.
        type: dict
        suboptions:
          minute: {description: Minutes., type: str, default: "*"}
          hour: {description: Hours., type: str, default: "*"}
          day_of_week: {description: Days of the week., type: str, default: "*"}
          day_of_month: {description: Days of the month., type: str, default: "*"}
          month_of_year: {description: Months., type: str, default: "*"}
          timezone: {description: IANA timezone name., type: str, default: UTC}
      solar:
        description: A solar event at a place.
        type: dict
        suboptions:
          event:
            description: Solar event (sunrise or sunset or dawn_civil and so on).
            type: str
            required: true
          latitude: {description: Latitude in degrees., type: float, required: true}
          longitude: {description: Longitude in degrees., type: float, required: true}
      clocked:
        description: Once at a time (needs O(tasks[].one_off)).
        type: dict
        suboptions:
          clocked_time: {description: ISO 8601 time with its UTC offset., type: str, required: true}
      args:
        description: Positional arguments (JSON-serialisable).
        type: list
        elements: raw
        default: []
      kwargs: {description: Keyword arguments (JSON-serialisable)., type: dict, default: {}}
      queue: {description: Queue to send to (otherwise the task's route)., type: str}
      routing_key: {description: Routing key., type: str}
      priority: {description: Message priority., type: int}
      expires: {description: ISO 8601 time with offset after which runs are not sent., type: str}
      one_off: {description: Run once then disable., type: bool, default: false}
      enabled: {description: Whether beat schedules it., type: bool, default: true}
      description: {description: Free text (the marker is appended)., type: str, default: ""}
  purge_unmanaged:
    description: Remove tasks this module wrote earlier that are no longer declared.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Ensure the heartbeat runs every 30 seconds
  celerystack.platform.beat_schedule:
    python: /opt/celerystack/venv/bin/python
    settings: celerystack_app.settings
    environment_file: /etc/celerystack/app.env
    run_as: celerystack
    tasks:
      - name: heartbeat
        task: celerystack_app.mail.tasks.heartbeat
        interval: {every: 30, period: seconds}
      - name: nightly purge
        task: celerystack_app.mail.tasks.purge_old_mail_data
        kwargs: {days: 30}
        crontab: {minute: "15", hour: "3", timezone: Europe/Paris}
    purge_unmanaged: true
"""

RETURN = r"""
changes:
  description: What was done (or would be, in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: create, name: heartbeat}
    - {action: delete, name: old report}
"""

import inspect
import json
import pkgutil
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils.beat_schedule import diff_of

CORE = "ansible_collections.celerystack.platform.plugins.module_utils"


def read_environment_file(path):
    environment = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                environment[name.strip()] = value
    return environment


def core_source():
    """The source of the module's core, which runs in the application's interpreter. Ansible's
    module zip serves it as package data; loaders without get_data (Mitogen's) through inspect."""
    data = pkgutil.get_data(CORE, "beat_schedule.py")
    if data is not None:
        return data.decode("utf-8")
    return inspect.getsource(sys.modules[CORE + ".beat_schedule"])


def run(module):
    params = module.params
    environment = {"DJANGO_SETTINGS_MODULE": params["settings"], "PYTHONDONTWRITEBYTECODE": "1"}
    if params["environment_file"]:
        environment.update(read_environment_file(params["environment_file"]))
    environment.update(params["environment"])
    source = core_source()
    command = [params["python"], "-c", source + "\nrun_from_stdin()\n"]
    if params["run_as"]:
        command = ["runuser", "-u", params["run_as"], "--", *command]
    request = {
        "tasks": params["tasks"],
        "purge_unmanaged": params["purge_unmanaged"],
        "check_mode": module.check_mode,
    }
    rc, out, err = module.run_command(
        command, data=json.dumps(request), environ_update=environment, binary_data=True
    )
    try:
        result = json.loads(out)
    except ValueError:
        module.fail_json(msg="the application's interpreter failed (rc %s)" % rc, stderr=err)
    if "error" in result:
        module.fail_json(msg=result["error"], stderr=err)
    return result["changes"]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type="path", required=True),
            settings=dict(type="str", required=True),
            environment_file=dict(type="path"),
            environment=dict(type="dict", default={}),
            run_as=dict(type="str"),
            tasks=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    task=dict(type="str", required=True),
                    interval=dict(
                        type="dict",
                        options=dict(
                            every=dict(type="int", required=True),
                            period=dict(
                                type="str",
                                default="seconds",
                                choices=["days", "hours", "minutes", "seconds", "microseconds"],
                            ),
                        ),
                    ),
                    crontab=dict(
                        type="dict",
                        options=dict(
                            minute=dict(type="str", default="*"),
                            hour=dict(type="str", default="*"),
                            day_of_week=dict(type="str", default="*"),
                            day_of_month=dict(type="str", default="*"),
                            month_of_year=dict(type="str", default="*"),
                            timezone=dict(type="str", default="UTC"),
                        ),
                    ),
                    solar=dict(
                        type="dict",
                        options=dict(
                            event=dict(type="str", required=True),
                            latitude=dict(type="float", required=True),
                            longitude=dict(type="float", required=True),
                        ),
                    ),
                    clocked=dict(
                        type="dict", options=dict(clocked_time=dict(type="str", required=True))
                    ),
                    args=dict(type="list", elements="raw", default=[]),
                    kwargs=dict(type="dict", default={}),
                    queue=dict(type="str"),
                    routing_key=dict(type="str", no_log=False),
                    priority=dict(type="int"),
                    expires=dict(type="str"),
                    one_off=dict(type="bool", default=False),
                    enabled=dict(type="bool", default=True),
                    description=dict(type="str", default=""),
                ),
                mutually_exclusive=[("interval", "crontab", "solar", "clocked")],
                required_one_of=[("interval", "crontab", "solar", "clocked")],
            ),
            purge_unmanaged=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    changes = run(module)
    module.exit_json(
        changed=bool(changes),
        changes=[{"action": c["action"], "name": c["name"]} for c in changes],
        diff=diff_of(changes),
    )


if __name__ == "__main__":
    main()
