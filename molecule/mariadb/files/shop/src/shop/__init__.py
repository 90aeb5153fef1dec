"""shop: a Django + Celery project deployed as another application of the platform."""

from .celery import app as celery_app

__all__ = ["celery_app"]
