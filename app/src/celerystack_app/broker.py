"""The broker connection, from the CELERYSTACK_BROKER_* settings (settings.py)."""

from __future__ import annotations

import random
import ssl
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

from celerystack_app.config import Config

# With several nodes, a client that loses its node moves to another picked at random rather than
# all to the same one.
FAILOVER_STRATEGY = "shuffle"
# kombu's own, for a topology file written before the platform derived one.
DEFAULT_VISIBILITY_TIMEOUT = 3600


def _any_order(hosts: list[str]) -> list[str]:
    """The nodes in an order of this process's own: kombu connects first to the first node of
    the list (the failover strategy only orders the later tries), so without it every worker,
    beat and web process of the platform would be on the first broker."""
    return random.sample(hosts, len(hosts))


def broker_url(
    cfg: Config, order=_any_order, visibility_timeout: int | None = None
) -> tuple[str, object, dict]:
    """The broker URL, its TLS options and transport options, from the CELERYSTACK_BROKER_*.

    A redis broker's visibility timeout is the topology's (topology.json): every process of the
    application must have the same, since kombu gives a message to another worker once it has
    been unacknowledged for the shortest one any client was given.

    CELERYSTACK_BROKER_HOST may name several RabbitMQ nodes (a cluster), comma-separated: the URL
    then lists every node, and a client moves to the next when its node goes. kombu verifies
    every node of such a list against one TLS name (it writes the first node's name into the
    shared TLS options), so amqps with several nodes needs CELERYSTACK_BROKER_TLS_SERVER_NAME, a
    name every node's certificate holds."""
    scheme = cfg.get("BROKER_SCHEME", "amqp")
    if scheme not in ("amqp", "amqps", "redis", "rediss"):
        raise ImproperlyConfigured(
            f"CELERYSTACK_BROKER_SCHEME must be amqp, amqps, redis or rediss, not {scheme!r}"
        )
    hosts, user = cfg.list("BROKER_HOST"), cfg.get("BROKER_USER")
    if not hosts:
        raise ImproperlyConfigured(
            "CELERYSTACK_BROKER_HOST is not set: the environment must name it"
        )
    password = cfg.secret("BROKER_PASSWORD")
    ca = cfg.get("BROKER_TLS_CA", "")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if scheme.startswith("amqp"):
        port = cfg.integer("BROKER_PORT", "5671" if scheme == "amqps" else "5672")
        vhost = quote(cfg.get("BROKER_VHOST", "/"), safe="")
        url = ";".join(f"{scheme}://{credentials}@{h}:{port}/{vhost}" for h in order(hosts))
        server_name = cfg.get("BROKER_TLS_SERVER_NAME", hosts[0] if len(hosts) == 1 else "")
        if scheme == "amqps" and not server_name:
            raise ImproperlyConfigured(
                f"CELERYSTACK_BROKER_HOST names {len(hosts)} nodes over amqps: set "
                "CELERYSTACK_BROKER_TLS_SERVER_NAME to a name every node's certificate holds"
            )
        use_ssl = (
            {"ca_certs": ca or None, "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": server_name}
            if scheme == "amqps"
            else False
        )
        # Publisher confirms: apply_async returns once the broker has the message.
        return url, use_ssl, {"confirm_publish": True}
    if len(hosts) > 1:
        raise ImproperlyConfigured(
            f"CELERYSTACK_BROKER_HOST names {len(hosts)} hosts: several are a RabbitMQ cluster's "
            f"nodes; a {scheme} broker is one host"
        )
    port = cfg.integer("BROKER_PORT", "6379")
    url = f"{scheme}://{credentials}@{hosts[0]}:{port}/{cfg.integer('BROKER_DB', '0')}"
    use_ssl = (
        {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": ca or None}
        if scheme == "rediss"
        else False
    )
    # Every kombu key under the prefix the Redis ACL grants the broker user.
    options = {
        "global_keyprefix": cfg.get("BROKER_KEY_PREFIX", "celery:"),
        "visibility_timeout": visibility_timeout or DEFAULT_VISIBILITY_TIMEOUT,
    }
    return url, use_ssl, options


def result_backend(cfg: Config) -> tuple[str, dict | None]:
    """The Redis result backend's URL and TLS options, from the CELERYSTACK_RESULT_* settings
    (CELERYSTACK_RESULT_BACKEND redis or rediss); every key under RESULT_KEY_PREFIX, the only
    keys (and channels) its ACL user has."""
    scheme = cfg.get("RESULT_BACKEND")
    if scheme not in ("redis", "rediss"):
        raise ImproperlyConfigured(
            f"CELERYSTACK_RESULT_BACKEND must be redis or rediss (or empty), not {scheme!r}"
        )
    user, password = cfg.get("RESULT_USER", "results"), cfg.secret("RESULT_PASSWORD")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    host, port = cfg.get("RESULT_HOST"), cfg.integer("RESULT_PORT", "6379")
    url = f"{scheme}://{credentials}@{host}:{port}/{cfg.integer('RESULT_DB', '0')}"
    ca = cfg.get("RESULT_TLS_CA", "")
    use_ssl = (
        {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": ca or None}
        if scheme == "rediss"
        else None
    )
    return url, use_ssl
