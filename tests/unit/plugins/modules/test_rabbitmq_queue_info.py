import pytest
from ansible_collections.celerystack.platform.plugins.modules import rabbitmq_queue_info as info

API_QUEUES = [
    {
        "name": "email",
        "type": "classic",
        "state": "running",
        "messages_ready": 3,
        "messages_unacknowledged": 1,
        "messages": 4,
        "consumers": 2,
        "message_stats": {
            "publish_details": {"rate": 1.5},
            "deliver_get_details": {"rate": 0.5},
            "ack_details": {"rate": 0.25},
        },
    },
    {
        "name": "logstash",
        "type": "quorum",
        "state": "running",
        "messages_ready": 0,
        "messages_unacknowledged": 0,
        "messages": 0,
        "consumers": 1,
    },
]


def test_summary_reads_depth_consumers_and_rates():
    assert info.summarize(API_QUEUES[0]) == {
        "name": "email",
        "type": "classic",
        "state": "running",
        "messages_ready": 3,
        "messages_unacknowledged": 1,
        "messages": 4,
        "consumers": 2,
        "publish_rate": 1.5,
        "deliver_rate": 0.5,
        "ack_rate": 0.25,
        "oldest_age": None,
    }


def test_the_oldest_message_age_comes_from_its_timestamp_when_it_has_one():
    queue = dict(API_QUEUES[0], head_message_timestamp=1000)
    assert info.summarize(queue, now=1042.5)["oldest_age"] == 42.5


def test_each_limit_passed_is_one_line_and_a_queues_own_limits_replace_the_default():
    queues = [
        dict(info.summarize(API_QUEUES[0]), oldest_age=90.0),
        info.summarize(dict(API_QUEUES[1], consumers=0, messages_ready=7)),
    ]
    limits = {
        "*": {"max_ready": 5, "min_consumers": 1},
        "email": {"max_ready": 2, "max_unacknowledged": 1, "max_age": 60},
    }
    assert info.breaches(queues, limits) == [
        "email: oldest_age 90.0, max_age 60",
        "email: messages_ready 3, max_ready 2",
        "logstash: messages_ready 7, max_ready 5",
        "logstash: consumers 0, min_consumers 1",
    ]
    assert info.breaches(queues, {}) == []


def test_a_limit_of_unknown_age_is_not_a_breach():
    assert info.breaches([info.summarize(API_QUEUES[1])], {"*": {"max_age": 0}}) == []


def test_bad_limits_are_named_by_path():
    assert info.limit_errors(
        {"email": {"max_redy": 1, "max_ready": -1}, "*": [], "x": {"min_consumers": True}}
    ) == [
        "limits.* must be a mapping of limits",
        "limits.email.max_ready must be a number, 0 or more",
        "limits.email.max_redy is not a limit (known: max_ready, max_unacknowledged, "
        "min_consumers, max_age)",
        "limits.x.min_consumers must be a number, 0 or more",
    ]


def test_a_queue_without_traffic_has_zero_rates():
    summary = info.summarize(API_QUEUES[1])
    assert (summary["publish_rate"], summary["deliver_rate"], summary["ack_rate"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("names", "found", "missing"),
    [
        ([], ["email", "logstash"], []),
        (["logstash"], ["logstash"], []),
        (["logstash", "nope"], ["logstash"], ["nope"]),
    ],
)
def test_select(names, found, missing):
    queues, absent = info.select(API_QUEUES, names)
    assert [q["name"] for q in queues] == found
    assert absent == missing
