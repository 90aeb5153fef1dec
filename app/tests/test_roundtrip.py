import json

import pytest
from celerystack_app.mail.events import parse_event
from celerystack_app.mail.management.commands import roundtrip
from celerystack_app.mail.models import Heartbeat, MailData
from celerystack_app.mail.tasks import store_mail_data
from django.core.management import CommandError, call_command


def consumed(events, exchange, routing_key, rate=0):
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
def test_a_steady_stream_is_published_at_the_rate_asked_for(monkeypatch, capsys):
    rates = []
    monkeypatch.setattr(roundtrip, "publish", lambda *a: (rates.append(a[3]), consumed(*a)))
    call_command("roundtrip", events=3, timeout=5, rate=20)
    assert rates == [20] and json.loads(capsys.readouterr().out)["stored"] == 3
    with pytest.raises(CommandError, match="--rate must be 0"):
        call_command("roundtrip", events=3, rate=-1)


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


def flaky_count(monkeypatch, failures):
    """QuerySet.count failing `failures` times (None: always) the way a restarting MariaDB does."""
    from django.db import OperationalError
    from django.db.models.query import QuerySet

    real = QuerySet.count
    calls = {"n": 0}

    def count(self):
        calls["n"] += 1
        if failures is None or calls["n"] <= failures:
            raise OperationalError(2006, "MySQL server has gone away")
        return real(self)

    monkeypatch.setattr(QuerySet, "count", count)


@pytest.mark.django_db
def test_a_database_restart_while_waiting_is_reported_and_the_count_resumes(monkeypatch, capsys):
    monkeypatch.setattr(roundtrip, "publish", consumed)
    flaky_count(monkeypatch, failures=2)
    call_command("roundtrip", events=3, timeout=5)
    captured = capsys.readouterr()
    assert json.loads(captured.out)["stored"] == 3
    assert "lost the database connection ((2006, 'MySQL server has gone away'))" in captured.err
    assert "the database connection is back" in captured.err


@pytest.mark.django_db
def test_a_database_that_stays_away_ends_the_round_trip_with_an_error_line(monkeypatch):
    monkeypatch.setattr(roundtrip, "publish", consumed)
    flaky_count(monkeypatch, failures=None)
    with pytest.raises(CommandError, match="lost the database connection and it was not back"):
        call_command("roundtrip", events=2, timeout=1)
