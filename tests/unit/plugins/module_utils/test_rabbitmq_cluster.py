from __future__ import annotations

import json

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


def test_an_address_that_is_a_name_is_refused_for_the_hosts_block():
    hostvars = {"b": {"celerystack_address": "b.example.com", "rabbitmq_nodename": "rabbit@b"}}
    refused = r"b: celerystack_address 'b\.example\.com' is not an IP address"
    with pytest.raises(core.ClusterInvalid, match=refused):
        core.members(["b"], hostvars)


def test_a_fully_qualified_hostname_fact_gives_the_short_name():
    hostvars = {"b": {"ansible_host": "10.0.0.1", "ansible_facts": {"hostname": "b.example.com"}}}
    assert core.members(["b"], hostvars)[0]["node"] == "rabbit@b"


def test_anything_but_a_list_of_hosts_is_refused():
    with pytest.raises(core.ClusterInvalid, match="list of broker host names"):
        core.members("broker1", HOSTVARS)


B1, B2, B3 = "rabbit@broker1", "rabbit@broker2", "rabbit@broker3"
THREE = ["broker1", "mq2.example.com", "broker3"]


def status(*members, running=None):
    return {"disk_nodes": list(members), "running_nodes": list(running or members)}


def test_a_cluster_that_matches_the_inventory_needs_nothing():
    entries = core.members(THREE, HOSTVARS)
    every = status(B1, B2, B3)
    assert core.plan(entries, {B1: every, B2: every, B3: every}) == {
        "anchor": B1,
        "leave": [],
        "join": [],
        "forget_first": [],
        "split": [],
    }


def test_no_node_answering_means_nothing_to_do():
    entries = core.members(THREE, HOSTVARS)
    assert core.plan(entries, {B1: None, B2: None})["anchor"] is None


def test_a_member_taken_out_of_the_inventory_leaves():
    entries = core.members(["broker1", "broker3"], HOSTVARS)
    every = status(B1, B2, B3)
    result = core.plan(entries, {B1: every, B3: every})
    assert (result["anchor"], result["leave"], result["join"]) == (B1, [B2], [])


def test_a_node_that_did_not_answer_is_left_alone():
    entries = core.members(THREE, HOSTVARS)
    two = status(B1, B3)
    result = core.plan(entries, {B1: two, B2: None, B3: two})
    assert (result["leave"], result["join"]) == ([], [])


def test_a_wiped_seed_rejoins_the_cluster_the_others_still_hold():
    # The seed's store was wiped: it started alone, while the others still list it.
    entries = core.members(THREE, HOSTVARS)
    others = status(B1, B2, B3, running=[B2, B3])
    result = core.plan(entries, {B1: status(B1), B2: others, B3: others})
    assert result["anchor"] == B2
    assert (result["join"], result["forget_first"], result["leave"]) == ([B1], [B1], [])


def test_a_node_alone_that_the_cluster_never_listed_joins_without_a_forget():
    entries = core.members(THREE, HOSTVARS)
    two = status(B1, B2)
    result = core.plan(entries, {B1: two, B2: two, B3: status(B3)})
    assert (result["anchor"], result["join"], result["forget_first"]) == (B1, [B3], [])


def test_a_tie_keeps_the_seeds_cluster():
    entries = core.members(["broker1", "mq2.example.com"], HOSTVARS)
    result = core.plan(entries, {B1: status(B1), B2: status(B2)})
    assert (result["anchor"], result["join"]) == (B1, [B2])


def test_two_halves_of_several_nodes_each_are_never_reset():
    hostvars = dict(
        HOSTVARS, broker4={"ansible_host": "10.0.0.15", "rabbitmq_nodename": "rabbit@broker4"}
    )
    entries = core.members([*THREE, "broker4"], hostvars)
    left, right = status(B1, B2), status(B3, "rabbit@broker4")
    result = core.plan(entries, {B1: left, B2: left, B3: right, "rabbit@broker4": right})
    assert result["anchor"] == B1
    assert (result["join"], result["split"]) == ([], [B3, "rabbit@broker4"])


