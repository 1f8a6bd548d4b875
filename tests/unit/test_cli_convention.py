"""One CLI convention: the same flag name for the same thing in every command, help
text on every flag (with its default where it has one)."""

from __future__ import annotations

import argparse

import pytest
from cxpulse import cliargs
from cxpulse.cli import build_parser

#: concept -> the one flag name; the other spellings once in use must not come back
ONE_NAME = {
    "--bootstrap-servers": ("--bootstrap", "--kafka", "--broker"),
    "--topic-tickets": ("--tickets-topic",),
    "--topic-surveys": ("--surveys-topic",),
    "--duration": ("--days", "--hours"),  # simulated span: one duration, `7d`
}
#: flags whose value is a length of time: the one duration format, never a bare number
DURATION_FLAGS = {"--duration", "--refresh", "--rotate", "--incident-after",
                  "--incident-length", "--incident-every"}


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_one_flag_name_per_concept() -> None:
    kafka_commands = 0
    for name, cmd in commands().items():
        flags = {s for a in cmd._actions for s in a.option_strings}
        for right, wrongs in ONE_NAME.items():
            assert not flags & set(wrongs), (name, flags & set(wrongs), right)
        kafka_commands += "--bootstrap-servers" in flags
    assert kafka_commands >= 4  # worker, exporter, replay, simulate


def test_every_flag_has_help_with_its_default() -> None:
    for name, cmd in commands().items():
        text = cmd.format_help()
        for action in cmd._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            assert action.help, (name, action.option_strings)
            if action.default not in (None, False, [], argparse.SUPPRESS):
                fmt = cmd.formatter_class(prog=name)
                assert "default" in (fmt._get_help_string(action) or ""), (  # type: ignore[attr-defined]
                    name, action.option_strings)  # fmt: skip
        assert "usage:" in text


def test_every_length_of_time_is_one_duration_format() -> None:
    seen = set()
    for name, cmd in commands().items():
        for action in cmd._actions:
            flags = set(action.option_strings) & DURATION_FLAGS
            if flags:
                seen |= flags
                assert action.type in (cliargs.duration_ms, cliargs.duration_ms_or_zero), (
                    name, flags, action.type)  # fmt: skip
    assert seen == DURATION_FLAGS, seen


@pytest.mark.parametrize("argv", [
    ["wall", "--refresh", "5"], ["wall", "--rotate", "15"], ["top", "--refresh", "0s"],
    ["demo", "--duration", "7"],
    ["simulate", "--duration", "1 day"], ["demo", "--incident-after", "1y"],
])  # fmt: skip
def test_a_bad_duration_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"cxpulse {argv[0]}: error: argument {argv[1]}: bad duration:" in err, err


def test_durations_read_as_milliseconds() -> None:
    args = build_parser().parse_args(["wall", "--refresh", "1m30s"])
    assert args.refresh == 90_000
    assert build_parser().parse_args(["wall"]).rotate == 15_000  # the default, parsed
    args = build_parser().parse_args(["demo", "--duration", "2d", "--incident-every", "0"])
    assert (args.duration, args.incident_every) == (2 * 86_400_000, 0)
    assert build_parser().parse_args(["top"]).refresh == 10_000  # the default, parsed
