import json

import pytest
from celerystack_app.mail.events import parse_event
from celerystack_app.mail.management.commands import roundtrip
from celerystack_app.mail.models import Heartbeat, MailData
from celerystack_app.mail.tasks import store_mail_data
from django.core.management import CommandError, call_command


def consumed(events, exchange, routing_key):
    """What the event consumer and the mail_data workers do with each published event."""
    assert (exchange, routing_key) == ("logstash", "logstash")
    for event in events:
        store_mail_data.apply(kwargs=parse_event(json.dumps(event))).get()


@pytest.mark.django_db
def test_a_batch_round_trip_reports_its_figures_and_removes_its_rows(monkeypatch, capsys):
    monkeypatch.setattr(roundtrip, "publish", consumed)
    MailData.objects.create(event_id="someone-elses")
    Heartbeat.objects.create(name="beat")
    call_command("roundtrip", events=5, timeout=5, heartbeat_within=60)
    result = json.loads(capsys.readouterr().out)
    assert (result["published"], result["stored"]) == (5, 5)
    assert result["heartbeat_age_seconds"] is not None
    assert list(MailData.objects.values_list("event_id", flat=True)) == ["someone-elses"]


@pytest.mark.django_db
def test_a_lost_event_fails_the_round_trip(monkeypatch):
    monkeypatch.setattr(roundtrip, "publish", lambda events, *_: consumed(events[1:], *_))
    with pytest.raises(CommandError, match="only 2 of 3 events"):
        call_command("roundtrip", events=3, timeout=1)


@pytest.mark.django_db
def test_a_missing_heartbeat_fails_the_round_trip(monkeypatch):
    monkeypatch.setattr(roundtrip, "publish", consumed)
    with pytest.raises(CommandError, match="no beat heartbeat within 30 s"):
        call_command("roundtrip", events=1, timeout=1, heartbeat_within=30)


def test_the_events_parse_as_the_consumer_parses_them():
    events = roundtrip.batch_events("abc", 2)
    assert [parse_event(json.dumps(e))["event_id"] for e in events] == [
        "roundtrip-abc-0",
        "roundtrip-abc-1",
    ]
