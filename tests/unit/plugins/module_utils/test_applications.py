"""The platform's applications: names, checks with field paths, role variables and store entries."""

import copy
from pathlib import Path

import pytest
import yaml
from ansible_collections.celerystack.platform.plugins.module_utils import applications as core
from ansible_collections.celerystack.platform.plugins.module_utils import topology

ROOT = Path(__file__).resolve().parents[4]
SECRETS = {
    "db_password": "d",
    "db_migration_password": "m",
    "broker_password": "b",
    "lock_password": "l",
    "secret_key": "k" * 50,
}
SHOP = {
    "name": "shop",
    "topology": {"broker": "redis", "queues": [{"name": "default"}]},
    "flower_port": 5556,
    **SECRETS,
}
FIRST = {
    "broker": "redis",
    "database": "celerystack",
    "db_user": "celerystack",
    "flower_port": 5555,
}


def test_the_first_application_keeps_the_names_of_a_one_application_platform():
    names = core.names("")
    assert names["service_prefix"] == "celery"
    assert (names["user"], names["config_dir"], names["home"]) == (
        "celerystack",
        "/etc/celerystack",
        "/opt/celerystack",
    )
    assert names["redis_prefix"] == ""
    catalogue = topology.services(
        {"vhost": "/celery", "queues": [{"name": "default"}]}, beat=True, flower=True
    )
    assert [s["unit"] for s in catalogue] == [
        "celery-worker-default",
        "celery-beat",
        "celery-flower",
    ]
    assert catalogue[0]["logfile"] == "/var/log/celery/celery-worker-default.log"


def test_another_application_is_namespaced_by_its_name():
    names = core.names("shop")
    assert names["service_prefix"] == "celery-shop"
    assert (names["user"], names["config_dir"], names["database"]) == (
        "celerystack-shop",
        "/etc/celerystack-shop",
        "celerystack_shop",
    )
    catalogue = topology.services(
        {"vhost": "/shop", "queues": [{"name": "default"}]},
        beat=True,
        flower=True,
        prefix=names["service_prefix"],
    )
    assert [s["unit"] for s in catalogue] == [
        "celery-shop-worker-default",
        "celery-shop-beat",
        "celery-shop-flower",
    ]
    assert catalogue[0]["logfile"] == "/var/log/celery-shop/celery-shop-worker-default.log"
    # Its event lists are in its Redis namespace.
    raw = {"broker": "redis", "queues": [{"name": "default"}, {"name": "logstash", "raw": True}]}
    assert topology.application(raw, key_prefix="shop:")["raw_queues"][0]["list"] == (
        "shop:events:logstash"
    )
    assert topology.application(raw)["raw_queues"][0]["list"] == "events:logstash"


def test_valid_applications_have_no_errors():
    assert core.errors([SHOP], FIRST) == []
    assert core.errors(None, FIRST) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Shop"}, "celerystack_applications[0].name: must be 2 to 16 lower-case"),
        ({"name": "beat"}, "celerystack_applications[0].name: 'beat' is reserved"),
        ({"name": "a-b"}, "celerystack_applications[0].name: must be"),
        ({"flower_port": 5555}, "(shop).flower_port: '5555' is also the first application's"),
        ({"flower_port": 80}, "(shop).flower_port: must be a port from 1024 to 65535"),
        (
            {"db_name": "celerystack"},
            "(shop).db_name: 'celerystack' is also the first application's",
        ),
        (
            {"db_user": "celerystack"},
            "(shop).db_user: 'celerystack' is also the first application's",
        ),
        ({"secret_key": ""}, "(shop).secret_key: is required"),
        ({"colour": "red"}, "(shop): unknown keys ['colour']"),
        ({"extra_secrets": {"api token": "x"}}, "(shop).extra_secrets: must map NAMES"),
        (
            {"topology": {"broker": "rabbitmq", "queues": [{"name": "default"}]}},
            "(shop).topology.broker: is rabbitmq, but the platform's broker is redis",
        ),
        (
            {"topology": {"broker": "redis", "queues": [{"name": "default", "durable": True}]}},
            "celerystack_applications[0] (shop).topology.queues[0].durable",
        ),
        (
            {"worker_defaults": {**topology.WORKER_DEFAULTS, "time_limit": "x"}},
            "(shop).worker_defaults",
        ),
    ],
)
def test_a_bad_entry_is_named_by_its_path(change, message):
    entry = {**SHOP, **change}
    found = core.errors([entry], FIRST)
    assert any(message in error for error in found), found


