# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The address each of a list of inventory hosts connects from, from the inventory first."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.module_utils.addresses import address_of

DOCUMENTATION = """
name: host_addresses
author: Celerystack engineers (@celerystack)
version_added: 0.3.0
short_description: The address each inventory host connects from
description:
  - For each host name, in this order, the first of its C(celerystack_address) variable (set
    in the inventory, so certain, and needing no facts), its C(ansible_host) when that is a
    literal IP address, and the IPv4 address of its default route from its gathered facts.
  - Fails naming the host, and the variable that would give it an address, when a host has
    none of them (for example its facts were not gathered because a C(--limit) left it out and
    its inventory entry is a DNS name).
  - Used where a store grants access per client address (MariaDB accounts, with
    C(skip-name-resolve)), so that the grant never depends on whose facts a run happened to
    gather.
options:
  _input:
    description: Inventory host names, for example C(groups['app']).
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars).
    type: raw
    required: true
"""

EXAMPLES = """
- name: The database accounts of the application hosts
  ansible.builtin.set_fact:
    mariadb_app_hosts: "{{ groups['app'] | celerystack.platform.host_addresses(hostvars) }}"
"""

RETURN = """
_value:
  description: One address per host, in the order given, duplicates removed.
  type: list
  elements: str
"""


def host_addresses(names, hostvars):
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise AnsibleFilterError(f"host_addresses expects a list of host names, got {names!r}")
    addresses: list[str] = []
    missing: list[str] = []
    for name in names:
        address = address_of(hostvars[name])
        if address is None:
            missing.append(str(name))
        elif address not in addresses:
            addresses.append(address)
    if missing:
        raise AnsibleFilterError(
            f"no address known for {', '.join(missing)}: set celerystack_address for the host in "
            "the inventory, or gather its facts in the same run (a --limit that leaves it out "
            "skips them)"
        )
    return addresses


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self):
        return {"host_addresses": host_addresses}
