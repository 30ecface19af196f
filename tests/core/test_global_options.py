"""`--config PATH` and `--log-level LEVEL` before or after any command mean the same (DESIGN.md's contract)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_proxy.cli import build_parser

PY = sys.executable
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "pytest", "version": "1"}}})
CONFIG = '[user]\nemail = "alice@example.com"\n[secrets]\nstore = "file"\n'
WITH_UPSTREAM = CONFIG + '[upstreams.one]\nkind = "mcp"\ncommand = "/bin/false"\n'


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A proxy home with no config of its own: a command that finds a config found it through --config."""
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
    return {**env, "MCP_ACCESS_PROXY_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def config_file(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "elsewhere" / "proxy.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def proxy(home: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "mcp_proxy", *argv], input=stdin, capture_output=True, text=True,
                          timeout=60, env=env_for(home))


def initialize_reply(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()  # stdout carries protocol and nothing else
    return json.loads(line)


# -- the real process ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["after", "before"])
def test_serve_takes_config_before_or_after_the_command(tmp_path, home, order):
    cfg = config_file(tmp_path)
    argv = ["serve", "--config", str(cfg)] if order == "after" else ["--config", str(cfg), "serve"]
    done = proxy(home, *argv, stdin=INITIALIZE + "\n")
    assert initialize_reply(done)["result"]["serverInfo"]["name"] == "mcp-access-proxy"
    assert f"config {cfg}" in done.stderr


def test_tools_json_with_config_after_the_command(tmp_path, home):
    cfg = config_file(tmp_path, WITH_UPSTREAM)
    after = proxy(home, "tools", "--json", "--config", str(cfg))
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["unknown_upstreams"] == ["one"]
    assert after.stdout == proxy(home, "--config", str(cfg), "tools", "--json").stdout


def test_sub_command_takes_config_after_the_action(tmp_path, home):
    cfg = config_file(tmp_path)
    after = proxy(home, "policy", "status", "--config", str(cfg))
    before = proxy(home, "--config", str(cfg), "policy", "status")
    assert after.returncode == before.returncode == 0, after.stderr
    assert "ungoverned" in after.stdout and after.stdout == before.stdout
    # Between the command and its action, too.
    assert proxy(home, "policy", "--config", str(cfg), "status").stdout == before.stdout


def test_log_level_after_the_command_takes_effect(tmp_path, home):
    cfg = config_file(tmp_path)
    debug = proxy(home, "serve", "--config", str(cfg), "--log-level", "debug", stdin=INITIALIZE + "\n")
    initialize_reply(debug)
    assert "DEBUG" in debug.stderr
    quiet = proxy(home, "serve", "--log-level", "error", "--config", str(cfg), stdin=INITIALIZE + "\n")
    initialize_reply(quiet)
    assert "DEBUG" not in quiet.stderr and "serving; config" not in quiet.stderr


@pytest.mark.parametrize("argv", [["serve"], ["tools"], ["policy", "status"], ["secret", "set"],
                                  ["install"], ["audit", "tail"], ["login"]])
def test_help_of_commands_lists_the_global_options(home, argv):
    done = proxy(home, *argv, "--help")
    assert done.returncode == 0, done.stderr
    assert "--config PATH" in done.stdout and "--log-level" in done.stdout


@pytest.mark.parametrize("argv", [["serve"], ["tools", "--json"], ["policy", "status"]])
def test_a_bad_log_level_after_the_command_is_a_usage_error(tmp_path, home, argv):
    done = proxy(home, *argv, "--log-level", "loud", "--config", str(config_file(tmp_path)),
                 stdin=INITIALIZE + "\n")
    assert done.returncode == 2 and done.stdout == ""
    assert "usage:" in done.stderr and "invalid choice: 'loud'" in done.stderr


def test_a_missing_value_after_the_command_is_a_usage_error(home):
    done = proxy(home, "tools", "--config")
    assert done.returncode == 2 and "--config" in done.stderr and "expected one argument" in done.stderr


# -- the parser ------------------------------------------------------------------------------------------------

def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_every_command_and_action_accepts_the_global_options():
    for path, parser in _parsers(build_parser()):
        options = {o for a in parser._actions for o in a.option_strings}
        assert {"--config", "--log-level"} <= options, f"`{' '.join(path)}` lacks a global option"


@pytest.mark.parametrize("argv", [
    ["--config", "A", "--log-level", "debug", "tools"],
    ["tools", "--config", "A", "--log-level", "debug"],
    ["--config", "A", "tools", "--log-level", "debug"],
    ["--log-level", "debug", "tools", "--config", "A"],
])
def test_before_and_after_parse_alike(argv):
    args = build_parser().parse_args(argv)
    assert (args.command, args.config, args.log_level) == ("tools", "A", "debug")


def test_a_value_before_the_command_is_not_reset_by_the_command():
    args = build_parser().parse_args(["--config", "A", "policy", "status", "--json"])
    assert args.config == "A" and args.log_level is None


def test_unset_global_options_are_none_everywhere():
    args = build_parser().parse_args(["audit", "tail"])
    assert args.config is None and args.log_level is None


def test_the_value_given_last_wins():
    assert build_parser().parse_args(["--config", "A", "serve", "--config", "B"]).config == "B"


def test_no_command_with_options_means_serve():
    from mcp_proxy.__main__ import _is_serve

    assert _is_serve(["--config", "A"]) and _is_serve(["--log-level", "debug", "--config", "A"])
    assert _is_serve(["serve", "--config", "A"]) and _is_serve(["--config", "A", "serve"])
    assert not _is_serve(["tools", "--config", "A"]) and not _is_serve(["serve", "--help"])


def test_install_config_after_the_command_is_the_proxy_config(tmp_path, home):
    # `--config` after `install` is the global option (the proxy's config the client starts it with), as before
    # the command; the client's file is --config-file.
    client_file = tmp_path / "mcp.json"
    cfg = config_file(tmp_path)
    done = proxy(home, "install", "cursor", "--config-file", str(client_file), "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    entry = json.loads(client_file.read_text(encoding="utf-8"))["mcpServers"]["mcp-access-proxy"]
    assert entry["args"] == ["--config", str(cfg)]
    assert cfg.read_text(encoding="utf-8") == CONFIG


# -- `serve` read by a parser of `serve` alone (cli._parse_serve) ------------------------------------------------

@pytest.mark.parametrize(("argv", "config", "log_level"), [
    ([], None, None), (["serve"], None, None), (["--config", "A"], "A", None), (["--config", "A", "serve"], "A", None),
    (["serve", "--config", "A"], "A", None), (["--log-level", "debug", "--config", "A"], "A", "debug"),
    (["--config", "A", "serve", "--config", "B", "--log-level", "error"], "B", "error"),
    (["--conf", "A"], "A", None),  # argparse's abbreviations: the same options, so the same meaning
])
def test_serve_alone_reads_serve_as_every_command_does(argv, config, log_level):
    from mcp_proxy.cli import _parse, _parse_serve

    lean, full = _parse_serve(argv), _parse(build_parser(), argv)
    assert lean is not None
    assert (lean.command, lean.config, lean.log_level, lean.func) == \
        (full.command, full.config, full.log_level, full.func) == ("serve", config, log_level, full.func)


@pytest.mark.parametrize("argv", [["--bogus"], ["serve", "extra"], ["--log-level", "loud"], ["tools"],
                                  ["serve", "--config"]])
def test_anything_but_serve_is_left_to_the_parser_of_every_command(argv):
    from mcp_proxy.cli import _parse_serve

    assert _parse_serve(argv) is None


def test_serve_does_not_load_the_other_commands(tmp_path):
    # What `serve` skips is what it gains: the other commands' modules stay unloaded.
    probe = ("import sys; from mcp_proxy.cli import _parse_serve; assert _parse_serve(['--config', 'A']); "
             "print(sorted(m for m in sys.modules if m.startswith('mcp_proxy.cli.')))")
    done = subprocess.run([PY, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['mcp_proxy.cli._args', 'mcp_proxy.cli.serve_cmd']"


@pytest.mark.parametrize("argv", [["--log-level", "loud"], ["serve", "extra"], ["--bogus"]])
def test_a_mistake_in_serves_arguments_is_told_as_before(home, capsys, argv):
    done = proxy(home, *argv)
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == capsys.readouterr().err != ""
