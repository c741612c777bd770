"""The format table: every row loads, detection says why, --format overrides, unknown formats list the table."""
from __future__ import annotations

import pytest

from explr.configs.formats import FORMATS, detect
from explr.configs.source import ConfigSource
from explr.errors import ConfigError
from tests.conftest import FIXTURES


@pytest.mark.parametrize("entry", FORMATS, ids=lambda e: e.name)
def test_every_row_has_a_matching_adapter(entry):
    adapter = entry.adapter()
    assert adapter.name == entry.name and callable(adapter.detect) and callable(adapter.read)
    assert entry.writes in ("rewrite", "inherit", "plan")
    has_rewrite = callable(getattr(adapter, "rewrite", None))
    if entry.writer is None:  # without a writer the adapter rewrites its own format
        assert has_rewrite == (entry.writes == "rewrite")
    else:  # a writer names a function that exists; the adapter then has no rewrite of its own
        module, _, function = entry.writer.partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function)) and not has_rewrite


@pytest.mark.parametrize("fmt", ["explr", "lightning", "hydra"])
def test_fixtures_detected_with_a_reason(fmt):
    for path in sorted((FIXTURES / "configs" / fmt).glob("*.yaml")):
        found = detect(ConfigSource.load(path))
        assert found.name == fmt, path
        assert found.reason


def test_format_flag_overrides_detection():
    source = ConfigSource.load(FIXTURES / "configs" / "hydra" / "cosine.yaml")
    assert detect(source, "lightning").name == "lightning"
    with pytest.raises(ConfigError, match="--format 'yaml' is not a known format; use one of: explr, lightning"):
        detect(source, "yaml")


def test_unrecognised_format_lists_what_was_looked_for():
    source = ConfigSource.parse("epochs: 3\nlearning_rate: 0.1\n", "mystery.yaml")
    with pytest.raises(ConfigError) as info:
        detect(source)
    message = str(info.value)
    assert message.startswith("mystery.yaml: unrecognised config format")
    for entry in FORMATS:
        assert f"{entry.name}: {entry.looks_for}" in message
    assert "--format" in message
