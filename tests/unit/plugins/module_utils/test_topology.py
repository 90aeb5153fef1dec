"""The one derivation of the topology: checks with field paths, and each consumer's projection."""

import copy
from pathlib import Path

import pytest
import yaml
from ansible_collections.celerystack.platform.plugins.filter.celery_services import (
    celery_services,
)
from ansible_collections.celerystack.platform.plugins.module_utils import topology as core

ROLES = Path(__file__).resolve().parents[4] / "roles"
DEFAULTS = dict(core.WORKER_DEFAULTS)  # the celery_worker role's (a test below keeps them so)
TOPOLOGY = {
    "vhost": "/celery",
    "queues": [
        {"name": "default"},
        {
            "name": "logstash",
            "raw": True,
            "arguments": {"x-dead-letter-exchange": "logstash.dlx"},
            "worker": {"concurrency": 1},
        },
        {"name": "logstash.dead", "raw": True},
        {"name": "mail_data", "worker": {"autoscale": "8,2", "prefetch_multiplier": 4}},
        {"name": "reports", "worker": {"enabled": False}},
    ],
    "exchanges": [{"name": "logstash"}, {"name": "logstash.dlx", "type": "fanout"}],
    "bindings": [
        {"source": "logstash", "destination": "logstash", "routing_key": "logstash"},
        {"source": "logstash.dlx", "destination": "logstash.dead"},
    ],
}


def by_queue(services):
    return {s["queue"]: s for s in services}


def with_queue(index, **fields):
    topology = copy.deepcopy(TOPOLOGY)
    topology["queues"][index].update(fields)
    return topology


# --- the checks -------------------------------------------------------------------------------


def test_the_shipped_topologies_are_valid():
    for path in (
        "inventories/sandbox/group_vars/all/topology.yml",
        "inventories/prod/group_vars/all/topology.yml",
    ):
        with open(path) as stream:
            topology = yaml.safe_load(stream)["celerystack_topology"]
        assert core.errors(topology, DEFAULTS) == [], path


def test_a_topology_of_queue_names_only_is_complete():
    topology = {"vhost": "/", "queues": [{"name": "default"}, {"name": "reports"}]}
    assert core.errors(topology, DEFAULTS) == []
    broker = core.broker(topology)
    assert [(e["name"], e["type"]) for e in broker["exchanges"]] == [
        ("default", "direct"),
        ("reports", "direct"),
    ]
    assert [(b["source"], b["destination"], b["routing_key"]) for b in broker["bindings"]] == [
        ("default", "default", "default"),
        ("reports", "reports", "reports"),
    ]
    assert [s["unit"] for s in core.worker_services(topology, DEFAULTS)] == [
        "celery-worker-default",
        "celery-worker-reports",
    ]


