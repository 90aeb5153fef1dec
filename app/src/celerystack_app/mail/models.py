from django.db import models


class MailData(models.Model):
    """One mail event as Logstash saw it; the event id makes storing it idempotent."""

    event_id = models.CharField(max_length=64, unique=True)
    sender = models.CharField(max_length=254, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    logged_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    stored_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.event_id


class Heartbeat(models.Model):
    """A row per run of a periodic heartbeat task: proof that beat and a worker are alive."""

    name = models.CharField(max_length=100)
    at = models.DateTimeField(auto_now_add=True)


class Completion(models.Model):
    """Idempotent record of a long task's completion, keyed by the caller's key."""

    key = models.CharField(max_length=100, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
