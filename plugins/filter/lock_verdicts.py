# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which `only_one` locks may be freed: each holder judged on its own host."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = """
name: lock_verdicts
author: Celerystack engineers (@celerystack)
version_added: 0.3.0
short_description: Judge each only_one lock by its holder, as seen from the holder's own host
description:
  - Takes the reports of C(celerystack-manage locks list) from every application host (one JSON
    object per host, each listing every matching lock with the holder state seen from there) and
    returns one verdict per lock.
  - A holder is C(alive) or C(dead) as the report of its own host says (its pid still names the
    process that took the lock, with the same start time, or not). It is C(unknown) when no
    reporting host is the holder's host (a host outside the run, or gone) or the lock's value
    names no holder (written by something else).
  - A lock whose value differs between two reports was taken again while they were read; it is
    C(changing).
  - C(free) is true for a dead holder's lock; with O(force), for every lock.
options:
  _input:
    description: The parsed reports, one per host (C(host) and C(locks)).
    type: list
    elements: dict
    required: true
  force:
    description: Free locks whose holder is alive, unknown or changing as well.
    type: bool
    default: false
"""

EXAMPLES = """
- name: Judge every lock
  ansible.builtin.set_fact:
    verdicts: "{{ reports | celerystack.platform.lock_verdicts(force=false) }}"
"""

RETURN = """
_value:
  description: One verdict per lock, sorted by key.
  type: list
  elements: dict
  contains:
    key: {description: The lock's key without the prefix., type: str}
    value: {description: The value it holds (freed only if it still holds it)., type: str}
    ttl: {description: Seconds until it expires by itself., type: int}
    holder: {description: "Host, pid, process start time and task of the holder.", type: dict}
    state: {description: "alive, dead, unknown or changing.", type: str}
    free: {description: Whether the lock is to be freed., type: bool}
    summary:
      description: "One line for a report: key, state, holder and seconds left."
      type: str
"""


def _summary(key, state, holder, ttl):
    if holder is None:
        held = "by a holder it does not name"
    else:
        held = "by %s pid %s" % (holder.get("host"), holder.get("pid"))
        if holder.get("task"):
            held += " (task %s)" % holder["task"]
    return "%s: %s, held %s, %s s left" % (key, state, held, ttl)


def lock_verdicts(reports, force=False):
    if not isinstance(reports, list) or not all(
        isinstance(report, dict) and {"host", "locks"} <= report.keys() for report in reports
    ):
        raise AnsibleFilterError("lock_verdicts expects a list of {host, locks} reports")
    states_by_host = {
        report["host"]: {lock["key"]: lock["state"] for lock in report["locks"]}
        for report in reports
    }
    seen: dict[str, dict] = {}
    values: dict[str, set] = {}
    for report in reports:
        for lock in report["locks"]:
            seen.setdefault(lock["key"], lock)
            values.setdefault(lock["key"], set()).add(lock["value"])
    verdicts = []
    for key in sorted(seen):
        lock = seen[key]
        holder = lock.get("holder")
        if len(values[key]) > 1:
            state = "changing"
        elif holder is None or holder.get("host") not in states_by_host:
            state = "unknown"
        else:
            # The holder's host may not have listed it (freed in between): nothing to judge.
            state = states_by_host[holder["host"]].get(key, "changing")
        verdicts.append(
            {
                "key": key,
                "value": lock["value"],
                "ttl": lock.get("ttl"),
                "holder": holder,
                "state": state,
                "free": state == "dead" or bool(force),
                "summary": _summary(key, state, holder, lock.get("ttl")),
            }
        )
    return verdicts


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {"lock_verdicts": lock_verdicts}
