"""The application factory and the configuration file (docs/configuration.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from switchboard import create_app
from switchboard.config import DEFAULT_MOCK_MODELS, ConfigError, load_settings, parse_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return path


def test_no_configuration_file_means_sqlite_and_the_mock_provider(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_CONFIG", raising=False)
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///switchboard.db"
    assert list(settings.providers) == ["mock"]
    assert settings.providers["mock"].kind == "mock"
    assert tuple(settings.models) == DEFAULT_MOCK_MODELS


def test_factory_builds_an_app_without_touching_the_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_CONFIG", raising=False)
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    app = create_app()
    assert "switchboard" in app.extensions
    assert not (tmp_path / "switchboard.db").exists()
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert {
        "/v1/chat/completions",
        "/openai/v1/chat/completions",
        "/v1/models",
        "/v1/models/<path:model>",
        "/healthz",
        "/readyz",
    } <= rules
    app.extensions["switchboard"].close()


def test_full_configuration_with_environment_values(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "sk-from-env")
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    path = write(
        tmp_path,
        """
[database]
url = "sqlite:///elsewhere.db"

[server]
max_body_mb = 2

[[providers]]
name = "openai"
kind = "openai"
base_url = "https://api.example.test/v1/"
api_key = "${TEST_UPSTREAM_KEY}"
connect_timeout = 3
read_timeout = 120

[[models]]
name = "gpt-4o-mini"
provider = "openai"
input_price = 0.15
output_price = 0.60
fallbacks = ["gpt-4.1-mini"]

[[models]]
name = "fast"
provider = "openai"
upstream_model = "gpt-4.1-nano"
""",
    )
    settings = load_settings(path)
    provider = settings.providers["openai"]
    assert provider.api_key == "sk-from-env"
    assert provider.base_url == "https://api.example.test/v1"
    assert (provider.connect_timeout, provider.read_timeout) == (3.0, 120.0)
    assert settings.models["gpt-4o-mini"].upstream_model == "gpt-4o-mini"
    assert settings.models["gpt-4o-mini"].fallbacks == ("gpt-4.1-mini",)
    assert settings.models["fast"].upstream_model == "gpt-4.1-nano"
    assert settings.max_body_bytes == 2 * 1024 * 1024
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert "sk-from-env" not in repr(settings)


def test_database_url_environment_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", "sqlite:///from-env.db")
    path = write(tmp_path, '[database]\nurl = "sqlite:///from-file.db"\n')
    assert load_settings(path).database_url == "sqlite:///from-env.db"


def test_switchboard_config_variable_names_the_file(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        '[[providers]]\nname = "m"\nkind = "mock"\n[[models]]\nname = "only"\nprovider = "m"\n',
    )
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(path))
    assert list(load_settings().models) == ["only"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"providers": [{"name": "p", "kind": "carrier-pigeon"}]}, "`kind` must be one of"),
        ({"providers": [{"name": "p", "kind": "openai"}]}, "base_url is required"),
        (
            {
                "providers": [{"name": "p", "kind": "mock"}],
                "models": [{"name": "m", "provider": "nope"}],
            },
            "provider 'nope' is not configured",
        ),
        (
            {"providers": [{"name": "p", "kind": "mock", "api_key": "${SURELY_UNSET_VAR}"}]},
            "SURELY_UNSET_VAR is not set",
        ),
        (
            {"providers": [{"name": "p", "kind": "mock", "read_timeout": "soon"}]},
            "`read_timeout` must be a number",
        ),
        (
            {
                "providers": [{"name": "p", "kind": "mock"}],
                "models": [{"name": "m", "deployments": [{"provider": "p", "weight": 0}]}],
            },
            "`weight` must be above 0",
        ),
        (
            {
                "providers": [{"name": "p", "kind": "mock"}],
                "models": [{"name": "m", "provider": "p", "deployments": []}],
            },
            "either provider or deployments",
        ),
        ({"routing": {"max_attempts": 0}}, "at least 1"),
        ({"ledger": {"when_database_down": "panic"}}, "one of serve, refuse"),
        ({"providers": [{"name": "a", "kind": "azure"}]}, "base_url is required"),
    ],
)
def test_configuration_errors_are_clear(document, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings(document, "test")


def test_missing_named_configuration_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_broken_toml_is_an_error(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, "[[providers]\nname = "))


def example_configuration(tmp_path: Path) -> Path:
    """The example configuration of docs/configuration.md, written out as a file."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    found = re.search(r"<!-- example: switchboard.toml -->\n```toml\n(.*?)\n```\n", page, re.S)
    assert found, "docs/configuration.md lost its example configuration block"
    path = tmp_path / "switchboard.toml"
    path.write_text(found.group(1) + "\n")
    return path


def test_example_configuration_file_loads(monkeypatch, tmp_path):
    for name in ("PGPASSWORD", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "METRICS_TOKEN"):
        monkeypatch.setenv(name, "secret-" + name)
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    settings = load_settings(example_configuration(tmp_path))
    mini = settings.models["gpt-4o-mini"]
    assert [(d.provider, d.upstream_model, d.weight) for d in mini.deployments] == [
        ("openai", "gpt-4o-mini", 3.0),
        ("azure-east", "gpt-4o-mini-prod", 1.0),
    ]
    assert settings.providers["azure-east"].kind == "azure"
    assert settings.providers["azure-east"].api_version == "2024-10-21"
    assert settings.models["gpt-4.1-mini"].total_timeout == 300
    assert settings.models["gpt-4-32k"].deployments == ()
    assert (settings.routing.max_attempts, settings.routing.cooldown_seconds) == (3, 30)
    assert settings.state_dir == "/var/lib/switchboard"
    assert settings.when_database_down == "serve"
    assert settings.trusted_proxies == ("127.0.0.1",)
    assert (settings.logging.format, settings.metrics.token) == ("json", "secret-METRICS_TOKEN")
