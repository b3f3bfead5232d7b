"""Shared fixtures: a real fake upstream, a real database per test, the app, real gunicorn.

The database is SQLite (a fresh file per test) unless SWITCHBOARD_DATABASE_URL names a
PostgreSQL server: then a fresh database is created on it for the session, emptied before each
test, and dropped at the end.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from switchboard import create_app
from switchboard.cli.main import cli
from switchboard.config import Settings, parse_settings
from switchboard.database import upgrade

from tests.fake_upstream import FakeUpstream
from tests.helpers import close_sdk_clients
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("SWITCHBOARD_DATABASE_URL", "")
USE_POSTGRES = BASE_URL.startswith("postgresql")
TABLES = (
    "calls", "api_keys", "workers", "admin_events", "teams", "budget_spend", "usage_hourly",
    "usage_latency", "stored_completions", "response_routes",
)  # fmt: skip
UPSTREAM_SECRET = "sk-upstream-secret-DO-NOT-LEAK-123"
ADMIN_KEY = "adm-" + uuid.uuid4().hex

# configured model -> the fake upstream behaviour (tests/fake_upstream.py BEHAVIOURS)
FAKE_MODELS = {
    "gpt-4o-mini": "echo",
    "gpt-4.1": "echo",
    "gpt-4o": "echo",
    "gpt-4": "echo",
    "gpt-5.4": "echo",
    "slow": "slow-stream",
    "drop": "drop-stream",
    "long": "long-stream",
    "bad-request": "error-400",
    "broken": "error-500",
    "no-usage": "no-usage",
    "detailed": "detailed-usage",
    "not-json": "not-json",
    "tools": "tools",
}
# configured model on the `anthropic` provider -> the fake upstream behaviour
ANTHROPIC_MODELS = {
    "claude-sonnet": "echo",
    "claude-drop": "drop-stream",
    "claude-long": "long-stream",
    "claude-tools": "tools",
    "claude-broken": "error-500",
    "claude-no-usage": "no-usage",
}
# USD per million tokens of the Anthropic models (cost assertions)
CLAUDE_PRICES = {"input_price": 3.0, "output_price": 15.0, "cached_input_price": 0.3,
                 "cache_write_price": 3.75}  # fmt: skip


def switchboard_config(
    upstream_url: str, database_url: str, state_dir: str | Path = ".switchboard"
) -> dict[str, Any]:
    """The configuration document the tests run Switchboard with."""
    models = [
        {"name": name, "provider": "fake", "upstream_model": upstream,
         "input_price": 0.15, "output_price": 0.60}
        for name, upstream in FAKE_MODELS.items()
    ]  # fmt: skip
    models[list(FAKE_MODELS).index("detailed")] |= {"input_price": 1.0, "output_price": 2.0}
    models += [
        {"name": name, "provider": "claude", "upstream_model": upstream} | CLAUDE_PRICES
        for name, upstream in ANTHROPIC_MODELS.items()
    ]
    models.append({"name": "mock", "provider": "mock"})
    models.append({"name": "unreachable", "provider": "dead"})
    return {
        "database": {"url": database_url, "busy_timeout": 2},
        "server": {"state_dir": str(state_dir)},
        "routing": {"backoff_base": 0.05, "backoff_max": 0.5},
        "providers": [
            {"name": "fake", "kind": "openai", "base_url": upstream_url,
             "api_key": UPSTREAM_SECRET, "read_timeout": 5},
            {"name": "claude", "kind": "anthropic",
             "base_url": upstream_url.removesuffix("/v1"), "api_key": UPSTREAM_SECRET,
             "read_timeout": 5},
            {"name": "mock", "kind": "mock"},
            {"name": "dead", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
             "connect_timeout": 2},
        ],
        "models": models,
    }  # fmt: skip


def to_toml(config: dict[str, Any]) -> str:
    """Just enough TOML for `test_config` documents."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for section, body in config.items():
        if isinstance(body, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in body.items()]
        else:
            for item in body:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items()]
        lines.append("")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- databases --------------------------------------------------------------------------


