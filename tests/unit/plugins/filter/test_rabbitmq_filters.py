from ansible_collections.celerystack.platform.plugins.filter.celery_services import (
    topology_broker,
)
from ansible_collections.celerystack.platform.plugins.filter.rabbitmq_definitions import (
    rabbitmq_definitions,
)
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_access import (
    password_matches,
)

TOPOLOGY = {
    "vhost": "/celery",
    "exchanges": [{"name": "logstash"}],
    "queues": [{"name": "logstash", "worker": {"concurrency": 4}}],
    "bindings": [{"source": "logstash", "destination": "logstash", "routing_key": "logstash"}],
    "policies": [{"name": "ttl", "pattern": "^tmp", "definition": {"expires": 1}}],
}


def test_declared_keeps_broker_attributes_with_the_module_defaults():
    declared = topology_broker(TOPOLOGY)
    assert declared["queues"] == [
        {
            "name": "logstash",
            "durable": True,
            "auto_delete": False,
            "arguments": {"x-queue-type": "classic"},
        }
    ]
    assert declared["vhost"] == "/celery"
    assert declared["policies"][0]["apply_to"] == "all"


def test_definitions_hold_every_object_per_vhost_and_hashes_only():
    users = [{"name": "celery", "password": "s3cret", "permissions": [{"vhost": "/celery"}]}]
    doc = rabbitmq_definitions([TOPOLOGY], users, ["/other"])
    assert [v["name"] for v in doc["vhosts"]] == ["/other", "/celery"]
    assert {
        o["vhost"] for g in ("exchanges", "queues", "bindings", "policies") for o in doc[g]
    } == {"/celery"}
    assert doc["policies"][0]["apply-to"] == "all"
    assert "apply_to" not in doc["policies"][0]
    assert "s3cret" not in repr(doc)
    assert password_matches("s3cret", doc["users"][0]["password_hash"])
    assert doc["permissions"] == [
        {"user": "celery", "vhost": "/celery", "configure": ".*", "write": ".*", "read": ".*"}
    ]
