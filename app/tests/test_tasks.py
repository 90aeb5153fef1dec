import pytest
from celerystack_app.mail import locks
from celerystack_app.mail.models import Heartbeat, MailData
from celerystack_app.mail.tasks import (
    heartbeat,
    mail_data_stats,
    purge_old_mail_data,
    send_notification,
)
from django.core import mail


def test_a_notification_is_sent_through_djangos_email_backend():
    send_notification.apply(args=("ops@example.org", "Backlog", "mail_data is behind")).get()
    assert len(mail.outbox) == 1
    assert (mail.outbox[0].to, mail.outbox[0].subject) == (["ops@example.org"], "Backlog")


@pytest.mark.django_db
def test_heartbeat_records_a_row():
    heartbeat.apply(kwargs={"name": "beat"}).get()
    assert Heartbeat.objects.filter(name="beat").count() == 1


@pytest.mark.django_db
def test_the_purge_runs_once_at_a_time(monkeypatch):
    MailData.objects.create(event_id="old")
    monkeypatch.setattr(locks, "acquire", lambda client, key, timeout, task_id=None: None)
    monkeypatch.setattr(locks, "lock_client", lambda: None)
    # Someone else holds the lock: skipped, nothing deleted.
    assert purge_old_mail_data.apply(kwargs={"days": 0}).get() is None
    assert MailData.objects.count() == 1


@pytest.mark.django_db
def test_an_event_stored_twice_is_one_row():
    from celerystack_app.mail.tasks import store_mail_data

    event = {"event_id": "evt-1", "sender": "a@example.org", "subject": "hello"}
    assert store_mail_data.apply(kwargs=event).get() is True
    # Redelivered (acks_late after a lost worker) or republished by Logstash: no second row.
    assert store_mail_data.apply(kwargs=dict(event, subject="again")).get() is False
    assert list(MailData.objects.values_list("event_id", "subject")) == [("evt-1", "hello")]


@pytest.mark.django_db
def test_a_monitor_gets_the_count_of_stored_events_as_a_result():
    MailData.objects.create(event_id="evt-stats-1")
    assert mail_data_stats.delay().get(timeout=5) == {"stored": 1}