class Nodes:
    """Fake rabbitmqctl: each node's own cluster_status, and every command run."""

    def __init__(self, views, down=()):
        self.views, self.down, self.commands = views, set(down), []

    def __call__(self, argv):
        node = argv[2]
        if argv[3:5] == ["-q", "cluster_status"]:
            if node in self.down or node not in self.views:
                return 69, "", "unable to connect"
            members = self.views[node]
            return 0, json.dumps({"disk_nodes": members, "running_nodes": members}), ""
        self.commands.append(argv[2:])
        return (69, "", "unable to connect") if node in self.down else (0, "", "")


def test_converge_leave_resets_the_node_taken_out_and_reports_it():
    entries = core.members(["broker1", "broker3"], HOSTVARS)
    every = [B1, B2, B3]
    nodes = Nodes({B1: every, B2: every, B3: every})
    result = core.converge(entries, "leave", nodes)
    assert nodes.commands == [[B2, "stop_app"], [B2, "reset"], [B2, "stop"]]
    assert result["changed"] and result["actions"] == [
        f"{B2} leaves the cluster (reset and stopped)"
    ]
    assert (result["before"], result["after"]) == ({"members": every}, {"members": [B1, B3]})


def test_converge_forgets_a_node_taken_out_that_cannot_be_reached():
    entries = core.members(["broker1", "broker3"], HOSTVARS)
    every = [B1, B2, B3]
    nodes = Nodes({B1: every, B3: every}, down=[B2])
    result = core.converge(entries, "leave", nodes)
    assert nodes.commands == [[B2, "stop_app"], [B1, "forget_cluster_node", B2]]
    assert result["actions"] == [f"{B2} could not be reached and was forgotten"]


def test_converge_in_check_mode_runs_nothing_but_says_what_it_would_do():
    entries = core.members(["broker1", "broker3"], HOSTVARS)
    every = [B1, B2, B3]
    nodes = Nodes({B1: every, B2: every, B3: every})
    result = core.converge(entries, "leave", nodes, check_mode=True)
    assert nodes.commands == [] and result["changed"]


def test_converge_join_only_names_a_wiped_node_to_rebuild_and_whether_to_forget_it():
    entries = core.members(THREE, HOSTVARS)
    every = [B1, B2, B3]
    nodes = Nodes({B1: [B1], B2: every, B3: every})
    result = core.converge(entries, "join", nodes)
    # Read only: the role rebuilds it on its own host (a blank node joins by discovery).
    assert nodes.commands == [] and not result["changed"]
    assert [(e["host"], e["node"], e["forget"]) for e in result["rejoin"]] == [
        ("broker1", B1, True)
    ]
    assert result["plan"]["anchor"] == B2
    # A node alone that the cluster never listed is rebuilt without a forget.
    alone = core.converge(entries, "join", Nodes({B1: [B1, B2], B2: [B1, B2], B3: [B3]}))
    assert [(e["node"], e["forget"]) for e in alone["rejoin"]] == [(B3, False)]
    # The leave phase of the same state has nothing to do and names nothing to rebuild.
    left = core.converge(entries, "leave", Nodes({B1: [B1], B2: every, B3: every}))
    assert (left["actions"], left["rejoin"]) == ([], [])


def test_converge_stops_at_a_split_and_resets_nothing():
    hostvars = dict(
        HOSTVARS, broker4={"ansible_host": "10.0.0.15", "rabbitmq_nodename": "rabbit@broker4"}
    )
    entries = core.members([*THREE, "broker4"], hostvars)
    b4 = "rabbit@broker4"
    nodes = Nodes({B1: [B1, B2], B2: [B1, B2], B3: [B3, b4], b4: [B3, b4]})
    with pytest.raises(core.ClusterError, match="rabbit@broker3, rabbit@broker4 form a cluster"):
        core.converge(entries, "join", nodes)
    assert nodes.commands == []


def test_a_node_whose_application_is_not_running_is_not_read():
    entries = core.members(THREE, HOSTVARS)

    def run(argv):
        # Booting: the node answers, but does not list itself as running yet.
        members = [argv[2]] if argv[2] == B3 else [B1, B2]
        running = [] if argv[2] == B3 else members
        return 0, json.dumps({"disk_nodes": members, "running_nodes": running}), ""

    assert core.read_statuses([B1, B2, B3], run)[B3] is None
    assert core.converge(entries, "join", run)["rejoin"] == []
