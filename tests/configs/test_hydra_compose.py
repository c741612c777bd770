"""A primary config with a defaults list is composed by Hydra's compose API; without hydra-core, one line."""
import sys

import pytest

from explr.configs.hydra_compose import composed
from explr.configs.source import ConfigSource
from explr.errors import ConfigError


def _primary(tmp_path):
    (tmp_path / "optim").mkdir()
    (tmp_path / "optim" / "sgd.yaml").write_text("_target_: torch.optim.SGD\nlr: 0.1\n")
    (tmp_path / "main.yaml").write_text("# my run\ndefaults:\n  - optim: sgd\n  - _self_\ntrainer: {max_epochs: 3}\n")
    return ConfigSource.load(tmp_path / "main.yaml")


def test_composed_by_hydra_keeps_the_primary_comments(tmp_path):
    source = composed(_primary(tmp_path))
    assert source.composed and source.data["optim"]["lr"] == 0.1 and "defaults" not in source.data
    assert "# my run" in source.text and source.location(("optim", "lr")).line is None  # not a line of main.yaml


def test_plain_config_is_left_alone(tmp_path):
    (tmp_path / "c.yaml").write_text("a: 1\n")
    source = ConfigSource.load(tmp_path / "c.yaml")
    assert composed(source) is source


def test_without_hydra_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "hydra", None)
    with pytest.raises(ConfigError, match=r"main.yaml:2: a config with a defaults list is composed by Hydra: "
                                          r"install hydra-core \(pip install 'explr\[frameworks\]'\)"):
        composed(_primary(tmp_path))
