# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests for addresses that roles accept as listen or peer addresses."""

from __future__ import annotations

from ansible_collections.celerystack.platform.plugins.module_utils.addresses import literal_ip

DOCUMENTATION = """
name: ip_address
author: Celerystack engineers (@celerystack)
version_added: 0.1.0
short_description: Test whether a value is a literal IPv4 or IPv6 address
description:
  - True when the value parses as an IPv4 or IPv6 address (no host names, no prefixes).
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""

EXAMPLES = """
- name: Ensure every bind address is a literal IP address
  ansible.builtin.assert:
    that: redis_bind_addresses | reject('celerystack.platform.ip_address') | list | length == 0
"""

RETURN = """
_value:
  description: Whether the input is an IP address.
  type: boolean
"""


def ip_address(value):
    """Return True when value is a literal IPv4 or IPv6 address."""
    return literal_ip(value)


class TestModule:
    """Ansible Jinja2 tests."""

    def tests(self):
        return {"ip_address": ip_address}
