"""The coding agents themselves through Switchboard (docs/clients.md): Codex CLI and Claude Code,
installed from npm at the team's versions (tests/agents/package.json), run offline against the
session's gunicorn in front of the fake upstream, configured exactly as docs/clients.md says;
and that page's SDK snippets, run as written. Each asserts the answer and the ledger rows.

Without the agents installed (`npm install --prefix tests/agents`) their tests skip, except in
CI (`CI=1`), where a missing agent is a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_calls
from tests.fake_formats import MESSAGES_USAGE, RESPONSES_USAGE

pytestmark = pytest.mark.integration
PAGE = ROOT / "docs" / "clients.md"
BIN = ROOT / "tests" / "agents" / "node_modules" / ".bin"
DOCUMENTED_URL = "http://localhost:8000"
RUN_SECONDS = 120


def block(label: str) -> str:
    """The code block that follows `<!-- tested: label -->` in docs/clients.md."""
    found = re.search(
        rf"<!-- tested: {re.escape(label)} -->\n```\w*\n(.*?)```", PAGE.read_text(), re.S
    )
    assert found, f"docs/clients.md has no block marked 'tested: {label}'"
    return found.group(1)


def exports(text: str, env: dict[str, str]) -> dict[str, str]:
    """The variables a block's `export NAME=value` lines set, expanded against `env`."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            value = shlex.split(value)[0] if value else ""
            result[name] = re.sub(r"\$(\w+)", lambda m: (env | result)[m.group(1)], value)
    return result


def command(text: str) -> list[str]:
    """The block's one command line that is not an `export`."""
    [line] = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("export ")]
    return shlex.split(line)


def agent(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI installs it with npm (see .ci/run)")
        pytest.skip(f"{name} is not installed (npm install --prefix tests/agents)")
    return path


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run an agent offline: only its own environment, no terminal, bounded in time."""
    base = {"PATH": f"{BIN}:{os.environ['PATH']}", "LANG": "C.UTF-8", "TERM": "dumb"}
    return subprocess.run(
        argv, env=base | env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=RUN_SECONDS,
    )  # fmt: skip


def new_rows(server, key_name: str) -> list[dict]:
    return [r for r in read_calls(server.database_url) if r["key_name"] == key_name]


def test_codex_cli_as_documented(server, upstream, tmp_path):
    codex = agent("codex")
    name = f"codex-{tmp_path.name}"
    key = server.create_key("--name", name)
    home, codex_home, work = (tmp_path / d for d in ("home", "codex", "work"))
    for folder in (home, codex_home, work):
        folder.mkdir()
    config = block("codex config.toml").replace(DOCUMENTED_URL, server.base_url)
    (codex_home / "config.toml").write_text(config)
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home)}
    env |= exports(block("codex command"), {}) | {"SWITCHBOARD_API_KEY": key}
    argv = command(block("codex command"))
    assert argv[0] == "codex"
    done = run([str(codex), *argv[1:]], env, work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hello from the fake." in done.stdout
    sent = [r for r in upstream.received if r.path == "/v1/responses"][-1]
    assert sent.body["model"] == "echo" and sent.body["stream"] is True
    assert {t["type"] for t in sent.body["tools"]} >= {"function"}
    rows = new_rows(server, name)
    assert [r["endpoint"] for r in rows] == ["/v1/responses"]
    [row] = rows
    assert (row["model"], row["outcome"], row["stream"]) == ("gpt-5.4", "ok", 1)
    assert row["prompt_tokens"] == RESPONSES_USAGE["input_tokens"]
    assert row["completion_tokens"] == RESPONSES_USAGE["output_tokens"]
    assert row["cost_usd"] > 0


def claude_env(server, key: str, home: Path) -> dict[str, str]:
    text = block("claude code environment").replace(DOCUMENTED_URL, server.base_url)
    return {"HOME": str(home)} | exports(text, {"SWITCHBOARD_API_KEY": key})


def test_claude_code_as_documented(server, upstream, tmp_path):
    claude = agent("claude")
    name = f"claude-{tmp_path.name}"
    key = server.create_key("--name", name)
    (tmp_path / "home").mkdir()
    env = claude_env(server, key, tmp_path / "home")
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    argv = command(block("claude code command"))
    assert argv[0] == "claude"
    done = run([str(claude), *argv[1:]], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hello from the fake." in done.stdout
    sent = [r for r in upstream.received if r.path.startswith("/v1/messages")]
    assert sent and sent[-1].path == "/v1/messages?beta=true"
    assert sent[-1].headers["anthropic-beta"]  # Claude Code's betas go along
    assert sent[-1].body["model"] == "echo"
    rows = new_rows(server, name)
    messages = [r for r in rows if r["endpoint"] == "/v1/messages"]
    assert messages and {r["outcome"] for r in rows} == {"ok"}
    assert {r["endpoint"] for r in rows} <= {"/v1/messages", "/v1/messages/count_tokens"}
    row = messages[-1]
    assert row["model"] == "claude-sonnet"
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (
        MESSAGES_USAGE["cache_read_input_tokens"], MESSAGES_USAGE["cache_creation_input_tokens"],
    )  # fmt: skip
    assert row["completion_tokens"] == MESSAGES_USAGE["output_tokens"]
    assert row["cost_usd"] > 0


def test_both_agents_answer_from_the_mock_model(server, tmp_path):
    """`serve --demo` answers the agents out of the box: the mock echoes their prompt."""
    codex, claude = agent("codex"), agent("claude")
    name = f"demo-{tmp_path.name}"
    key = server.create_key("--name", name)
    for folder in ("home", "codex"):
        (tmp_path / folder).mkdir()
    config = block("codex config.toml").replace(DOCUMENTED_URL, server.base_url)
    (tmp_path / "codex" / "config.toml").write_text(config.replace('"gpt-5.4"', '"mock"'))
    env = {"HOME": str(tmp_path / "home"), "CODEX_HOME": str(tmp_path / "codex"),
           "SWITCHBOARD_API_KEY": key}  # fmt: skip
    done = run([str(codex), "exec", "--skip-git-repo-check", "echo-codex-42"], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "echo-codex-42" in done.stdout
    env = claude_env(server, key, tmp_path / "home")
    env |= {k: "mock" for k in env if k.startswith("ANTHROPIC_") and k.endswith("MODEL")}
    done = run([str(claude), "-p", "echo-claude-42"], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "echo-claude-42" in done.stdout
    rows = new_rows(server, name)
    assert {r["endpoint"] for r in rows} >= {"/v1/responses", "/v1/messages"}
    assert {(r["model"], r["outcome"]) for r in rows} == {("mock", "ok")}


@pytest.mark.parametrize("label", ["openai sdk", "anthropic sdk"])
def test_the_sdk_snippets_run_as_written(server, tmp_path, label):
    name = f"snippet-{tmp_path.name}"
    key = server.create_key("--name", name)
    script = tmp_path / "snippet.py"
    script.write_text(block(label).replace(DOCUMENTED_URL, server.base_url))
    done = subprocess.run(
        [sys.executable, str(script)], env=os.environ | {"SWITCHBOARD_API_KEY": key},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hello from the fake" in done.stdout
    endpoints = sorted(r["endpoint"] for r in new_rows(server, name))
    expected = {
        "openai sdk": ["/v1/chat/completions", "/v1/embeddings"] + ["/v1/responses"] * 3,
        "anthropic sdk": ["/v1/messages", "/v1/messages", "/v1/messages/count_tokens"],
    }
    assert endpoints == expected[label]
    assert {r["outcome"] for r in new_rows(server, name)} == {"ok"}
