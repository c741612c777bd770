import json

import pytest
from torch import nn

from explr.audit_report import AuditReport, Group, ParamVerdict
from explr.errors import ExplrError
from explr.lock import SCHEMA, Structure, lock_diff, read_lock, write_lock
from explr.rules.lock import compare_lock


class Net(nn.Module):
    def __init__(self, bias=False, bn=True, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, bias=bias)
        self.bn = nn.BatchNorm2d(width) if bn else nn.Identity()
        self.fc = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def audit_of(model, si=("conv.weight",), groups=(("conv.weight",),)) -> AuditReport:
    """A hand-made report with the given SI set (the lock only records what the audit decided)."""
    params = [ParamVerdict(n, tuple(p.shape), p.numel(), n in si, n in si, None, "normalized by bn" if n in si
                           else "model output") for n, p in model.named_parameters()]
    return AuditReport("net.py", params, [Group(i, tuple(g), ("bn",)) for i, g in enumerate(groups)])


@pytest.fixture
def lock(tmp_path):
    model = Net()
    return write_lock(audit_of(model), model, tmp_path / "explr.lock.json")


def test_round_trip_records_si_groups_and_fingerprint(lock):
    assert lock.si == ("conv.weight",) and lock.groups == (("conv.weight",),)
    assert lock.fingerprint == Structure.of(Net()).sha256
    assert lock.structure.parameters["conv.weight"] == (8, 3, 3, 3) and lock.structure.modules["bn"] == "BatchNorm2d"
    data = json.loads(lock.path.read_text())
    assert data["schema"] == SCHEMA and data["model"] == "net.py"
    # one entry per line: a changed parameter is a one-line git diff
    assert '    ["conv.weight", [8, 3, 3, 3]],' in lock.path.read_text().splitlines()


def test_fingerprint_depends_on_shapes_and_types_not_values():
    assert Structure.of(Net()).sha256 == Structure.of(Net()).sha256
    assert Structure.of(Net()).sha256 != Structure.of(Net(width=16)).sha256
    assert Structure.of(Net()).sha256 != Structure.of(Net(bn=False)).sha256


def test_same_model_matches(lock):
    model = Net()
    lock.check_model(model)
    assert compare_lock(lock, audit_of(model), model) == []


def test_added_bias_is_reported_with_its_verdict(lock):
    model = Net(bias=True)
    (f,) = compare_lock(lock, audit_of(model), model)
    assert f.code == "EXP301" and f.message == "+ conv.bias [8] (new, not SI) (since explr.lock.json)"
    with pytest.raises(ExplrError, match=r"\+ conv.bias \[8\] \(new\)") as info:
        lock.check_model(model)
    assert str(lock.path) in str(info.value) and info.value.exit_code == 2


def test_removed_norm_is_one_line_and_si_change_is_explained(lock):
    model = Net(bn=False)
    report = audit_of(model, si=(), groups=())
    assert lock_diff(lock, report, model) == [
        "~ bn: BatchNorm2d -> Identity",
        "- bn.bias removed", "- bn.weight removed",
        "si changed: conv.weight SI -> not SI (model output)",
    ]


def test_removed_module_folds_its_parameters(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    lock = write_lock(audit_of(model, si=(), groups=()), model, tmp_path / "l.json")
    smaller = nn.Sequential(nn.Conv2d(3, 4, 3))
    assert lock_diff(lock, audit_of(smaller, si=(), groups=()), smaller) == ["- 1 removed (BatchNorm2d)"]


def test_shape_and_group_changes(tmp_path):
    model = Net()
    report = audit_of(model, si=("conv.weight", "bn.weight", "bn.bias"),
                      groups=(("conv.weight",), ("bn.weight", "bn.bias")))
    lock = write_lock(report, model, tmp_path / "l.json")
    joined = audit_of(model, si=("conv.weight", "bn.weight", "bn.bias"), groups=(("conv.weight", "bn.weight", "bn.bias"),))
    assert lock_diff(lock, joined, model) == [
        "groups changed: locked [bn.bias, bn.weight] + [conv.weight]; now [bn.bias, bn.weight, conv.weight]"]
    wider = Net(width=16)
    lines = lock_diff(lock, audit_of(wider, si=("conv.weight", "bn.weight", "bn.bias"),
                                     groups=(("conv.weight",), ("bn.weight", "bn.bias"))), wider)
    assert "~ conv.weight shape [8, 3, 3, 3] -> [16, 3, 3, 3]" in lines and "~ fc.weight shape [2, 8] -> [2, 16]" in lines


@pytest.mark.parametrize("text, message", [
    ("{not json", r":1: corrupt lock file \(invalid JSON"),
    ('{"schema": "explr.lock/2"}', "newer than this explr understands"),
    ('{"schema": "explr.audit/1"}', "not an explr lock file"),
    ('[1, 2]', "not an explr lock file"),
    ('{"schema": "explr.lock/1", "si": "conv.weight"}', "'si' must be a list of parameter names"),
    ('{"schema": "explr.lock/1", "si": [], "groups": [[1]]}', "'groups' must be"),
    ('{"schema": "explr.lock/1", "si": [], "groups": []}', "'parameters/modules' must be"),
])
def test_bad_lock_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "explr.lock.json"
    path.write_text(text)
    with pytest.raises(ExplrError, match=message) as info:
        read_lock(path)
    assert str(path) in str(info.value) and info.value.exit_code == 2


def test_hand_edited_lock_is_detected(lock):
    lock.path.write_text(lock.path.read_text().replace("[8, 3, 3, 3]", "[9, 3, 3, 3]"))
    with pytest.raises(ExplrError, match="edited by hand"):
        read_lock(lock.path)


def test_missing_lock_and_unwritable_path(tmp_path):
    with pytest.raises(ExplrError, match="no such lock file; create it with `explr audit MODEL --write-lock"):
        read_lock(tmp_path / "absent.json")
    model = Net()
    with pytest.raises(ExplrError, match="cannot write the lock file"):
        write_lock(audit_of(model), model, tmp_path / "no" / "dir" / "l.json")
    assert not (tmp_path / "no").exists()


def test_added_block_is_one_line(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    lock = write_lock(audit_of(model, si=(), groups=()), model, tmp_path / "l.json")
    bigger = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4),
                           nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4)))
    assert lock_diff(lock, audit_of(bigger, si=(), groups=()), bigger) == ["+ 2 (Sequential, new module)"]
