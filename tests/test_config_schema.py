"""Strict configuration (docs/configuration.md, "Checking a configuration"): every kind of
error the schema (`switchboard.config_schema`) stops start-up with, naming the file, the
section or array entry and the key; and `switchboard config check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from switchboard.config import ConfigError, load_settings, parse_settings

MOCK = {"providers": [{"name": "p", "kind": "mock"}]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"bogus": {}}, "test: unknown section `bogus`"),
        ({"routng": {}}, "unknown section `routng` (did you mean `routing`?)"),
        ({"routing": {"max_attemps": 9}},
         "[routing]: unknown key `max_attemps` (did you mean `max_attempts`?)"),
        ({"routing": {"max_attempts": "3"}}, "[routing]: `max_attempts` must be an integer"),
        ({"routing": {"max_attempts": 2.5}}, "`max_attempts` must be an integer"),
        ({"routing": {"backoff_base": True}}, "`backoff_base` must be a number"),
        ({"routing": {"max_attempts": 0}}, "`max_attempts` must be at least 1"),
        ({"routing": {"total_timeout": 0}}, "`total_timeout` must be above 0"),
        ({"routing": []}, "[routing] must be a table"),
        ({"server": {"max_body_mb": -1}}, "[server]: `max_body_mb` must be above 0"),
        ({"database": {"busy_timout": 1}}, "did you mean `busy_timeout`?"),
        ({"ledger": {"when_database_down": "panic"}}, "must be one of serve, refuse"),
        ({"limits": {"when_store_down": 1}}, "[limits]: `when_store_down` must be a string"),
        ({"capture": {"keys": "alice"}}, "[capture]: `keys` must be a list of strings"),
        ({"providers": {"name": "p"}}, "`providers` must be a list of tables ([[providers]])"),
        ({"providers": [{"kind": "mock"}]}, "[[providers]] #1: `name` is required"),
        ({"providers": [{"name": "p", "kind": "mock", "api_kee": "x"}]},
         "[[providers]] #1 ('p'): unknown key `api_kee` (did you mean `api_key`?)"),
        ({"providers": [{"name": "p", "kind": "mock", "read_timeout": -5}]},
         "[[providers]] #1 ('p'): `read_timeout` must be above 0"),
        (MOCK | {"models": [{"name": "a", "provider": "p"}, {"name": "b", "providr": "p"}]},
         "[[models]] #2 ('b'): unknown key `providr` (did you mean `provider`?)"),
        (MOCK | {"models": [{"name": "m", "deployments": [{"provider": "p", "wieght": 2}]}]},
         "[[models]] #1 ('m'), [[models.deployments]] #1 ('p'): unknown key `wieght` "
         "(did you mean `weight`?)"),
        (MOCK | {"models": [{"name": "m", "provider": "p", "prices": [{"input_price": 1}]}]},
         "[[models]] #1 ('m'), [[models.prices]] #1: `since` is required"),
        (MOCK | {"models": [{"name": "m", "provider": "p", "max_output_tokens": 0}]},
         "`max_output_tokens` must be at least 1"),
        (MOCK | {"models": [{"name": "m", "provider": "p", "fallbacks": [1]}]},
         "`fallbacks` must be a list of strings"),
    ],
)  # fmt: skip
def test_every_kind_of_error_names_where_it_is(document, message):
    with pytest.raises(ConfigError) as raised:
        parse_settings(document, "test")
    assert message in str(raised.value)


def test_a_refused_value_is_never_repeated(monkeypatch):
    monkeypatch.setenv("CANARY_KEY", "sk-canary-0123456789abcdef")
    document = {"providers": [{"name": "p", "kind": "mock", "api_key": "${CANARY_KEY}",
                               "stream_usage": "${CANARY_KEY}"}]}  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        parse_settings(document, "test")
    assert "`stream_usage` must be true or false" in str(raised.value)
    assert "canary" not in str(raised.value)


def test_the_file_name_is_in_the_message(tmp_path):
    path = tmp_path / "switchboard.toml"
    path.write_text("[routing]\nmax_attemps = 9\n")
    with pytest.raises(ConfigError, match=f"^{path}: \\[routing\\]: unknown key"):
        load_settings(path)


def check(tmp_path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    env = os.environ | {"SWITCHBOARD_CONFIG": str(path), "SWITCHBOARD_ADMIN_KEY": "adm-secret-1"}
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "config", "check", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_config_check_exits_2_with_the_start_up_message(tmp_path):
    done = check(tmp_path, "[bogus]\n")
    assert done.returncode == 2
    assert "unknown section `bogus`" in done.stderr
    as_json = json.loads(check(tmp_path, "[bogus]\n", "--json").stdout)
    assert as_json["ok"] is False and "unknown section `bogus`" in as_json["error"]


def test_config_check_prints_the_effective_configuration_with_secrets_masked(tmp_path):
    text = (
        '[database]\nurl = "postgresql+psycopg://sb:pg-secret-pw@db/sb"\n'
        '[[providers]]\nname = "openai"\nbase_url = "https://api.openai.com/v1"\n'
        'api_key = "sk-upstream-canary-12345"\n'
        '[[models]]\nname = "gpt-4o-mini"\nprovider = "openai"\n'
    )
    done = check(tmp_path, text, "--json")
    assert done.returncode == 0, done.stderr
    for secret in ("pg-secret-pw", "sk-upstream-canary-12345", "adm-secret-1"):
        assert secret not in done.stdout
    result = json.loads(done.stdout)
    settings = result["settings"]
    assert settings["providers"]["openai"]["api_key"] == "********"
    assert settings["admin_key"] == "********"
    assert settings["routing"]["max_attempts"] == 3  # defaults filled in
    assert settings["models"]["gpt-4o-mini"]["deployments"][0]["provider"] == "openai"
    plain = check(tmp_path, text)
    assert plain.returncode == 0 and plain.stdout.startswith("configuration OK:")


@pytest.mark.parametrize("name", ["SWITCHBOARD_WORKERS", "SWITCHBOARD_THREADS"])
def test_a_gunicorn_setting_that_is_not_a_number_stops_start_up_naming_it(name):
    done = subprocess.run(
        [sys.executable, "-c", "import switchboard.gunicorn_conf"],
        env=os.environ | {name: "many"}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{name} must be a whole number" in done.stderr
