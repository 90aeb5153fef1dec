import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.celerystack.platform.plugins.filter.celery_worker_services import (
    celery_worker_services,
    celery_worker_units,
)

DEFAULTS = {
    "concurrency": 2,
    "autoscale": "",
    "optimization": "fair",
    "max_tasks_per_child": 100,
    "prefetch_multiplier": 1,
    "soft_time_limit": 300,
    "time_limit": 360,
    "loglevel": "INFO",
}
TOPOLOGY = {
    "queues": [
        {"name": "default"},
        {"name": "logstash", "raw": True, "worker": {"concurrency": 1}},
        {"name": "logstash.dead", "raw": True},
        {"name": "mail_data", "worker": {"autoscale": "8,2", "prefetch_multiplier": 4}},
        {"name": "reports", "worker": {"enabled": False}},
    ]
}


def by_queue(services):
    return {s["queue"]: s for s in services}


def test_one_service_per_queue_that_needs_one():
    services = by_queue(celery_worker_services(TOPOLOGY, DEFAULTS))
    assert sorted(services) == ["default", "logstash", "mail_data"]
    assert services["logstash"]["unit"] == "celery-worker-logstash"


def test_options_come_from_the_queue_over_the_defaults():
    services = by_queue(celery_worker_services(TOPOLOGY, DEFAULTS))
    assert services["default"]["options"] == [
        "--concurrency=2",
        "-Ofair",
        "--max-tasks-per-child=100",
        "--prefetch-multiplier=1",
        "--soft-time-limit=300",
        "--time-limit=360",
        "--loglevel=INFO",
    ]
    assert services["mail_data"]["options"][0] == "--autoscale=8,2"
    assert "--prefetch-multiplier=4" in services["mail_data"]["options"]


def test_a_raw_queue_worker_drains_it_and_consumes_a_private_celery_queue():
    logstash = by_queue(celery_worker_services(TOPOLOGY, DEFAULTS))["logstash"]
    assert (logstash["raw_queue"], logstash["celery_queue"]) == ("logstash", "logstash.consumer")


def test_only_limits_the_services_of_a_host():
    assert [s["queue"] for s in celery_worker_services(TOPOLOGY, DEFAULTS, ["default"])] == [
        "default"
    ]


@pytest.mark.parametrize(
    ("worker", "message"),
    [
        ({"autoscale": "lots"}, "queue 'q': autoscale must be 'max,min'"),
        ({"autoscale": "2,8"}, "queue 'q': autoscale 'max,min' needs 1 <= min <= max"),
        ({"soft_time_limit": 400}, "queue 'q': soft_time_limit must be below time_limit"),
        ({"concurency": 4}, "queue 'q': unknown worker settings ['concurency']"),
    ],
)
def test_bad_worker_settings_name_the_queue(worker, message):
    with pytest.raises(AnsibleFilterError) as err:
        celery_worker_services({"queues": [{"name": "q", "worker": worker}]}, DEFAULTS)
    assert str(err.value).startswith(message)


def test_units_alone_match_the_services_and_need_no_settings():
    # A queue whose own limits would not validate against these defaults still has a unit name.
    slow = {"name": "slow", "worker": {"soft_time_limit": 9000}}
    topology = {"queues": [*TOPOLOGY["queues"], slow]}
    assert celery_worker_units(topology) == [
        "celery-worker-default",
        "celery-worker-logstash",
        "celery-worker-mail_data",
        "celery-worker-slow",
    ]
    assert celery_worker_units(TOPOLOGY, ["mail_data"]) == ["celery-worker-mail_data"]
    assert celery_worker_units(TOPOLOGY) == [
        s["unit"] for s in celery_worker_services(TOPOLOGY, DEFAULTS)
    ]
