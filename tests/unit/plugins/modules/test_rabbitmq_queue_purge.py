import json

import pytest
from ansible_collections.celerystack.platform.plugins.modules import rabbitmq_queue_purge as purge

QUEUE = {"name": "email", "messages_ready": 12, "messages_unacknowledged": 1, "consumers": 0}
LISTING = json.dumps([dict(QUEUE, name="default", messages_ready=3), QUEUE])


def test_the_queue_is_found_by_name_in_the_listing():
    assert purge.find_queue(LISTING, "email", "/celery") == QUEUE
    with pytest.raises(purge.Failed, match="no queue emial in vhost /celery"):
        purge.find_queue(LISTING, "emial", "/celery")
    with pytest.raises(purge.Failed, match="printed no JSON: Error: vhost /x does not exist"):
        purge.find_queue("Error: vhost /x does not exist\n", "email", "/x")


def test_a_queue_without_consumers_loses_its_ready_messages_with_a_diff():
    assert purge.plan(QUEUE, "/celery", 0) == 12
    assert purge.purge_diff("email", 12) == {
        "before": "email: 12 ready\n",
        "after": "email: 0 ready\n",
    }


def test_an_empty_queue_has_nothing_to_purge_and_no_diff():
    assert purge.plan(dict(QUEUE, messages_ready=0), "/celery", 0) == 0
    assert purge.purge_diff("email", 0) == {}


def test_a_queue_with_consumers_is_refused_with_what_to_do():
    with pytest.raises(purge.Refused, match=r"queue email in vhost /celery has 2 consumer\(s\)"):
        purge.plan(dict(QUEUE, consumers=2), "/celery", 0)
    with pytest.raises(purge.Refused, match="celerystack_purge_stop_workers=true"):
        purge.plan(dict(QUEUE, consumers=2), "/celery", 1)
    assert purge.plan(dict(QUEUE, consumers=2), "/celery", 2) == 12


def test_names_reach_the_purge_expression_only_as_bytes():
    expression = purge.purge_expression("/celery", 'x">>, evil(), <<"')
    assert expression.startswith("case rabbit_amqqueue:lookup(rabbit_misc:r(<<47,99,101,")
    assert "evil" not in expression and '"' not in expression
    assert purge.erlang_binary("é") == "<<195,169>>"


def test_the_purged_count_is_what_the_broker_returned():
    assert purge.parse_purged("{ok,7}\n") == 7
    assert purge.parse_purged("{ok, 0}") == 0
    with pytest.raises(purge.Failed, match=r"the purge failed: \{error,not_found\}"):
        purge.parse_purged("{error,not_found}\n")
