"""The ``taskq`` command line as parsed: which command has which option, help text,
URLs and settings from options. Nothing here starts a server or sends a request."""

from __future__ import annotations

import argparse

import pytest

from entrypoints.cli import build_parser, main
from entrypoints.cli.client import server_url
from entrypoints.cli.common import ConfigError
from entrypoints.cli.server import settings_for
from taskq.config import normalise_url
from taskq.errors import InvalidBaseURL

STORE = {"--backend", "--sqlite-path"}
LISTEN = {"--host", "--port", "--insecure"}
WORKERS = {"--workers"}
CONNECTION = {"--url", "--api-key"}
PAGE = {"--limit", "--cursor"}
SUBMIT = {"--max-attempts", "--timeout-seconds", "--delay-seconds", "--run-at"}

OPTIONS = {
    "serve": STORE | LISTEN | WORKERS,
    "api": STORE | LISTEN,
    "worker": STORE | WORKERS | {"--metrics-port"},
    "init": set(),
    "reconcile": STORE,
    "vacuum": STORE,
    "submit": CONNECTION | SUBMIT | {"--idempotency-key", "--json", "--wait"},
    "status": CONNECTION,
    "list": CONNECTION | PAGE | {"--status"},
    "cancel": CONNECTION,
    "retry": CONNECTION | {"--max-attempts"},
    "dead-letters": CONNECTION | PAGE,
    "redrive": CONNECTION | {"--type", "--limit", "--per-second"},
    "dead-letter-messages": CONNECTION | {"--limit"},
    "drop-dead-letter": CONNECTION,
    "resend-dead-letter": CONNECTION,
    "resend-dead-letters": CONNECTION | {"--limit"},
    "schedules": set(),  # its actions (list, add, delete) take CONNECTION
    "metrics": CONNECTION,
    "workers": CONNECTION,
    "types": CONNECTION,
}
"""Every command and the options it acts on, and no other."""
SERVER_COMMANDS = ["serve", "api", "worker", "init", "reconcile", "vacuum"]


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def options(command: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in command._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
        if option.startswith("--")
    }


def test_every_command_has_exactly_the_options_it_acts_on() -> None:
    assert {name: options(command) for name, command in commands().items()} == OPTIONS


def test_every_command_and_every_argument_has_help() -> None:
    missing = [f"taskq {action.dest}" for action in build_parser()._actions if not action.help]
    for name, command in commands().items():
        if not command.description:
            missing.append(f"taskq {name}")
        missing += [
            f"taskq {name} {action.dest}"
            for action in command._actions
            if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
        ]

    assert missing == []


def test_the_root_help_tells_server_commands_from_client_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert f"server commands: {', '.join(SERVER_COMMANDS)}\n" in out
    client = [name for name in OPTIONS if name not in SERVER_COMMANDS]
    assert f"client commands: {', '.join(client)}\n" in out


@pytest.mark.parametrize("command", list(OPTIONS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    assert f"usage: taskq {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "refused", "taken_by"),
    [
        (["worker", "--port", "8081"], "--port 8081", "serve, api"),
        (["worker", "--host=0.0.0.0"], "--host=0.0.0.0", "serve, api"),
        (["api", "--workers", "3"], "--workers 3", "serve, worker"),
        (["init", "--backend", "aws"], "--backend aws", "serve, api, worker, reconcile, vacuum"),
        (["status", "x", "--backend", "memory"], "--backend memory", "serve, api, worker"),
        (["serve", "--url", "h:1"], "--url h:1", "submit, status, list"),
        (["vacuum", "--api-key", "k"], "--api-key k", "submit, status"),
    ],
)
def test_an_option_where_it_does_not_act_is_refused_naming_who_takes_it(
    argv: list[str], refused: str, taken_by: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    error = capsys.readouterr().err.splitlines()[-1]
    assert exited.value.code == 2
    assert error.startswith(f"taskq {argv[0]}: error: unrecognized arguments: {refused} (")
    option = refused.split("=")[0].split()[0]
    assert f"{option} is an option of {taken_by}" in error


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("taskq.internal:9000", "http://taskq.internal:9000"),
        (":8081", "http://127.0.0.1:8081"),
        ("localhost", "http://localhost"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://taskq.example.com", "https://taskq.example.com"),
        ("https://gateway.example.com/taskq/", "https://gateway.example.com/taskq"),
    ],
)
def test_url_without_a_scheme_is_http_and_with_one_is_kept(given: str, url: str) -> None:
    assert normalise_url(given, source="--url") == url


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("ftp://files.example.com", "the scheme should be http or https"),
        ("localhost:http", "not a URL (Invalid port: 'http')"),
        ("localhost:70000", "the port should be between 1 and 65535"),
        ("http://", "no host"),
        ("localhost:8080/?x=1", "a server URL has no query or fragment"),
    ],
)
def test_a_bad_url_is_refused_naming_it(given: str, problem: str) -> None:
    with pytest.raises(InvalidBaseURL) as error:
        normalise_url(given, source="--url")

    assert str(error.value) == (
        f"--url={given!r}: {problem}; give http(s)://host:port, host:port or :port"
    )


def test_a_bad_url_is_one_line_and_exit_2_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["status", "some-id", "--url", "ftp://h"])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "taskq: --url='ftp://h': the scheme should be http or https; "
        "give http(s)://host:port, host:port or :port"
    ]


def test_without_url_the_server_is_loopback_on_PORT(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["metrics"])
    monkeypatch.setenv("PORT", "9123")
    assert server_url(args) == "http://127.0.0.1:9123"

    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(ConfigError, match=r"^PORT=':abc': not a URL"):
        server_url(args)

    monkeypatch.delenv("PORT")
    assert server_url(args) == "http://127.0.0.1:8080"


def test_options_override_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    parser = build_parser()
    argv = ["serve", "--backend", "memory", "--sqlite-path", "x.db", "--host", "::1"]

    settings = settings_for(parser.parse_args([*argv, "--port", "9001", "--workers", "7"]))
    from_environment = settings_for(parser.parse_args(["serve"]))

    assert (settings.backend, settings.sqlite_path, settings.host) == ("memory", "x.db", "::1")
    assert (settings.port, settings.worker_count) == (9001, 7)
    assert from_environment.port == 9000


def test_a_bad_option_value_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["serve", "--port", "70000"])

    with pytest.raises(ConfigError) as error:
        settings_for(args)

    assert str(error.value) == "PORT=70000: should be less than or equal to 65535"


def test_insecure_flag_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKQ_INSECURE", raising=False)
    parser = build_parser()

    assert settings_for(parser.parse_args(["serve", "--insecure"])).insecure is True
    assert settings_for(parser.parse_args(["api"])).insecure is False