def test_two_applications_may_not_share_a_name_port_or_database():
    other = {**SHOP, "flower_port": 5557}
    found = core.errors([SHOP, other], FIRST)
    assert any("[1] (shop).name: 'shop' is also shop's" in e for e in found), found
    assert any("[1] (shop).db_name: 'celerystack_shop' is also shop's" in e for e in found), found


def test_on_rabbitmq_each_application_needs_its_own_vhost():
    first = {**FIRST, "broker": "rabbitmq", "vhost": "/celery"}
    entry = {**SHOP, "topology": {"vhost": "/celery", "queues": [{"name": "default"}]}}
    found = core.errors([entry], first)
    assert any("(shop).broker_vhost (or .topology.vhost): '/celery' is also" in e for e in found)
    entry["topology"]["vhost"] = "/shop"
    assert core.errors([entry], first) == []


def test_not_a_list_is_refused():
    assert core.errors({"name": "shop"}, FIRST) == [
        "celerystack_applications: must be a list of applications, got 'dict'"
    ]


def test_role_vars_give_every_application_variable_its_own_value():
    variables = core.role_vars(SHOP)
    assert variables["celery_app_name"] == "shop"
    assert variables["celery_app_user"] == "celerystack-shop"
    assert variables["celery_app_db_name"] == "celerystack_shop"
    assert variables["celery_app_broker_user"] == "celery-shop"
    assert variables["celery_app_source"] == ""
    assert variables["celerystack_topology"] is SHOP["topology"]
    assert variables["celery_worker_defaults"] == topology.WORKER_DEFAULTS
    assert variables["flower_port"] == 5556
    assert variables["celery_app_secret_key"] == "k" * 50
    given = core.role_vars({**SHOP, "db_name": "shopdb", "worker_defaults": {"concurrency": 4}})
    assert given["celery_app_db_name"] == "shopdb"
    assert given["celery_worker_defaults"] == {"concurrency": 4}


def test_the_playbooks_pass_every_role_variable_an_entry_derives():
    # playbooks/tasks/application.yml is the one place the site's plays turn an entry into role
    # variables: it must pass each one role_vars gives, and nothing else.
    task = yaml.safe_load((ROOT / "playbooks" / "tasks" / "application.yml").read_text())[0]
    passed = {k for k in task["vars"] if not k.startswith("_")}
    assert passed == set(core.role_vars(SHOP))


def test_every_role_variable_an_entry_sets_is_a_role_option():
    options = set()
    for spec in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            options.update((entry.get("options") or {}).keys())
    assert set(core.role_vars(SHOP)) <= options


def test_the_stores_get_each_application_in_its_own_namespace():
    entry = {**SHOP, "result_backend": "redis", "result_password": "r"}
    databases = core.databases([entry])
    assert databases == [
        {
            "name": "celerystack_shop",
            "accounts": [
                {
                    "user": "celerystack_shop_migrate",
                    "password": "m",
                    "previous": [],
                    "kind": "migration",
                },
                {"user": "celerystack_shop", "password": "d", "previous": [], "kind": "runtime"},
            ],
        }
    ]
    users = {u["name"]: u for u in core.redis_users([entry], broker="redis")}
    assert users["celery-shop"]["key_patterns"] == ["shop:celery:*", "shop:events:*"]
    assert users["celery-shop"]["channel_patterns"] == ["*"]
    assert users["locks-shop"]["key_patterns"] == ["shop:lock:*"]
    assert users["results-shop"]["key_patterns"] == ["shop:results:*"]
    # On a RabbitMQ platform the broker user is RabbitMQ's, not Redis's.
    assert "celery-shop" not in {u["name"] for u in core.redis_users([SHOP])}
    rabbit = {**SHOP, "topology": {"vhost": "/shop", "queues": [{"name": "default"}]}}
    declared = core.rabbitmq([rabbit, SHOP])
    assert [t["vhost"] for t in declared["topologies"]] == ["/shop"]
    assert declared["users"][0]["name"] == "celery-shop"
    assert declared["users"][0]["permissions"] == [
        {"vhost": "/shop", "configure": ".*", "write": ".*", "read": ".*"}
    ]


def test_monit_watches_each_application_by_its_prefix_and_virtualenv():
    watched = core.monitored([copy.deepcopy(SHOP)])
    assert watched[0]["service_prefix"] == "celery-shop"
    assert watched[0]["venv"] == "/opt/celerystack-shop/venv"
