"""Reading a user's YAML file: the one reader behind the settings file, targets.yaml,
the helpdesk mapping file and the web config file.

Each of them must say in one line what is wrong and where, and none may print
PyYAML's own message: it quotes the line the parser choked on, which in a
settings or web config file is as likely as not the password's line. Callers
prefix the setting that named the file (`mapping_file: ...`) and raise their own
error class, so every command keeps its documented exit code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml


class YamlFileError(ValueError):
    """One line naming the file and the problem (line and column for syntax errors)."""


def read_yaml_mapping(path: Path) -> dict[str, object]:
    """The file's top-level mapping (an empty file is an empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlFileError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise YamlFileError(f"cannot read {path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{path} is not valid YAML: {yaml_error_text(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise YamlFileError(f"{path} must hold a mapping, not {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's snippet of the offending line.

    `str(exc)` quotes the line it choked on, which in a settings file is as
    likely as not the `sasl_password:` line: printed to a terminal or a log
    collector, that leaks the secret. The line and column are enough to find it.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", None) or type(exc).__name__)
    # a few problems quote a token of the file ("found undefined alias 'x'":
    # a password starting with `*`); keep single characters, hide the rest
    problem = re.sub(r"'[^'\s]{2,}'", "'...'", problem)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
