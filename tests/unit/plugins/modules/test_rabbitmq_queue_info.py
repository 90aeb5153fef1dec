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
    }


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