BAD = [
    (
        with_queue(0, worker={"concurrency": -2}),
        ".queues[0].worker.concurrency: must be an integer from 1 to 1000, got -2",
    ),
    (
        with_queue(0, worker={"concurrency": "many"}),
        ".queues[0].worker.concurrency: must be an integer from 1 to 1000, got 'many'",
    ),
    (
        with_queue(3, worker={"autoscale": "1,4"}),
        ".queues[3].worker.autoscale: 'max,min' needs 1 <= min <= max <= 1000, got '1,4'",
    ),
    (with_queue(3, worker={"autoscale": "lots"}), "queues[3].worker.autoscale: must be 'max,min'"),
    (
        with_queue(0, worker={"soft_time_limit": 400}),
        ".queues[0].worker.soft_time_limit: soft_time_limit (400) must be below time_limit (360)",
    ),
    (with_queue(0, worker={"concurency": 4}), "queues[0].worker: unknown keys ['concurency']"),
    (with_queue(0, worker={"loglevel": "LOUD"}), "queues[0].worker.loglevel: must be one of"),
    (
        with_queue(0, worker={"prefetch_multiplier": 0}),
        ".queues[0].worker.prefetch_multiplier: must be an integer from 1",
    ),
    (
        with_queue(0, worker={"optimization": "fast"}),
        ".queues[0].worker.optimization: must be one of",
    ),
    (
        with_queue(3, name="default"),
        ".queues[3].name: queue declared twice (also queues[0]), got 'default'",
    ),
    (with_queue(3, name="mail data"), "queues[3].name: a queue name must be 1 to 200 letters"),
    (with_queue(3, name="amq.mine"), "queues[3].name: names starting with 'amq.' are reserved"),
    (
        with_queue(3, name="logstash-dead"),
        ".queues[3].name: gives the same service name celery-worker-logstash-dead as queue",
    ),
    (
        with_queue(1, routes=["x.y"]),
        ".queues[1].routes: a raw queue carries events, not Celery tasks",
    ),
    (with_queue(3, type="stream"), "queues[3].type: must be one of 'classic', 'quorum'"),
    (
        with_queue(3, type="quorum", arguments={"x-queue-type": "classic"}),
        ".queues[3].type: contradicts arguments.x-queue-type",
    ),
    (
        with_queue(3, prefetch=5),
        ".queues[3].prefetch: only raw queues have an event-consumer prefetch",
    ),
    (with_queue(1, prefetch=0), "queues[1].prefetch: must be an integer from 1 to 65535, got 0"),
    (with_queue(3, colour="red"), "queues[3]: unknown keys ['colour']"),
    (with_queue(0, raw=True), ".default_queue: must name a Celery (not raw) queue"),
    ({**TOPOLOGY, "vhost": ""}, ".vhost: must be a non-empty vhost name"),
    ({**TOPOLOGY, "queues": []}, ".queues: must declare at least one queue"),
    (
        {**TOPOLOGY, "bindings": [{"source": "nowhere", "destination": "default"}]},
        ".bindings[0].source: must name an exchange of the topology, got 'nowhere'",
    ),
    (
        {**TOPOLOGY, "bindings": [{"source": "logstash", "destination": "nothing"}]},
        ".bindings[0].destination: must name a queue of the topology, got 'nothing'",
    ),
    (
        {**TOPOLOGY, "exchanges": [{"name": "logstash", "type": "sideways"}]},
        ".exchanges[0].type: must be one of",
    ),
    (
        {**TOPOLOGY, "exchanges": [{"name": "mail_data", "type": "fanout"}]},
        ".exchanges[0].type: exchange 'mail_data' carries Celery queue 'mail_data'",
    ),
    (
        {**TOPOLOGY, "policies": [{"name": "p", "pattern": "(", "definition": {"expires": 1}}]},
        ".policies[0].pattern: must be a regular expression",
    ),
    ({**TOPOLOGY, "flavour": 1}, ": unknown keys ['flavour']"),
    ({**TOPOLOGY, "queue_type": "stream"}, ".queue_type: must be one of 'classic', 'quorum'"),
    (
        # RabbitMQ 3.10 does not know it, and would not start with it in its boot definitions.
        {
            **TOPOLOGY,
            "policies": [
                {
                    "name": "p",
                    "pattern": "^x",
                    "apply_to": "quorum_queues",
                    "definition": {"expires": 1},
                }
            ],
        },
        ".policies[0].apply_to: must be one of 'all', 'queues', 'exchanges', got 'quorum_queues'",
    ),
    ({**TOPOLOGY, "delivery_limit": 0}, ".delivery_limit: must be an integer from 1"),
    (with_queue(3, type="quorum", durable=False), ".queues[3].durable: a quorum queue is always"),
    (
        {**TOPOLOGY, "queue_type": "quorum", "queues": [{"name": "default", "auto_delete": True}]},
        ".queues[0].auto_delete: a quorum queue cannot be auto-deleted",
    ),
    (
        {**with_queue(3, type="quorum"), "exchanges": [{"name": "mail_data", "type": "direct"}]},
        ".exchanges[0].type: exchange 'mail_data' carries Celery queue 'mail_data' of a topology "
        "with quorum Celery queues, and must be topic",
    ),
    (
        {
            **with_queue(3, type="quorum"),
            "policies": [{"name": "p", "pattern": "^mail", "definition": {"max-length": 9}}],
        },
        ".policies[0].pattern: matches quorum Celery queue 'mail_data'",
    ),
    (with_queue(3, name="celery_delayed_3"), ".queues[3].name: is a name the platform or Celery"),
    (
        {**TOPOLOGY, "exchanges": [{"name": "celerystack.dlx", "type": "fanout"}]},
        ".exchanges[0].name: is a name the platform or Celery itself declares",
    ),
]


