from django.db import models


class Order(models.Model):
    """One per `record` task: which worker stored it, and a digest of the API token it saw."""

    number = models.CharField(max_length=64, unique=True)
    worker = models.CharField(max_length=255)
    token_digest = models.CharField(max_length=64)
    at = models.DateTimeField(auto_now_add=True)


class Tick(models.Model):
    """One per run of the scheduled `tick` task."""

    at = models.DateTimeField(auto_now_add=True)
