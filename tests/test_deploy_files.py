"""The files of deploy/ (docs/deployment.md): the systemd unit's commands are ones the
`switchboard` command accepts, and systemd reads the unit. nginx.conf runs in
tests/test_behind_nginx.py."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess

import click
import pytest
from switchboard.cli.main import cli

from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "switchboard.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_units_commands_are_switchboard_commands_it_accepts():
    service = unit()["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        program, *args = shlex.split(service[key])
        assert program.endswith("/bin/switchboard")
        # click parses the arguments as the installed command would (no gunicorn started):
        # a wrong option or a missing subcommand raises here.
        ctx = click.Context(cli)
        command = cli.get_command(ctx, args[0])
        if command is not None and hasattr(command, "get_command") and len(args) > 1:
            command = command.get_command(ctx, args[1])  # a group: `config check`
            args = args[1:]
        assert command is not None, service[key]
        parsed = command.make_context(args[0], args[1:])
        assert parsed.params is not None
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(service["LimitNOFILE"]) >= 65536
    # Longer than gunicorn's graceful timeout (300 s), so calls finish before systemd kills.
    assert int(service["TimeoutStopSec"]) > 300


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_reads_the_unit():
    done = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    # The one complaint allowed: the virtualenv of the unit is not installed on this machine.
    problems = [line for line in done.stderr.splitlines()
                if line.strip() and "is not executable" not in line]  # fmt: skip
    assert problems == []