@pytest.mark.parametrize(("topology", "message"), BAD)
def test_each_bad_field_is_named_by_its_path(topology, message):
    found = core.errors(topology, DEFAULTS)
    path = message if message.startswith((".", ":")) else "." + message
    assert any(m.startswith("celerystack_topology" + path) for m in found), found


def test_a_route_declared_for_two_queues_is_refused():
    topology = with_queue(3, routes=["t"])
    topology["queues"][0]["routes"] = ["t"]
    assert core.errors(topology) == [
        "celerystack_topology.queues[3].routes[0]: task route also declared for queue 'default', "
        "got 't'"
    ]


def test_limits_a_queue_sets_itself_are_compared_without_the_defaults():
    # The platform-wide check (preflight's first task) has no worker defaults.
    topology = with_queue(0, worker={"soft_time_limit": 900, "time_limit": 600})
    assert core.errors(topology) == [
        "celerystack_topology.queues[0].worker.soft_time_limit: soft_time_limit (900) must be "
        "below time_limit (600)"
    ]


def test_bad_defaults_are_named_once_under_their_own_variable():
    found = core.errors(TOPOLOGY, {**DEFAULTS, "concurrency": 0})
    assert found == ["celery_worker_defaults.concurrency: must be an integer from 1 to 1000, got 0"]


def test_every_problem_is_reported_at_once():
    topology = with_queue(0, worker={"concurrency": -2})
    topology["queues"][3]["worker"] = {"autoscale": "1,4"}
    assert len(core.errors(topology, DEFAULTS)) == 2
    with pytest.raises(core.TopologyInvalid) as err:
        core.worker_services(topology, DEFAULTS)
    assert len(err.value.errors) == 2


# --- the projections --------------------------------------------------------------------------


def test_the_broker_gets_derived_objects_once_and_no_worker_settings():
    broker = core.broker(TOPOLOGY)
    assert "worker" not in repr(broker)
    assert [e["name"] for e in broker["exchanges"]] == [
        "logstash",
        "logstash.dlx",
        "default",
        "mail_data",
        "reports",
    ]
    old_style = copy.deepcopy(TOPOLOGY)
    old_style["exchanges"].append({"name": "mail_data"})
    old_style["bindings"].append(
        {"source": "mail_data", "destination": "mail_data", "routing_key": "mail_data"}
    )

    def key(binding):
        return repr(sorted(binding.items()))

    assert sorted(map(key, core.broker(old_style)["bindings"])) == sorted(
        map(key, broker["bindings"])
    )
    queues = {q["name"]: q for q in broker["queues"]}
    assert queues["logstash"]["arguments"] == {
        "x-dead-letter-exchange": "logstash.dlx",
        "x-queue-type": "classic",
    }


def test_the_application_gets_queues_routes_and_raw_consumers_but_no_worker_settings():
    app = core.application(with_queue(3, routes=["celerystack_app.mail.*"], type="quorum"))
    assert "worker" not in repr(app) and "concurrency" not in repr(app)
    queues = {q["name"]: q for q in app["queues"]}
    assert sorted(queues) == ["default", "mail_data", "reports"]
    assert queues["mail_data"]["arguments"] == {"x-queue-type": "quorum"}
    assert app["raw_queues"] == [
        {
            "name": "logstash",
            "consumer_queue": "logstash.consumer",
            "consumer_exchange_type": "topic",
            "dead_letter_exchange": "logstash.dlx",
            "prefetch": 10,
        },
        {
            "name": "logstash.dead",
            "consumer_queue": None,
            "consumer_exchange_type": "topic",
            "dead_letter_exchange": None,
            "prefetch": 10,
        },
    ]
    assert app["routes"] == [{"pattern": "celerystack_app.mail.*", "queue": "mail_data"}]


