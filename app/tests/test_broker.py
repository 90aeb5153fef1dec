import ssl

import pytest
from celerystack_app.broker import broker_url, result_backend
from celerystack_app.config import Config
from django.core.exceptions import ImproperlyConfigured


def config(**settings):
    environ = {"CELERYSTACK_BROKER_USER": "celery", "CELERYSTACK_BROKER_PASSWORD": "p@ss:w/rd"}
    environ.update({f"CELERYSTACK_BROKER_{name}": value for name, value in settings.items()})
    return Config(environ)


def test_one_node_is_one_url_verified_against_its_own_name():
    url, use_ssl, options = broker_url(config(SCHEME="amqps", HOST="mq1", VHOST="/celery"))
    assert url == "amqps://celery:p%40ss%3Aw%2Frd@mq1:5671/%2Fcelery"
    assert use_ssl["server_hostname"] == "mq1" and use_ssl["cert_reqs"] == ssl.CERT_REQUIRED
    assert options == {"confirm_publish": True}


def test_a_cluster_is_one_url_per_node_for_kombu_to_fail_over_between():
    url, use_ssl, _options = broker_url(
        config(HOST="mq1, mq2,mq3", VHOST="/celery"), order=lambda hosts: hosts
    )
    assert url.split(";") == [
        f"amqp://celery:p%40ss%3Aw%2Frd@{node}:5672/%2Fcelery" for node in ("mq1", "mq2", "mq3")
    ]
    assert use_ssl is False


def test_each_process_starts_on_a_node_of_its_own():
    # kombu connects to the first node of the list: the list is in a random order per process.
    firsts = set()
    for _process in range(60):
        url, _use_ssl, _options = broker_url(config(HOST="mq1,mq2,mq3"))
        assert sorted(url.split(";")) == sorted(
            broker_url(config(HOST="mq1,mq2,mq3"))[0].split(";")
        )
        firsts.add(url.split("@")[1].split(":")[0])
    assert firsts == {"mq1", "mq2", "mq3"}


def test_a_cluster_over_tls_needs_one_name_every_node_certificate_holds():
    needs_name = "names 3 nodes over amqps: set CELERYSTACK_BROKER_TLS_SERVER_NAME"
    with pytest.raises(ImproperlyConfigured, match=needs_name):
        broker_url(config(SCHEME="amqps", HOST="mq1,mq2,mq3"))
    url, use_ssl, _options = broker_url(
        config(SCHEME="amqps", HOST="mq1,mq2", TLS_SERVER_NAME="mq")
    )
    assert url.count("amqps://") == 2 and use_ssl["server_hostname"] == "mq"


def test_redis_is_one_host():
    url, _use_ssl, options = broker_url(config(SCHEME="redis", HOST="cache"))
    assert url == "redis://celery:p%40ss%3Aw%2Frd@cache:6379/0"
    assert options["global_keyprefix"] == "celery:"
    with pytest.raises(ImproperlyConfigured, match="names 2 hosts: several are a RabbitMQ cluster"):
        broker_url(config(SCHEME="redis", HOST="cache1,cache2"))


def test_no_host_is_refused_by_name():
    with pytest.raises(ImproperlyConfigured, match="CELERYSTACK_BROKER_HOST is not set"):
        broker_url(config(HOST=" , "))


def test_a_redis_broker_takes_the_topologys_visibility_timeout():
    _url, _use_ssl, options = broker_url(
        config(SCHEME="redis", HOST="cache"), visibility_timeout=50
    )
    assert options["visibility_timeout"] == 50
    _url, _use_ssl, options = broker_url(config(SCHEME="redis", HOST="cache"))
    assert options["visibility_timeout"] == 3600  # a topology file without one: kombu's default


def test_the_result_backend_is_its_own_redis_user_over_tls():
    cfg = Config(
        {
            "CELERYSTACK_RESULT_BACKEND": "rediss",
            "CELERYSTACK_RESULT_HOST": "cache1",
            "CELERYSTACK_RESULT_PASSWORD": "r/s:lt",
            "CELERYSTACK_RESULT_TLS_CA": "/etc/celerystack/tls/result-ca.crt",
        }
    )
    url, use_ssl = result_backend(cfg)
    assert url == "rediss://results:r%2Fs%3Alt@cache1:6379/0"
    assert use_ssl == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/celerystack/tls/result-ca.crt",
    }
    with pytest.raises(ImproperlyConfigured, match="RESULT_BACKEND must be redis or rediss"):
        result_backend(Config({"CELERYSTACK_RESULT_BACKEND": "rpc"}))
