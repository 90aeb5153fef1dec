import pytest
from ansible_collections.celerystack.platform.plugins.modules import rabbitmq_queue_purge as purge

QUEUE = {"name": "email", "messages_ready": 12, "messages_unacknowledged": 1, "consumers": 0}


def test_a_queue_without_consumers_loses_its_ready_messages_with_a_diff():
    ready, diff = purge.plan(QUEUE, "/celery", 0)
    assert ready == 12
    assert diff == {"before": "email: 12 ready\n", "after": "email: 0 ready\n"}


def test_an_empty_queue_has_nothing_to_purge():
    assert purge.plan(dict(QUEUE, messages_ready=0), "/celery", 0)[0] == 0


def test_a_queue_with_consumers_is_refused_with_what_to_do():
    with pytest.raises(purge.Refused, match=r"queue email in vhost /celery has 2 consumer\(s\)"):
        purge.plan(dict(QUEUE, consumers=2), "/celery", 0)
    with pytest.raises(purge.Refused, match="celerystack_purge_stop_workers=true"):
        purge.plan(dict(QUEUE, consumers=2), "/celery", 1)
    assert purge.plan(dict(QUEUE, consumers=2), "/celery", 2)[0] == 12
