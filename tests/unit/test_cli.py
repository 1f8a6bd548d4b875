"""The console script exists and answers --help / --version as installed."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cxpulse
from cxpulse.cli import build_parser

BIN = Path(sys.executable).parent / "cxpulse"


def test_version_matches_package() -> None:
    out = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"cxpulse {cxpulse.__version__}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_every_subcommand_has_help_and_a_handler() -> None:
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, check=True)
    assert "usage: cxpulse" in out.stdout
    for name, sub_parser in _subparsers().items():
        assert name in out.stdout
        sub = subprocess.run([str(BIN), name, "--help"], capture_output=True, text=True)
        assert sub.returncode == 0, sub.stderr
        assert callable(sub_parser.get_default("func")), name
