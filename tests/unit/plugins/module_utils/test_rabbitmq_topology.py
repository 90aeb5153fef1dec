import pytest
from ansible_collections.celerystack.platform.plugins.module_utils import rabbitmq_topology as topo

# Objects as the management API returns them (extra fields included).
API_EXCHANGE = {
    "name": "logstash",
    "vhost": "/celery",
    "type": "direct",
    "durable": True,
    "auto_delete": False,
    "internal": False,
    "arguments": {},
    "user_who_performed_action": "admin",
}
API_QUEUE = {
    "name": "logstash",
    "durable": True,
    "auto_delete": False,
    "type": "classic",
    "arguments": {"x-dead-letter-exchange": "dlx"},
}
API_BINDING = {
    "source": "logstash",
    "vhost": "/celery",
    "destination": "logstash",
    "destination_type": "queue",
    "routing_key": "logstash",
    "arguments": {},
    "properties_key": "logstash",
}
API_POLICY = {
    "name": "expire",
    "vhost": "/celery",
    "pattern": "^tmp\\.",
    "apply-to": "queues",
    "priority": 1,
    "definition": {"expires": 60000},
}

WANT_EXCHANGE = {"name": "logstash", "type": "direct"}
WANT_QUEUE = {"name": "logstash", "arguments": {"x-dead-letter-exchange": "dlx"}}
WANT_BINDING = {"source": "logstash", "destination": "logstash", "routing_key": "logstash"}
WANT_POLICY = {
    "name": "expire",
    "pattern": "^tmp\\.",
    "apply_to": "queues",
    "priority": 1,
    "definition": {"expires": 60000},
}

CURRENT = {
    "exchange": [API_EXCHANGE],
    "queue": [API_QUEUE],
    "binding": [API_BINDING],
    "policy": [API_POLICY],
}
WANTED = {
    "exchange": [WANT_EXCHANGE],
    "queue": [WANT_QUEUE],
    "binding": [WANT_BINDING],
    "policy": [WANT_POLICY],
}


def actions(changes):
    return [(c["action"], c["kind"], c["name"]) for c in changes]


@pytest.mark.parametrize(
    ("spec", "expected_type"),
    [
        ({"name": "q"}, "classic"),
        ({"name": "q", "arguments": {"x-queue-type": "quorum"}}, "quorum"),
        ({"name": "q", "type": "quorum", "arguments": {}}, "quorum"),  # API shape
        ({"name": "q", "type": "stream"}, "stream"),
    ],
)
def test_normalize_queue_makes_the_queue_type_explicit(spec, expected_type):
    assert topo.normalize_queue(spec)["arguments"]["x-queue-type"] == expected_type


@pytest.mark.parametrize(
    ("current", "wanted", "expected"),
    [
        ({"durable": True}, {"durable": True}, []),
        ({"durable": True}, {"durable": False}, [("durable", True, False)]),
        ({"arguments": {"a": 1}}, {"arguments": {"a": 1}}, []),
        ({"arguments": {"a": 1}}, {"arguments": {"a": 2}}, [("arguments.a", 1, 2)]),
        ({"arguments": {"a": 1}}, {"arguments": {}}, [("arguments.a", 1, None)]),
        ({"arguments": {}}, {"arguments": {"b": "x"}}, [("arguments.b", None, "x")]),
    ],
)
def test_differences(current, wanted, expected):
    assert topo.differences(current, wanted) == expected


def test_empty_vhost_gets_everything_created_in_dependency_order():
    changes = topo.plan({}, WANTED)
    assert [change[:2] for change in actions(changes)] == [
        ("create", "exchange"),
        ("create", "queue"),
        ("create", "binding"),
        ("create", "policy"),
    ]
    assert changes[1]["after"]["arguments"] == {
        "x-dead-letter-exchange": "dlx",
        "x-queue-type": "classic",
    }


def test_converged_vhost_needs_nothing():
    assert topo.plan(CURRENT, WANTED) == []


@pytest.mark.parametrize(
    ("wanted_queue", "attribute", "current", "wanted"),
    [
        (
            {
                "name": "logstash",
                "arguments": {"x-dead-letter-exchange": "dlx", "x-queue-type": "quorum"},
            },
            "arguments.x-queue-type",
            "classic",
            "quorum",
        ),
        (
            {"name": "logstash", "arguments": {"x-dead-letter-exchange": "other"}},
            "arguments.x-dead-letter-exchange",
            "dlx",
            "other",
        ),
        (
            {"name": "logstash", "durable": False, "arguments": {"x-dead-letter-exchange": "dlx"}},
            "durable",
            True,
            False,
        ),
    ],
)
def test_incompatible_queue_change_is_refused_with_names_and_values(
    wanted_queue, attribute, current, wanted
):
    with pytest.raises(topo.IncompatibleChange) as err:
        topo.plan(CURRENT, dict(WANTED, queue=[wanted_queue]))
    assert (err.value.kind, err.value.name, err.value.attribute) == ("queue", "logstash", attribute)
    assert (err.value.current, err.value.wanted) == (current, wanted)
    message = str(err.value)
    assert "queue 'logstash'" in message and attribute in message
    assert repr(current) in message and repr(wanted) in message
    assert "allow_recreate" in message


