"""OmegaConf interpolations resolved by omegaconf in place; what cannot be resolved stays marked, with why."""
import sys

from explr.configs.interpolation import Unresolved, unresolved_in
from explr.configs.source import ConfigSource

TEXT = """\
optim: {lr: 0.1, milestones: [3, 6]}
optimizer:
  lr: ${optim.lr}
  milestones: ${optim.milestones}
  rel: ${.lr}
  name: run-${optim.lr}
  odd: ${mine:x}
  todo: ???
"""


def test_values_resolve_as_omegaconf_resolves_them_keeping_lines():
    source = ConfigSource.parse(TEXT, "t.yaml")
    node = source.data["optimizer"]
    assert (node["lr"], node["milestones"], node["rel"], node["name"]) == (0.1, [3, 6], 0.1, "run-0.1")
    assert source.where(("optimizer", "milestones")) == "t.yaml:4"


def test_unresolvable_values_are_marked_and_found():
    source = ConfigSource.parse(TEXT, "t.yaml")
    odd, todo = source.data["optimizer"]["odd"], source.data["optimizer"]["todo"]
    assert isinstance(odd, Unresolved) and "custom resolver" in odd.reason
    assert isinstance(todo, Unresolved) and "mandatory" in todo.reason
    assert unresolved_in(source.data["optimizer"]) == (("odd",), odd)


def test_without_omegaconf_every_interpolation_says_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "omegaconf", None)  # `import omegaconf` now raises ImportError
    source = ConfigSource.parse(TEXT, "t.yaml")
    lr = source.data["optimizer"]["lr"]
    assert isinstance(lr, Unresolved) and "pip install 'explr[frameworks]'" in lr.reason
