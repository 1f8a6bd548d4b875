"""One CLI convention: the same flag name for the same thing in every command, help
text on every flag (with its default where it has one)."""

from __future__ import annotations

import argparse

from stream.cli import build_parser

#: concept -> the one flag name; the other spellings once in use must not come back
ONE_NAME = {
    "--bootstrap-servers": ("--bootstrap", "--kafka", "--broker"),
    "--topic-tickets": ("--tickets-topic",),
    "--topic-surveys": ("--surveys-topic",),
}


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
                assert "default" in cmd.formatter_class(name)._get_help_string(action), (
                    name, action.option_strings)  # fmt: skip
        assert "usage:" in text
