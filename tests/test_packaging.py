"""The wheel installs and runs: built from this tree, installed into a fresh virtual environment
outside the repository, and used from an empty directory as a production host would.

Packaging does not depend on the database, so these run in the SQLite pass only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, USE_POSTGRES, answers, free_port, read_calls, wait_for
from tests.helpers import openai_sdk

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(USE_POSTGRES, reason="packaging is database-independent: SQLite pass"),
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this source tree, built by pip (with its own build environment)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    [built] = out.glob("switchboard-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment (no access to this tree) with the wheel installed; its
    bin directory."""
    where = tmp_path_factory.mktemp("venv") / "env"
    venv.create(where, with_pip=True)
    bin_dir = where / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    return bin_dir


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_has_no_top_level_app_package(wheel):
    tops = {name.split("/", 1)[0] for name in _names(wheel)}
    assert "app" not in tops
    assert all(top == "switchboard" or top.endswith(".dist-info") for top in tops)


def test_the_wheel_holds_every_module_migrations_and_templates(wheel):
    names = set(_names(wheel))
    modules = {
        "switchboard/" + str(path.relative_to(ROOT / "app"))
        for path in (ROOT / "app").rglob("*")
        if path.is_file() and path.suffix in (".py", ".html")
    }
    migrations = {
        "switchboard/migrations/" + str(path.relative_to(ROOT / "migrations"))
        for path in (ROOT / "migrations").rglob("*")
        if path.is_file() and path.suffix in (".py", ".mako")
    }
    assert modules - names == set()
    assert migrations - names == set()
    assert "switchboard/gunicorn_conf.py" in names


@pytest.fixture
def host(installed: Path, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """An empty directory and an environment naming only what a production host sets."""
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "GUNICORN"))}
    env.pop("PYTHONPATH", None)
    env |= {
        "PATH": f"{installed}{os.pathsep}{env.get('PATH', '')}",
        "SWITCHBOARD_DATABASE_URL": f"sqlite:///{workdir / 'switchboard.db'}",
        "GUNICORN_CMD_ARGS": "--no-control-socket",
    }
    yield env, workdir


def _run(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_installed_package_is_not_this_tree(installed, host):
    env, workdir = host
    found = _run(env, workdir, str(installed / "python"), "-c",
                 "import switchboard; print(switchboard.__file__)")  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert str(installed.parent) in found.stdout
    assert str(ROOT) not in found.stdout


def test_upgrade_create_a_key_and_serve_from_an_empty_directory(installed, host):
    env, workdir = host
    upgraded = _run(env, workdir, str(installed / "switchboard"), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    created = _run(env, workdir, str(installed / "python"), "-m", "switchboard",
                   "keys", "create", "--name", "from-the-wheel")  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    port = free_port()
    log_path = workdir.parent / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(installed / "switchboard"), "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "1"],
            env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30), (
            log_path.read_text(errors="replace")
        )
        client = openai_sdk(f"http://127.0.0.1:{port}/v1", secret)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "packaged hello"}]
        )
        assert reply.choices[0].message.content == "packaged hello"
    finally:
        server.terminate()
        server.wait(timeout=30)
    [row] = read_calls(env["SWITCHBOARD_DATABASE_URL"], key_name="from-the-wheel")
    assert (row["endpoint"], row["outcome"], row["provider"]) == (
        "/v1/chat/completions", "ok", "mock",
    )  # fmt: skip
    assert row["total_tokens"] > 0
