"""The one reader of users' YAML files (settings, targets, mapping, web config):
one line, the file named, never the file's text (a password's line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cxpulse.core.targets import TargetsError
from cxpulse.helpdesks.mapping import MappingError, load_mapping
from cxpulse.settings.load import load_targets_file
from cxpulse.web.server import WebConfigError, load_web_config
from cxpulse.yamlfile import YamlFileError, read_yaml_mapping

SECRET = "hunter2-very-secret"


def test_syntax_error_names_line_and_column_but_not_the_text(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text(f"a: 1\nsasl_password: [{SECRET}\n")
    with pytest.raises(YamlFileError) as info:
        read_yaml_mapping(f)
    msg = str(info.value)
    assert str(f) in msg and "not valid YAML: line " in msg
    assert SECRET not in msg and "\n" not in msg


def test_aliases_quoting_a_token_are_hidden(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text(f"password: *{SECRET}\n")
    with pytest.raises(YamlFileError) as info:
        read_yaml_mapping(f)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", {}), ("# only a comment\n", {}), ("1: a\nb: 2\n", {"1": "a", "b": 2})],
)
def test_mappings_and_empty_files(tmp_path: Path, text: str, expected: dict[str, object]) -> None:
    f = tmp_path / "c.yml"
    f.write_text(text)
    assert read_yaml_mapping(f) == expected


@pytest.mark.parametrize(("content", "expected"), [(b"- a\n", "must hold a mapping, not list"),
                                                   (b"\xff\xfe: 1\n", "not UTF-8 text")])
def test_not_a_mapping_or_not_text(tmp_path: Path, content: bytes, expected: str) -> None:
    f = tmp_path / "c.yml"
    f.write_bytes(content)
    with pytest.raises(YamlFileError, match=expected):
        read_yaml_mapping(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match=r"cannot read .*No such file"):
        read_yaml_mapping(tmp_path / "absent.yml")


def test_every_reader_uses_it_and_keeps_its_own_error_and_prefix(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text(f"x: [{SECRET}\n")  # unclosed: the parser reaches the end, line 2
    for load, error, prefix in [
        (load_mapping, MappingError, "mapping_file: "),
        (load_web_config, WebConfigError, "web_config_file: "),
        (load_targets_file, TargetsError, ""),
    ]:
        with pytest.raises(error) as info:
            load(str(f))  # type: ignore[operator]
        msg = str(info.value)
        assert msg.startswith(f"{prefix}{f} is not valid YAML: line 2, column 1"), msg
        assert SECRET not in msg
