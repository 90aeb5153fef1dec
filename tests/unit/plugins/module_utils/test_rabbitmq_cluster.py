from __future__ import annotations

import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import rabbitmq_cluster as core

HOSTVARS = {
    "broker1": {"ansible_host": "10.0.0.10", "ansible_facts": {"hostname": "broker1"}},
    # The inventory calls it by a DNS alias; its own hostname is what RabbitMQ uses.
    "mq2.example.com": {
        "ansible_host": "mq2.example.com",
        "ansible_facts": {"hostname": "broker2", "default_ipv4": {"address": "10.0.0.11"}},
    },
    "broker3": {"celerystack_address": "10.0.0.12", "rabbitmq_nodename": "rabbit@broker3"},
    "nofacts": {"ansible_host": "nofacts.example.com"},
    "twin": {"ansible_host": "10.0.0.13", "ansible_facts": {"hostname": "broker1"}},
    "bad": {"ansible_host": "10.0.0.14", "rabbitmq_nodename": "rabbit@broker 4"},
}


def test_members_in_inventory_order_named_by_their_own_hostnames():
    entries = core.members(["broker1", "mq2.example.com", "broker3"], HOSTVARS)
    assert entries == [
        {"host": "broker1", "node": "rabbit@broker1", "short": "broker1", "address": "10.0.0.10"},
        {
            "host": "mq2.example.com",
            "node": "rabbit@broker2",
            "short": "broker2",
            "address": "10.0.0.11",
        },
        {"host": "broker3", "node": "rabbit@broker3", "short": "broker3", "address": "10.0.0.12"},
    ]


def test_every_host_without_a_certain_name_or_address_is_named_with_the_fix():
    with pytest.raises(core.ClusterInvalid) as failed:
        core.members(["broker1", "nofacts", "twin", "bad"], HOSTVARS)
    errors = failed.value.errors
    assert len(errors) == 3
    assert errors[0].startswith("nofacts: no RabbitMQ node name known; set rabbitmq_nodename")
    assert errors[1] == "twin: node name rabbit@broker1 is also broker1's"
    assert errors[2].startswith("bad: rabbitmq_nodename 'rabbit@broker 4'")


def test_a_fully_qualified_hostname_fact_gives_the_short_name():
    hostvars = {"b": {"ansible_host": "10.0.0.1", "ansible_facts": {"hostname": "b.example.com"}}}
    assert core.members(["b"], hostvars)[0]["node"] == "rabbit@b"


def test_anything_but_a_list_of_hosts_is_refused():
    with pytest.raises(core.ClusterInvalid, match="list of broker host names"):
        core.members("broker1", HOSTVARS)


def test_membership_names_the_nodes_to_forget_and_those_still_to_join():
    entries = core.members(["broker1", "broker3"], HOSTVARS)
    status = {
        "disk_nodes": ["rabbit@broker1", "rabbit@broker2"],
        "running_nodes": ["rabbit@broker1"],
    }
    assert core.membership(entries, status) == {
        "members": ["rabbit@broker1", "rabbit@broker2"],
        "running": ["rabbit@broker1"],
        "forget": ["rabbit@broker2"],
        "absent": ["rabbit@broker3"],
    }


def test_a_single_node_cluster_matching_the_inventory_needs_nothing():
    entries = core.members(["broker1"], HOSTVARS)
    status = {"disk_nodes": ["rabbit@broker1"], "running_nodes": ["rabbit@broker1"]}
    plan = core.membership(entries, status)
    assert plan["forget"] == [] and plan["absent"] == []
