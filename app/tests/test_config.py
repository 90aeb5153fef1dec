import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celerystack_app.config import Config, parse_secrets
from django.core.exceptions import ImproperlyConfigured
from plugin_topology import projection


def test_secrets_file_lines():
    assert parse_secrets("# comment\n\nA=1\nB= spaced=value\n") == {"A": "1", "B": " spaced=value"}
    with pytest.raises(ImproperlyConfigured, match="line 1 is not NAME=value"):
        parse_secrets("no-separator")


def test_missing_setting_and_secret_are_named(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.write_text("DB_PASSWORD=pw\n")
    cfg = Config({"CELERYSTACK_SECRETS_FILE": str(secrets)})
    with pytest.raises(ImproperlyConfigured, match="CELERYSTACK_DB_HOST is not set"):
        cfg.get("DB_HOST")
    with pytest.raises(
        ImproperlyConfigured, match=f"secret BROKER_PASSWORD is missing from {secrets}"
    ):
        cfg.secret("BROKER_PASSWORD")
    assert cfg.secret("DB_PASSWORD") == "pw"


def test_numbered_secrets_are_a_list_in_number_order(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.write_text("KEY_FALLBACK_10=ten\nKEY_FALLBACK_2=two=2\nKEY_FALLBACK_X=no\nKEY=k\n")
    cfg = Config({"CELERYSTACK_SECRETS_FILE": str(secrets)})
    assert cfg.numbered_secrets("KEY_FALLBACK") == ["two=2", "ten"]
    assert cfg.numbered_secrets("OTHER") == []


def test_systemd_credentials_win_over_the_named_file(tmp_path):
    (tmp_path / "secrets").write_text("DB_PASSWORD=from-credentials\n")
    other = tmp_path / "other"
    other.write_text("DB_PASSWORD=from-file\n")
    cfg = Config({"CREDENTIALS_DIRECTORY": str(tmp_path), "CELERYSTACK_SECRETS_FILE": str(other)})
    assert cfg.secret("DB_PASSWORD") == "from-credentials"


def test_unreadable_secrets_file_is_named(tmp_path):
    cfg = Config({"CELERYSTACK_SECRETS_FILE": str(tmp_path / "absent")})
    with pytest.raises(ImproperlyConfigured, match="absent cannot be read"):
        cfg.secret("X")


def test_production_settings_refuse_to_start_without_a_required_setting(tmp_path):
    """The real settings module, in a fresh interpreter, with the database host left out."""
    topology = tmp_path / "topology.json"
    topology.write_text(json.dumps(projection({"vhost": "/", "queues": [{"name": "default"}]})))
    secrets = tmp_path / "secrets"
    secrets.write_text("DJANGO_SECRET_KEY=k\nDB_PASSWORD=p\nBROKER_PASSWORD=b\nLOCK_PASSWORD=l\n")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
        "DJANGO_SETTINGS_MODULE": "celerystack_app.settings",
        "CELERYSTACK_SECRETS_FILE": str(secrets),
        "CELERYSTACK_TOPOLOGY_FILE": str(topology),
        "CELERYSTACK_DB_NAME": "celerystack",
        "CELERYSTACK_DB_USER": "celerystack",
        "CELERYSTACK_BROKER_HOST": "broker",
        "CELERYSTACK_BROKER_USER": "celery",
        "CELERYSTACK_LOCK_HOST": "cache",
    }
    code = "import django; django.setup()"
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0
    assert "CELERYSTACK_DB_HOST is not set" in run.stderr
    env["CELERYSTACK_DB_HOST"] = "db"
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
