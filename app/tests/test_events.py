import json

import pytest
from celerystack_app.mail.events import MalformedEvent, handle_event, parse_event
from celerystack_app.mail.models import MailData


class FakeMessage:
    def __init__(self, body):
        self.body = body
        self.acked = False

    def ack(self):
        self.acked = True


EVENT = {
    "id": "evt-1",
    "@timestamp": "2026-11-22T10:00:00.000Z",
    "from": "a@example.org",
    "to": "b@example.org",
    "subject": "hello",
}


def test_a_logstash_event_becomes_the_task_arguments():
    arguments = parse_event(json.dumps(EVENT).encode())
    assert arguments["event_id"] == "evt-1"
    assert (arguments["sender"], arguments["recipient"]) == ("a@example.org", "b@example.org")
    assert arguments["payload"] == EVENT


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "body is not UTF-8"),
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "event is a JSON list, not an object"),
        (b'{"message": "no id"}', "event has no 'id'"),
        (b'{"id": ""}', "event has no 'id'"),
        (b'{"id": true}', "event has no 'id'"),
        (json.dumps({"id": "x" * 65}).encode(), "event id is longer than 64 characters"),
        (b'{"id": "1", "@timestamp": "yesterday"}', "'@timestamp' is not an ISO 8601 time"),
    ],
)
def test_malformed_events_are_refused_with_the_reason(body, reason):
    with pytest.raises(MalformedEvent, match=reason):
        parse_event(body)


def test_a_malformed_event_is_dead_lettered_with_its_reason_then_acked():
    message, dead = FakeMessage(b"{broken"), []
    outcome = handle_event(message, send=pytest.fail, dead_letter=lambda m, r: dead.append(r))
    assert outcome == "dead-lettered"
    assert message.acked and dead and dead[0].startswith("body is not JSON")


def test_the_event_is_acked_only_after_its_task_was_sent():
    message = FakeMessage(json.dumps(EVENT).encode())

    def broker_down(arguments):
        raise ConnectionError("broker unreachable")

    with pytest.raises(ConnectionError):
        handle_event(message, send=broker_down, dead_letter=pytest.fail)
    assert not message.acked  # stays on the queue, redelivered later


@pytest.mark.django_db
def test_the_same_event_twice_is_stored_once():
    from celerystack_app.mail.tasks import store_mail_data

    def send(arguments):
        store_mail_data.apply_async(kwargs=arguments)

    for attempt in (1, 2):
        message = FakeMessage(json.dumps(EVENT).encode())
        assert handle_event(message, send=send, dead_letter=pytest.fail) == "sent", attempt
        assert message.acked
    assert MailData.objects.filter(event_id="evt-1").count() == 1
    assert MailData.objects.get().subject == "hello"
