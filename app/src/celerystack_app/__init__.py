"""Reference Django + Celery application of the celerystack.platform collection."""

# PyMySQL stands in for mysqlclient: pure Python, so the wheelhouse needs no compiler or
# MariaDB headers on the controller and no libmariadb on the hosts.
import pymysql

pymysql.install_as_MySQLdb()

from .celery import app as celery_app  # noqa: E402  (after the driver shim)

__all__ = ["celery_app"]