def test_quorum_celery_queues_get_topic_exchanges_a_delivery_limit_and_a_dead_letter_queue():
    # The platform default makes every Celery queue quorum; raw queues keep their own type.
    topology = {**TOPOLOGY, "queue_type": "quorum", "delivery_limit": 5}
    topology["queues"] = TOPOLOGY["queues"] + [{"name": "slow", "type": "classic"}]
    assert core.errors(topology, DEFAULTS) == []
    broker = core.broker(topology)
    queues = {q["name"]: q["arguments"]["x-queue-type"] for q in broker["queues"]}
    assert queues == {
        "default": "quorum",
        "logstash": "classic",
        "logstash.dead": "classic",
        "mail_data": "quorum",
        "reports": "quorum",
        "slow": "classic",
        "celerystack.dead": "quorum",
    }
    # Celery's native delayed delivery needs a topic exchange; the one each queue's delayed
    # tasks arrive by is the topology's own binding.
    exchanges = {e["name"]: e["type"] for e in broker["exchanges"]}
    assert exchanges["mail_data"] == exchanges["slow"] == "topic"
    assert exchanges["logstash"] == "direct" and exchanges["celerystack.dlx"] == "fanout"
    keys = {(b["source"], b["routing_key"]) for b in broker["bindings"]}
    assert {("mail_data", "mail_data"), ("mail_data", "#.mail_data"), ("slow", "#.slow")} <= keys
    (policy,) = [p for p in broker["policies"] if p["name"] == core.QUORUM_POLICY]
    assert policy["apply_to"] == "queues"
    assert policy["definition"]["delivery-limit"] == 5
    assert policy["definition"]["dead-letter-exchange"] == "celerystack.dlx"
    # Exactly the quorum Celery queues: not the classic one, nor a longer name.
    import re

    matched = [n for n in [*queues, "mail_data2"] if re.search(policy["pattern"], n)]
    assert matched == ["default", "mail_data", "reports"]
    app = core.application(topology)
    assert {q["name"]: q["exchange_type"] for q in app["queues"]} == {
        "default": "topic",
        "mail_data": "topic",
        "reports": "topic",
        "slow": "topic",
    }
    assert app["raw_queues"][0]["consumer_exchange_type"] == "topic"


def test_a_classic_topology_keeps_direct_exchanges_and_no_platform_policy():
    broker = core.broker(TOPOLOGY)
    assert {e["type"] for e in broker["exchanges"] if e["name"] in ("default", "reports")} == {
        "direct"
    }
    assert broker["policies"] == [] and not any(
        b["routing_key"].startswith("#") for b in broker["bindings"]
    )
    one = core.broker(with_queue(3, type="quorum"))
    (policy,) = one["policies"]
    assert policy["definition"]["delivery-limit"] == core.DEFAULT_DELIVERY_LIMIT == 20


def test_tuning_a_worker_leaves_the_application_projection_alone():
    tuned = with_queue(3, worker={"autoscale": "16,4", "max_tasks_per_child": 7})
    assert core.application(tuned) == core.application(TOPOLOGY)
    assert core.broker(tuned) == core.broker(TOPOLOGY)


def test_one_service_per_queue_that_needs_one():
    services = by_queue(core.worker_services(TOPOLOGY, DEFAULTS))
    assert sorted(services) == ["default", "logstash", "mail_data"]
    assert services["logstash"]["unit"] == "celery-worker-logstash"
    assert services["logstash"]["pidfile"] == "/run/celery-worker-logstash/worker.pid"
    assert services["logstash"]["logfile"] == "/var/log/celery/celery-worker-logstash.log"
    assert services["default"]["stop_timeout"] == 420