class DatabaseFactory:
    """Makes fresh, migrated databases: SQLite files, or databases on the PostgreSQL server."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.created: list[str] = []
        self._template: Path | None = None

    def fresh(self, label: str) -> str:
        if USE_POSTGRES:
            name = f"sbtest_{label}_{uuid.uuid4().hex[:8]}"
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            url = make_url(BASE_URL).set(database=name).render_as_string(hide_password=False)
            upgrade(url)
            return url
        if self._template is None:
            self._template = self.workdir / "template.db"
            upgrade(f"sqlite:///{self._template}")
        path = self.workdir / f"{label}-{uuid.uuid4().hex[:8]}.db"
        shutil.copy(self._template, path)
        return f"sqlite:///{path}"

    def _admin(self) -> Any:
        """An autocommit psycopg connection to the server's maintenance database."""
        import psycopg

        url = make_url(BASE_URL)
        return psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database or "postgres", autocommit=True,
        )  # fmt: skip

    def drop_all(self) -> None:
        if not USE_POSTGRES:
            return
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Factory of fresh migrated databases for the session."""
    factory = DatabaseFactory(tmp_path_factory.mktemp("db"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def _pg_test_database(databases: DatabaseFactory) -> str | None:
    """One PostgreSQL database for the in-process tests, emptied before each test."""
    return databases.fresh("unit") if USE_POSTGRES else None


@pytest.fixture
def database_url(databases: DatabaseFactory, _pg_test_database: str | None) -> str:
    """A fresh, migrated, empty database for this test."""
    if _pg_test_database is None:
        return databases.fresh("t")
    engine = create_engine(_pg_test_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
    engine.dispose()
    return _pg_test_database


class Outage:
    """Makes the test database unavailable to Switchboard on demand, and available again.

    PostgreSQL: Switchboard connects through a TCP proxy that `cut()` severs (open connections
    and new ones). SQLite: `cut()` holds the write lock from another connection, so writes wait
    out the busy timeout and fail as "database is locked".
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.url = database_url
        self.proxy: TcpProxy | None = None
        self._holder: sqlite3.Connection | None = None
        if USE_POSTGRES:
            parsed = make_url(database_url)
            self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432).start()
            self.url = parsed.set(host="127.0.0.1", port=self.proxy.port).render_as_string(
                hide_password=False
            )

    def cut(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
            return
        path = make_url(self.database_url).database
        self._holder = sqlite3.connect(path, isolation_level=None, timeout=10)
        self._holder.execute("BEGIN IMMEDIATE")

    def restore(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        elif self._holder is not None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            self._holder = None

    def close(self) -> None:
        self.restore()
        if self.proxy is not None:
            self.proxy.stop()


@pytest.fixture
def outage(database_url: str) -> Iterator[Outage]:
    """The test database behind a switch: `outage.url` for Switchboard, `cut()`/`restore()`."""
    switch = Outage(database_url)
    yield switch
    switch.close()


# ---- upstream and app -------------------------------------------------------------------


@pytest.fixture(scope="session")
def _fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """Closes the SDK clients the test opened (tests.helpers.openai_sdk, anthropic_sdk)."""
    yield
    close_sdk_clients()


@pytest.fixture
def upstream(_fake_upstream: FakeUpstream) -> FakeUpstream:
    """The fake upstream on 127.0.0.1, with its request log emptied."""
    _fake_upstream.reset()
    return _fake_upstream


@pytest.fixture
def settings(upstream: FakeUpstream, database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the fake upstream and this test's database and state directory."""
    config = switchboard_config(upstream.base_url, database_url, tmp_path / "state")
    parsed = parse_settings(config, "tests")
    return dataclasses.replace(parsed, database_url=database_url)


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    """The real Flask app built by the factory."""
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["switchboard"].close()


@pytest.fixture
def client(app: Any) -> Any:
    """Flask's test client for `app`."""
    return app.test_client()


@pytest.fixture
def make_app() -> Iterator[Callable[[Settings], Any]]:
    """Builds apps from settings with the factory; closes each at the end of the test."""
    apps: list[Any] = []

    def make(settings: Settings) -> Any:
        application = create_app(settings)
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.extensions["switchboard"].close()


@pytest.fixture
def admin_app(settings: Settings) -> Iterator[Any]:
    """The real app with ADMIN_KEY configured as its admin key."""
    application = create_app(dataclasses.replace(settings, admin_key=ADMIN_KEY))
    yield application
    application.extensions["switchboard"].close()


@pytest.fixture
def admin_client(admin_app: Any) -> Any:
    """A test client of `admin_app` that sends the admin key."""
    client = admin_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_KEY}"
    return client


@pytest.fixture
def run_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., Any]:
    """Runs `switchboard ARGS...` against this test's database; returns the click result."""
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", database_url)
    monkeypatch.delenv("SWITCHBOARD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def make_key(app: Any) -> Callable[..., str]:
    """Creates a key in the test database and returns its secret."""

    def make(name: str | None = None, **fields: Any) -> str:
        keys = app.extensions["switchboard"].keys
        _, secret = keys.create(name=name or f"key-{uuid.uuid4().hex[:6]}", **fields)
        return secret

    return make


@pytest.fixture
def api_key(make_key: Callable[..., str]) -> str:
    """A key allowed to use every model, belonging to alice of team red."""
    return make_key("alice-laptop", user="alice", team="red")


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    """Authorization header for `api_key`."""
    return {"Authorization": f"Bearer {api_key}"}


def read_calls(database_url: str, **where: Any) -> list[dict[str, Any]]:
    """Ledger rows straight from the database, oldest first, filtered by column values."""
    engine = create_engine(database_url)
    clause = " AND ".join(f'"{k}" = :{k}' for k in where) or "1=1"
    with engine.connect() as conn:
        rows = (
            conn.execute(text(f"SELECT * FROM calls WHERE {clause} ORDER BY created_at, id"), where)
            .mappings()
            .all()
        )
    engine.dispose()
    return [dict(r) for r in rows]


def only_row(database_url: str) -> dict[str, Any]:
    """The one ledger row in the database (asserts that there is exactly one)."""
    rows = read_calls(database_url)
    assert len(rows) == 1, rows
    return rows[0]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# ---- real gunicorn ----------------------------------------------------------------------


@dataclasses.dataclass
class Server:
    """A running `switchboard serve` (gunicorn with gunicorn.conf.py)."""

    process: subprocess.Popen[bytes]
    base_url: str
    database_url: str
    env: dict[str, str]
    log_path: Path
    key: str = ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs `switchboard ARGS...` in a subprocess with the server's environment."""
        return subprocess.run(
            [sys.executable, "-m", "switchboard", *args], env=self.env, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def create_key(self, *args: str) -> str:
        """The secret of a key made by `switchboard keys create ARGS...`."""
        return self.cli("keys", "create", *args).stdout.strip().splitlines()[-1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    workdir: Path,
    upstream_url: str,
    database_url: str,
    workers: int = 2,
    models: list[dict[str, Any]] | None = None,
    routing: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
) -> Server:
    """Start `switchboard serve` with its own configuration file (plus `models` and `routing`
    values); waits until it answers."""
    config_path = workdir / "switchboard.toml"
    config = switchboard_config(upstream_url, database_url, workdir / "state")
    config["models"] += models or []
    config["routing"] |= routing or {}
    for name, values in (sections or {}).items():
        config[name] = config.get(name, {}) | values
    config_path.write_text(to_toml(config))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "GUNICORN"))}
    env |= {
        "SWITCHBOARD_CONFIG": str(config_path),
        "GUNICORN_CMD_ARGS": "--no-control-socket --graceful-timeout 20",
        "PYTHONPATH": str(ROOT),
    } | (extra_env or {})
    log_path = workdir / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchboard", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers)],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", database_url, env, log_path)
    up = wait_for(lambda: answers(server.base_url + "/healthz"), timeout=30)
    if not up:
        process.kill()
        raise RuntimeError("gunicorn did not start:\n" + server.log())
    return server


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def server(
    _fake_upstream: FakeUpstream,
    databases: DatabaseFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A real gunicorn running Switchboard (2 workers), shared by the integration tests."""
    database_url = databases.fresh("gunicorn")
    srv = start_server(tmp_path_factory.mktemp("gunicorn"), _fake_upstream.base_url, database_url)
    created = srv.cli("keys", "create", "--name", "integration", "--user", "bob", "--team", "blue")
    assert created.returncode == 0, created.stderr
    srv.key = created.stdout.strip().splitlines()[-1]
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of the session's own on 127.0.0.1 (skips when redis-server is missing)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    if not wait_for(up, timeout=10):
        process.kill()
        raise RuntimeError("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)
