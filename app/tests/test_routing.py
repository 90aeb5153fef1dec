import pytest
from celerystack_app import topology
from celerystack_app.celery import app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("celerystack_app.mail.tasks.store_mail_data", "mail_data"),
        ("celerystack_app.mail.tasks.send_notification", "email"),
        ("celerystack_app.mail.tasks.heartbeat", "default"),
    ],
)
def test_tasks_route_to_the_queue_the_topology_names(task, queue):
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_celery_declares_queues_exactly_as_the_broker_has_them():
    queues = {q.name: q for q in topology.celery_queues(settings.TOPOLOGY)}
    assert "logstash" not in queues  # raw events: not a Celery queue
    assert queues["logstash.consumer"].auto_delete  # the raw consumer's own worker queue
    assert queues["email"].queue_arguments == {"x-queue-type": "quorum"}
    assert queues["default"].queue_arguments == {"x-queue-type": "classic"}
    assert (queues["mail_data"].exchange.name, queues["mail_data"].routing_key) == (
        "mail_data",
        "mail_data",
    )


def test_a_route_declared_for_two_queues_is_refused():
    doubled = {"queues": [{"name": "a", "routes": ["t"]}, {"name": "b", "routes": ["t"]}]}
    with pytest.raises(ImproperlyConfigured, match="'t' is declared for queues 'a' and 'b'"):
        topology.celery_routes(doubled)


def test_the_default_queue_must_be_declared():
    with pytest.raises(ImproperlyConfigured, match="default queue 'default' is not declared"):
        topology.default_queue({"queues": [{"name": "other"}]})