def test_incompatible_exchange_change_is_refused():
    with pytest.raises(topo.IncompatibleChange, match="exchange 'logstash': type is 'direct'"):
        topo.plan(CURRENT, dict(WANTED, exchange=[{"name": "logstash", "type": "topic"}]))


def test_allow_recreate_plans_a_recreate_and_binds_the_new_queue_again():
    wanted_queue = {
        "name": "logstash",
        "arguments": {"x-queue-type": "quorum", "x-dead-letter-exchange": "dlx"},
    }
    changes = topo.plan(CURRENT, dict(WANTED, queue=[wanted_queue]), allow_recreate=True)
    # Deleting the queue deleted its binding: the same run must declare it again.
    assert actions(changes) == [
        ("recreate", "queue", "logstash"),
        ("create", "binding", "logstash -> queue logstash [logstash] {}"),
    ]


def test_bindings_of_a_recreated_exchange_are_not_removed_twice():
    current = dict(CURRENT, binding=[API_BINDING, dict(API_BINDING, routing_key="old")])
    exchange = dict(WANT_EXCHANGE, type="fanout")
    changes = topo.plan(
        current, dict(WANTED, exchange=[exchange]), allow_recreate=True, remove_undeclared=True
    )
    assert actions(changes) == [
        ("recreate", "exchange", "logstash"),
        ("create", "binding", "logstash -> queue logstash [logstash] {}"),
    ]


def test_policy_is_updated_in_place():
    policy = dict(WANT_POLICY, definition={"expires": 120000})
    changes = topo.plan(CURRENT, dict(WANTED, policy=[policy]))
    assert actions(changes) == [("update", "policy", "expire")]
    assert changes[0]["before"]["definition"] == {"expires": 60000}


def test_a_new_routing_key_is_a_new_binding_and_the_old_one_stays_by_default():
    binding = dict(WANT_BINDING, routing_key="events")
    changes = topo.plan(CURRENT, dict(WANTED, binding=[binding]))
    assert [change[:2] for change in actions(changes)] == [("create", "binding")]


def test_remove_undeclared_removes_only_ours_and_bindings_before_queues():
    current = {
        "exchange": [
            API_EXCHANGE,
            dict(API_EXCHANGE, name="amq.topic", type="topic"),
            dict(API_EXCHANGE, name=""),
        ],
        "queue": [API_QUEUE, dict(API_QUEUE, name="stale")],
        "binding": [
            API_BINDING,
            dict(API_BINDING, destination="stale", routing_key="s"),
            dict(API_BINDING, source="", destination="stale", routing_key="stale"),
        ],
        "policy": [API_POLICY],
    }
    changes = topo.plan(current, WANTED, remove_undeclared=True)
    assert actions(changes) == [
        ("delete", "binding", "logstash -> queue stale [s] {}"),
        ("delete", "queue", "stale"),
    ]


def test_remove_undeclared_leaves_what_celery_declares_itself():
    # Native delayed delivery (a worker with a quorum queue declares it), events, remote control.
    delayed = dict(API_EXCHANGE, name="celery_delayed_27", type="topic")
    current = {
        "exchange": [
            API_EXCHANGE,
            delayed,
            dict(delayed, name="celery_delayed_delivery"),
            dict(API_EXCHANGE, name="celeryev", type="topic"),
            dict(API_EXCHANGE, name="celery.pidbox", type="fanout"),
            dict(API_EXCHANGE, name="reply.celery.pidbox"),
        ],
        "queue": [
            API_QUEUE,
            dict(API_QUEUE, name="celery_delayed_0", type="quorum"),
            dict(API_QUEUE, name="celeryev.5d1e4a2c-0b7a-4c2e-9f6f-2f5b8f6b2e11"),
            dict(API_QUEUE, name="celery@app1.celery.pidbox"),
            dict(API_QUEUE, name="5d1e4a2c-0b7a-4c2e-9f6f-2f5b8f6b2e11"),
        ],
        "binding": [
            API_BINDING,
            dict(API_BINDING, source="celery_delayed_27", destination="celery_delayed_27"),
            dict(
                API_BINDING,
                source="celery_delayed_delivery",
                destination="logstash",
                destination_type="exchange",
                routing_key="#.logstash",
            ),
        ],
        "policy": [API_POLICY],
    }
    assert topo.plan(current, WANTED, remove_undeclared=True) == []
    # A name merely like theirs is still ours.
    current["queue"].append(dict(API_QUEUE, name="celery_delayed_stale"))
    assert actions(topo.plan(current, WANTED, remove_undeclared=True)) == [
        ("delete", "queue", "celery_delayed_stale")
    ]


def test_a_duplicate_declaration_is_refused():
    with pytest.raises(topo.TopologyError, match="queue 'logstash' is declared twice"):
        topo.plan({}, {"queue": [WANT_QUEUE, WANT_QUEUE]})


def test_diff_lists_before_and_after_per_object():
    policy = dict(WANT_POLICY, definition={"expires": 1})
    diff = topo.diff_of(topo.plan(CURRENT, dict(WANTED, policy=[policy])))
    assert diff["before"]["policies"]["expire"]["definition"] == {"expires": 60000}
    assert diff["after"]["policies"]["expire"]["definition"] == {"expires": 1}
    created = topo.diff_of(topo.plan({}, {"queue": [{"name": "q"}]}))
    assert created == {
        "before": {},
        "after": {"queues": {"q": topo.normalize_queue({"name": "q"})}},
    }
