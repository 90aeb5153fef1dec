from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.filter.host_addresses import host_addresses

HOSTVARS = {
    "explicit": {"celerystack_address": "10.0.0.9", "ansible_host": "10.9.9.9"},
    "by-ip": {"ansible_host": "10.0.0.2"},
    "by-facts": {
        "ansible_host": "app3.example.com",
        "ansible_facts": {"default_ipv4": {"address": "10.0.0.3"}},
    },
    "unknown": {"ansible_host": "app4.example.com", "ansible_facts": {}},
    "twin": {"ansible_host": "10.0.0.2"},
    "v6": {"ansible_host": "fd00::5"},
}


def test_the_inventory_wins_over_facts_and_duplicates_go():
    assert host_addresses(["explicit", "by-ip", "by-facts", "twin", "v6"], HOSTVARS) == [
        "10.0.0.9",
        "10.0.0.2",
        "10.0.0.3",
        "fd00::5",
    ]


def test_a_host_without_any_certain_address_is_named_with_the_fix():
    with pytest.raises(
        AnsibleFilterError, match=r"no address known for unknown: set celerystack_address"
    ):
        host_addresses(["by-ip", "unknown"], HOSTVARS)


def test_a_string_is_not_a_list_of_hosts():
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        host_addresses("by-ip", HOSTVARS)