def test_options_come_from_the_queue_over_the_defaults():
    services = by_queue(core.worker_services(TOPOLOGY, DEFAULTS))
    assert services["default"]["options"] == [
        "--concurrency=2",
        "-Ofair",
        "--max-tasks-per-child=100",
        "--prefetch-multiplier=1",
        "--soft-time-limit=300",
        "--time-limit=360",
        "--loglevel=INFO",
        "--without-mingle",
    ]
    assert services["mail_data"]["options"][0] == "--autoscale=8,2"
    assert "--prefetch-multiplier=4" in services["mail_data"]["options"]


def test_a_raw_queue_worker_drains_it_and_consumes_a_private_celery_queue():
    logstash = by_queue(core.worker_services(TOPOLOGY, DEFAULTS))["logstash"]
    assert (logstash["raw_queue"], logstash["celery_queue"]) == ("logstash", "logstash.consumer")


def test_only_limits_the_services_of_a_host():
    assert [s["queue"] for s in core.worker_services(TOPOLOGY, DEFAULTS, ["default"])] == [
        "default"
    ]


def test_the_catalogue_names_the_same_units_with_or_without_settings():
    named = core.services(TOPOLOGY, beat=True, flower=True)
    assert [(s["kind"], s["unit"]) for s in named] == [
        ("worker", "celery-worker-default"),
        ("worker", "celery-worker-logstash"),
        ("worker", "celery-worker-mail_data"),
        ("beat", "celery-beat"),
        ("flower", "celery-flower"),
    ]
    assert named[3]["pidfile"] == "/run/celery-beat/beat.pid"
    assert [s["unit"] for s in core.services(TOPOLOGY, DEFAULTS)] == [
        s["unit"] for s in named if s["kind"] == "worker"
    ]
    assert "options" not in named[0]


def test_the_filter_names_the_path_of_a_bad_value():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match=r"queues\[0\]\.worker\.concurrency"):
        celery_services(with_queue(0, worker={"concurrency": -2}), DEFAULTS)


# --- Celery on Redis --------------------------------------------------------------------------

REDIS = {
    "broker": "redis",
    "max_countdown": 30,
    "queues": [
        {"name": "default"},
        {"name": "mail_data", "worker": {"time_limit": 20, "soft_time_limit": 15}},
        {"name": "logstash", "raw": True, "dead_letter": "logstash.dead", "worker": {}},
        {"name": "logstash.dead", "raw": True},
    ],
}


def test_a_redis_topology_is_valid_and_needs_no_vhost():
    assert core.errors(REDIS, DEFAULTS) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vhost": "/celery"}, "celerystack_topology.vhost: is RabbitMQ's"),
        ({"queue_type": "quorum"}, "celerystack_topology.queue_type: is RabbitMQ's"),
        ({"exchanges": [{"name": "x"}]}, "celerystack_topology.exchanges: is RabbitMQ's"),
        ({"policies": [{"name": "p"}]}, "celerystack_topology.policies: is RabbitMQ's"),
        ({"broker": "kafka"}, ".broker: must be one of 'rabbitmq', 'redis'"),
        ({"max_countdown": -1}, ".max_countdown: "),
        ({"visibility_timeout": 10}, ".visibility_timeout: must be at least 720 s"),
    ],
)
def test_a_redis_topology_refuses_what_only_rabbitmq_has(change, message):
    found = core.errors({**REDIS, **change}, DEFAULTS)
    assert any(message in error for error in found), found


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ({"name": "q", "type": "quorum"}, "queues[4].type: is RabbitMQ's"),
        ({"name": "q", "arguments": {"x-max-priority": 9}}, "queues[4].arguments: is RabbitMQ's"),
        ({"name": "q", "exchange": "other"}, "queues[4].exchange: is RabbitMQ's"),
        ({"name": "raw2", "raw": True, "prefetch": 5}, "queues[4].prefetch: is RabbitMQ's"),
        ({"name": "raw2", "raw": True, "dead_letter": "nowhere"}, "queues[4].dead_letter: must"),
        ({"name": "raw2", "raw": True, "dead_letter": "raw2"}, "queues[4].dead_letter: must"),
        ({"name": "q", "dead_letter": "logstash.dead"}, "queues[4].dead_letter: is for a raw"),
    ],
)
def test_a_redis_queue_refuses_rabbitmq_fields(queue, message):
    topology = copy.deepcopy(REDIS)
    topology["queues"].append(queue)
    found = core.errors(topology, DEFAULTS)
    assert any(message in error for error in found), found


