"""The redis broker's event path: a list drained with a processing list of the worker's own, so
that an event taken by a worker that dies is handled again when it starts, and never lost."""

import json
import threading
import time

import pytest
from celerystack_app import topology
from celerystack_app.mail.event_lists import EventList, drain
from django.core.exceptions import ImproperlyConfigured
from plugin_topology import projection


class FakeRedis:
    """The list commands the drain uses, with a failure to inject on the next call of one."""

    def __init__(self):
        self.lists = {}
        self.fail = {}

    def _maybe_fail(self, command):
        if self.fail.get(command):
            self.fail[command] -= 1
            raise ConnectionError(f"{command}: connection lost")

    def rpush(self, key, value):
        self._maybe_fail("rpush")
        self.lists.setdefault(key, []).append(value.encode() if isinstance(value, str) else value)

    def lrange(self, key, start, end):
        self._maybe_fail("lrange")
        return list(self.lists.get(key, []))

    def blmove(self, source, destination, timeout, where_from, where_to):
        self._maybe_fail("blmove")
        assert (where_from, where_to) == ("LEFT", "RIGHT")
        if not self.lists.get(source):
            return None
        item = self.lists[source].pop(0)
        self.lists.setdefault(destination, []).append(item)
        return item

    def lrem(self, key, count, value):
        self._maybe_fail("lrem")
        self.lists[key].remove(value)


def event(number):
    return json.dumps({"id": f"evt-{number}", "subject": f"#{number}"}).encode()


def run_until_empty(events, send, client):
    """Drain until the list and the processing list are empty (or 5 s pass)."""
    stopping = threading.Event()
    thread = threading.Thread(target=drain, args=(events, send, stopping, 0.01))
    thread.start()
    deadline = time.monotonic() + 5
    while client.lists.get(events.key) or client.lists.get(events.processing):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    stopping.set()
    thread.join(5)
    assert not thread.is_alive()


def test_every_event_becomes_one_task_in_order_and_leaves_nothing_behind():
    client, sent = FakeRedis(), []
    for number in range(5):
        client.rpush("events:logstash", event(number))
    events = EventList(client, "events:logstash", "logstash@app1", "events:logstash.dead")
    run_until_empty(events, sent.append, client)
    assert [kwargs["event_id"] for kwargs in sent] == [f"evt-{n}" for n in range(5)]
    assert client.lists["events:logstash.processing.logstash@app1"] == []


def test_an_event_a_killed_worker_had_taken_is_handled_when_it_starts_again():
    client, sent = FakeRedis(), []
    client.rpush("events:logstash.processing.logstash@app1", event(1))
    client.rpush("events:logstash", event(2))
    events = EventList(client, "events:logstash", "logstash@app1")
    run_until_empty(events, sent.append, client)
    assert [kwargs["event_id"] for kwargs in sent] == ["evt-1", "evt-2"]


def test_a_task_that_cannot_be_sent_leaves_its_event_to_be_sent_again():
    client, sent, failures = FakeRedis(), [], [2]

    def send(kwargs):
        if failures[0]:
            failures[0] -= 1
            raise OSError("broker restarting")
        sent.append(kwargs)

    client.rpush("events:logstash", event(1))
    client.fail["blmove"] = 1  # and the connection is lost once before anything is taken
    events = EventList(client, "events:logstash", "n")
    run_until_empty(events, send, client)
    assert [kwargs["event_id"] for kwargs in sent] == ["evt-1"]


def test_a_malformed_event_goes_to_the_dead_letter_list_with_its_reason():
    client, sent = FakeRedis(), []
    client.rpush("events:logstash", b"{not json")
    client.rpush("events:logstash", event(3))
    events = EventList(client, "events:logstash", "n", "events:logstash.dead")
    run_until_empty(events, sent.append, client)
    dead = [json.loads(item) for item in client.lists["events:logstash.dead"]]
    assert dead[0]["event"] == "{not json"
    assert dead[0]["reason"].startswith("body is not JSON")
    assert [kwargs["event_id"] for kwargs in sent] == ["evt-3"]


REDIS_TOPOLOGY = {
    "broker": "redis",
    "queues": [
        {"name": "default"},
        {"name": "logstash", "raw": True, "dead_letter": "logstash.dead", "worker": {}},
        {"name": "logstash.dead", "raw": True},
    ],
}


def test_the_projection_names_the_lists_and_a_visibility_timeout():
    spec = topology.raw_queue(projection(REDIS_TOPOLOGY), "logstash")
    assert (spec["list"], spec["dead_letter_list"]) == ("events:logstash", "events:logstash.dead")
    assert topology.broker(projection(REDIS_TOPOLOGY)) == "redis"
    assert projection(REDIS_TOPOLOGY)["visibility_timeout"] > 3600


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("rediss://u:p@cache:6379/0", True),
        ("redis://u:p@cache:6379/0", True),
        ("amqps://u:p@mq1:5671/%2Fcelery", False),
    ],
)
def test_the_broker_url_must_be_of_the_topologys_broker(url, ok):
    if ok:
        topology.check_broker(projection(REDIS_TOPOLOGY), url)
    else:
        with pytest.raises(ImproperlyConfigured, match="topology is for a redis broker"):
            topology.check_broker(projection(REDIS_TOPOLOGY), url)
