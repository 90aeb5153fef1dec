"""Controller-side proof for the rabbitmq role and modules: module cases against the live
broker, check mode, bad input, password rotation, and no secret in any output."""

from __future__ import annotations

import pytest
import testinfra
from celerystack_testlib import (
    assert_no_secret_in_log,
    assert_required_variables_are_named,
    run_playbook,
    vault_values,
)
from conftest import CA, probe

SECRETS = vault_values()
ROTATED = "r0tated-Te5t-only-8e2a"


def host(name):
    return testinfra.get_host(f"podman://{name}")


def authenticates(user, password):
    return probe("rabbit-plain:5672", "/other", "login", user=(user, password)) == "OK"


def consumer_timeout(name):
    return host(name).check_output(
        "rabbitmqctl -q eval 'application:get_env(rabbit, consumer_timeout).'"
    )


def test_module_cases_against_the_live_broker():
    run = run_playbook("module-cases.yml")
    assert run.rc == 0, run.output
    assert run.recap["rabbit-plain"]["failed"] == 0


def test_check_mode_after_converge_reports_no_change():
    run = run_playbook(check=True)
    assert run.rc == 0, run.output
    assert run.changed() and set(run.changed().values()) == {0}, run.output


# Each case asks for a real change (consumer_timeout) next to one bad value: the run must stop
# before any change, name the variable, and leave the live node as it was.
BAD_INPUTS = [
    ({"rabbitmq_erlang_cookie": "short"}, "rabbitmq_erlang_cookie"),
    ({"rabbitmq_amqp_bind_addresses": ["rabbit.example"]}, "rabbitmq_amqp_bind_addresses"),
    ({"rabbitmq_tls_enabled": True}, "rabbitmq_tls_certificate"),
    ({"rabbitmq_amqp_enabled": False}, "rabbitmq_amqp_enabled"),
    ({"rabbitmq_vm_memory_high_watermark": 2.0}, "rabbitmq_vm_memory_high_watermark"),
    ({"rabbitmq_amqp_port": 70000}, "rabbitmq_amqp_port"),
    ({"rabbitmq_topologies": [{"queues": [{"name": "q"}]}]}, "rabbitmq_topologies"),
    (
        {"rabbitmq_users": [{"name": "u", "password": "p", "permissions": [{"vhost": "/x"}]}]},
        "rabbitmq_users grant permissions on vhosts",
    ),
    ({"rabbitmq_users": [{"name": "admin", "password": "p"}]}, "rabbitmq_admin_user"),
    ({"rabbitmq_users": [{"name": "nopass"}]}, "password"),
]


@pytest.mark.parametrize(("bad", "variable"), BAD_INPUTS, ids=[str(c[0])[:40] for c in BAD_INPUTS])
def test_bad_input_fails_before_any_change(bad, variable):
    before = consumer_timeout("rabbit-plain")
    run = run_playbook(
        extra_vars={"rabbitmq_consumer_timeout": 7200000, **bad}, limit="rabbit-plain"
    )
    assert run.rc != 0
    assert variable in run.output, run.output
    assert run.recap["rabbit-plain"]["changed"] == 0
    assert consumer_timeout("rabbit-plain") == before


def test_missing_secrets_are_named_by_argument_validation(tmp_path):
    assert_required_variables_are_named(
        "rabbitmq", ["rabbitmq_erlang_cookie", "rabbitmq_admin_password"], tmp_path
    )


def test_password_rotation_is_an_edit_and_a_run():
    old = SECRETS["vault_rabbitmq_other_password"]
    users = [
        {
            "name": "celery",
            "password": SECRETS["vault_rabbitmq_celery_password"],
            "permissions": [{"vhost": "/celery"}],
        },
        {"name": "other", "password": ROTATED, "permissions": [{"vhost": "/other"}]},
    ]
    pid = host("rabbit-plain").check_output("systemctl show -P MainPID rabbitmq-server")
    rotated = run_playbook(extra_vars={"rabbitmq_users": users}, limit="rabbit-plain")
    assert rotated.rc == 0, rotated.output
    assert rotated.recap["rabbit-plain"]["changed"] > 0
    assert authenticates("other", ROTATED)
    assert not authenticates("other", old)
    # A live change over the API: the broker was not restarted.
    assert host("rabbit-plain").check_output("systemctl show -P MainPID rabbitmq-server") == pid

    restored = run_playbook(limit="rabbit-plain")
    assert restored.rc == 0, restored.output
    assert authenticates("other", old)


def test_mutual_tls_refuses_a_client_without_a_certificate():
    try:
        run = run_playbook(
            extra_vars={"rabbitmq_tls_fail_if_no_peer_cert": True}, limit="rabbit-tls"
        )
        assert run.rc == 0, run.output
        assert probe("rabbit-tls:5671", "/celery", "login", tls=CA).startswith("REFUSED")
        assert probe("rabbit-tls:5671", "/celery", "login", tls=CA, cert=True) == "OK"
    finally:
        restored = run_playbook(limit="rabbit-tls")
        assert restored.rc == 0, restored.output
    assert probe("rabbit-tls:5671", "/celery", "login", tls=CA) == "OK"


@pytest.mark.last
def test_no_secret_reaches_any_playbook_output():
    log = assert_no_secret_in_log(
        "rabbitmq", [ROTATED, "case-Te5t-1", "case-Te5t-2"], ["rabbit-tls"]
    )
    assert "password_hash" not in log
