#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: files
short_description: Converge a set of related directories, files and links in one call
version_added: 0.5.0
author: Celerystack engineers (@celerystack)
description:
  - Ensures each path in O(files) is a directory, a file with the given content, a symbolic link
    to the given target, or absent, with its owner, group and mode, in the order given, in one
    module run on the host. The roles use it where they write several related files (a service's
    unit, drop-in directory and link; a configuration and its rules), one round trip for all.
  - Every new or changed file is written to a private staging directory under its own name and
    checked with its C(validate) command before anything moves into place; if one check fails,
    nothing has changed. Each file then replaces the old one atomically (a rename in its
    directory).
  - Refuses to turn a directory into a file or a link, and a file or link into a directory;
    those are left for a person to look at.
  - Paths matching O(prune) that are not in O(files) are removed (the rules of services no longer
    wanted).
attributes:
  check_mode:
    support: full
    description: Reports each path that would change, without writing or running a check.
  diff_mode:
    support: full
    description: One diff per changed path; content for files, state, link target, owner, group
      and mode otherwise. A file marked C(secret) shows only that its content changed (use
      C(no_log) on such tasks as well, so the values stay out of the invocation).
options:
  files:
    description:
      - The paths, each a mapping with C(path) (absolute), C(state) (C(file), the default,
        C(directory), C(link) or C(absent)), C(content) (a file's text), C(src) (a link's
        target), C(owner), C(group), C(mode) (an octal string such as C('0640')),
        C(validate) (a file's check, a command with C(%s) for the staged file, which has the
        destination's name) and C(secret) (no content in the diff).
    type: list
    elements: dict
    required: true
  prune:
    description: Absolute glob patterns; every match that is not in O(files) is removed.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Ensure the unit, its drop-in directory and the link to the shared drop-in
  celerystack.platform.files:
    files:
      - path: /etc/systemd/system/celery-worker-default.service
        content: "{{ lookup('ansible.builtin.template', 'celery-worker.service.j2') }}"
        mode: "0644"
        validate: systemd-analyze verify --man=no %s
      - path: /etc/systemd/system/celery-worker-default.service.d
        state: directory
        mode: "0755"
      - path: /etc/systemd/system/celery-worker-default.service.d/override.conf
        state: link
        src: /etc/celerystack/service.conf
    prune:
      - /etc/systemd/system/celery-worker-*.service
"""

RETURN = r"""
changed_paths:
  description: The paths that changed (or would, in check mode), in the order given, then the
    pruned ones.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celerystack.platform.plugins.module_utils import files as core


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True),
            prune=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    entries, prune = module.params["files"], module.params["prune"]
    errors = core.entry_errors(entries, prune)
    if errors:
        module.fail_json(msg="; ".join(errors))
    try:
        steps, pruned = core.plan(entries, prune)
        changed_paths = core.changed(steps, pruned)
        diff = core.diffs(steps, pruned) if module._diff else []
        if changed_paths and not module.check_mode:
            core.apply(steps, pruned, run=module.run_command)
    except (core.FilesError, OSError) as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=diff)


if __name__ == "__main__":
    main()