def test_an_explicit_visibility_timeout_is_judged_with_the_worker_settings_only():
    topology = {**REDIS, "visibility_timeout": 60}
    assert core.errors(topology) == []  # the platform-wide check: no worker settings
    short = {**DEFAULTS, "time_limit": 20, "soft_time_limit": 15}
    assert core.errors(topology, short) == []  # 60 >= 30 + 20
    found = core.errors(topology, DEFAULTS)
    assert any("must be at least 720 s" in error for error in found), found


def test_redis_only_fields_are_refused_on_rabbitmq():
    found = core.errors({**TOPOLOGY, "max_countdown": 30}, DEFAULTS)
    assert any(".max_countdown: is for a redis broker" in error for error in found), found
    topology = copy.deepcopy(TOPOLOGY)
    topology["queues"][2]["dead_letter"] = "logstash"
    found = core.errors(topology, DEFAULTS)
    assert any("queues[2].dead_letter: is for a raw queue on a redis" in e for e in found), found


def test_rabbitmq_refuses_to_declare_a_redis_topology():
    found = core.errors(REDIS, celery=False)
    assert any(".broker: is redis: RabbitMQ has nothing" in error for error in found), found


def test_the_visibility_timeout_covers_the_longest_countdown_prefetch_wait_and_time_limit():
    # Longest wait: max_countdown 30 against prefetch 1 x 360 (the defaults' time limit, of
    # default and logstash): 360; plus the longest time limit, 360.
    assert core.visibility_timeout(REDIS, DEFAULTS) == 720
    short = {**DEFAULTS, "time_limit": 20, "soft_time_limit": 15}
    assert core.visibility_timeout(REDIS, short) == 30 + 20
    # A deep prefetch waits behind that many tasks of its process.
    topology = copy.deepcopy(REDIS)
    topology["queues"][1]["worker"]["prefetch_multiplier"] = 4
    assert core.visibility_timeout(topology, short) == 4 * 20 + 20
    # Without max_countdown, an hour of countdown is allowed for.
    del topology["max_countdown"]
    assert core.visibility_timeout(topology, short) == 3600 + 20
    # Set explicitly: kept when long enough; RabbitMQ has none.
    assert core.visibility_timeout({**REDIS, "visibility_timeout": 5000}, DEFAULTS) == 5000
    assert core.visibility_timeout(TOPOLOGY, DEFAULTS) is None


def test_a_rabbitmq_application_keeps_the_projection_it_had_before_redis_brokers():
    app = core.application(TOPOLOGY, DEFAULTS)
    assert sorted(app) == ["default_queue", "queues", "raw_queues", "routes", "vhost"]
    assert all("list" not in spec for spec in app["raw_queues"])


def test_the_application_of_a_redis_topology_names_the_event_lists():
    app = core.application(REDIS, {**DEFAULTS, "time_limit": 20, "soft_time_limit": 15})
    assert app["broker"] == "redis" and app["visibility_timeout"] == 50
    assert app["vhost"] == "/"
    raw = {spec["name"]: spec for spec in app["raw_queues"]}
    assert raw["logstash"]["list"] == "events:logstash"
    assert raw["logstash"]["dead_letter_list"] == "events:logstash.dead"
    assert raw["logstash.dead"]["list"] == "events:logstash.dead"
    assert raw["logstash"]["consumer_queue"] == "logstash.consumer"
    assert {q["exchange_type"] for q in app["queues"]} == {"direct"}


def test_the_worker_defaults_here_are_the_worker_roles():
    role = yaml.safe_load((ROLES / "celery_worker" / "defaults" / "main.yml").read_text())
    assert role["celery_worker_defaults"] == core.WORKER_DEFAULTS
