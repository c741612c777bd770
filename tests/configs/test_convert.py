"""The pipeline: JSON summary schema, exactness verdicts, SI sources, writing (atomic, in place only when asked)."""
from __future__ import annotations

import dataclasses
import os

import pytest

from explr.configs import formats
from explr.configs.adapter import ReadOptions
from explr.configs.api import convert, write_converted
from explr.configs.source import ConfigSource
from explr.errors import ConfigError, OutputError, UnsupportedError
from explr.schedule.closed_form import growth_per_epoch
from explr.schedule.phantom import SGDHyper, converted_lrs
from tests.conftest import FIXTURES

CIFAR = str(FIXTURES / "configs" / "lightning" / "cifar_resnet_step.yaml")
SOURCE_KEYS = {"lr", "momentum", "weight_decay", "nesterov", "milestones_iter", "gamma", "warmup_iters",
               "total_iters", "locations"}
PHASE_KEYS = {"start_iter", "end_iter", "base_lr", "lr_start", "lr_end", "growth_per_epoch"}


def test_json_summary_schema_and_values():
    converted = convert(CIFAR, iters_per_epoch=10)
    data = converted.to_json()
    assert set(data) == {"schema", "format", "source", "iters_per_epoch", "exact", "not_exact_because", "phases",
                         "horizons", "findings"}
    assert data["schema"] == "explr.convert/1" and data["format"] == "lightning" and data["exact"] is True
    assert set(data["source"]) == SOURCE_KEYS and data["source"]["milestones_iter"] == [1000, 1500]
    assert data["source"]["locations"]["lr"].endswith("cifar_resnet_step.yaml:21")
    assert [set(p) for p in data["phases"]] == [PHASE_KEYS] * 3
    assert [(p["start_iter"], p["end_iter"]) for p in data["phases"]] == [(0, 1000), (1000, 1500), (1500, 2000)]
    engine = [lr for lr, _ in converted_lrs(converted.plan.lr.lr_at, SGDHyper(0.9, 0.0, 5e-4), 2000)]
    assert data["phases"][1]["lr_start"] == engine[1000] and data["phases"][2]["lr_end"] == engine[1999]
    assert data["horizons"] and all("epoch" in h for h in data["horizons"].values())


def test_growth_per_epoch_is_the_blog_number():
    phases = convert(CIFAR).to_json()["phases"]  # 391 iterations/epoch at batch 128
    assert phases[0]["growth_per_epoch"] == pytest.approx(1.4812, abs=1e-4)
    assert phases[1]["growth_per_epoch"] == pytest.approx(growth_per_epoch(0.01, SGDHyper(0.9, 0, 5e-4), 391))


def test_approximate_lists_every_deviation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer: {max_epochs: 4, gradient_clip_val: 1.0}\nmodel: {}\noptimizer:\n"
                    "  class_path: torch.optim.SGD\n  init_args: {lr: 0.1, momentum: 0.9, nesterov: true}\n")
    with pytest.raises(UnsupportedError, match=r"c.yaml:5: no exact conversion: Nesterov.*\(and 1 more\)"):
        convert(str(path), iters_per_epoch=3)
    data = convert(str(path), iters_per_epoch=3, approximate=True).to_json()
    assert data["exact"] is False and len(data["not_exact_because"]) == 2
    assert "clipping" in data["not_exact_because"][1]
    # the reasons are the config rules' own findings (one source of truth), located at the config line
    found = {f["code"]: f for f in data["findings"]}
    assert {"EXP201", "EXP203"} <= set(found) and found["EXP201"]["location"].endswith("c.yaml:5")
    assert data["not_exact_because"][0].startswith(found["EXP201"]["message"])


def test_model_audit_decides_si_now():
    converted = convert(CIFAR, model=str(FIXTURES / "models" / "conv_bias_bn.py"))
    assert converted.si.how == "model" and "conv1.weight" in converted.si.names
    assert "fc.weight" not in converted.si.names and "bn2.weight" not in converted.si.names
    assert "si: [" in write_converted(converted).text or "- conv1.weight" in write_converted(converted).text


def test_model_and_lock_together_refused():
    with pytest.raises(ConfigError, match="only one of --model and --lock"):
        convert(CIFAR, model="m.py", lock="explr.lock.json")


def test_output_file_atomic_and_input_untouched(tmp_path):
    before = open(CIFAR).read()
    out = tmp_path / "converted.yaml"
    written = write_converted(convert(CIFAR), str(out))
    assert written.path == out and out.read_text() == written.text
    assert open(CIFAR).read() == before and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_in_place_only_when_asked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(open(CIFAR).read())
    converted = convert(str(path))
    with pytest.raises(ConfigError, match="pass --in-place"):
        write_converted(converted, str(path))
    written = write_converted(converted, in_place=True)
    assert written.path == path and "TEXPScheduler" in path.read_text()


def test_unwritable_output_writes_nothing(tmp_path):
    target = tmp_path / "missing-dir" / "out.yaml"
    with pytest.raises(OutputError, match=r"out.yaml: cannot write .*choose another -o path"):
        write_converted(convert(CIFAR), str(target))
    assert not target.parent.exists()


def test_plan_formats_get_the_explr_plan_generically(tmp_path, monkeypatch):
    """Any row marked "plan" (timm, detectron2, pycls) gets the explr-native plan and the lines to use it."""
    rows = tuple(dataclasses.replace(e, writes="plan") if e.name == "explr" else e for e in formats.FORMATS)
    monkeypatch.setattr(formats, "FORMATS", rows)
    config = tmp_path / "train.yaml"
    original = open(FIXTURES / "configs" / "explr" / "cifar_resnet_step.yaml").read()
    config.write_text(original)
    converted = convert(str(config), si=["conv1.weight"])
    written = write_converted(converted, in_place=True)
    assert written.path == tmp_path / "train.explr.yaml" and config.read_text() == original  # config untouched
    assert any("explr.integrations.build(model" in n for n in written.notes)
    plan = formats.entry_for("explr").adapter().read(ConfigSource.load(written.path), ReadOptions())
    assert plan.lr == converted.plan.lr and plan.decay == converted.plan.decay
    assert ConfigSource.load(written.path).get(("texp", "params")) == ["conv1.weight"]


# Real configs explr refuses even with --approximate, each tested for its reason where its reader is tested.
REFUSED = ("detectron2/real/projects/Panoptic-DeepLab",  # ADAM
           "detectron2/maskrcnn-benchmark",  # not detectron2's configs
           "detectron2/mask2former",  # SOLVER.OPTIMIZER ADAMW
           "pycls/real/configs/fsdp/example.yaml",  # LN decay other than BN decay
           "timm/real/pytorch-image-models/train.yaml",  # sched: plateau (metric-driven)
           "timm/real/SHI-Labs-Compact-Transformers/cct_14-7x2_flowers102.yml",  # no sched: version-dependent
           "timm/real/SHI-Labs-Neighborhood-Attention-Transformer/nat_mini.yml")  # a fork's sched_epochwise
IDIOMATIC_FIXTURES = sorted(path for entry in formats.FORMATS if entry.writer and entry.name != "mmengine"
                            for path in (FIXTURES / "configs" / entry.name).rglob("*.y*ml")
                            if not any(part in path.as_posix() for part in REFUSED))
# Real timm args.yaml often leave the dataset to a folder and lr to lr_base: say how many processes and samples.
READ_OPTIONS = dict(num_devices=2, dataset_size=10_000)


@pytest.mark.parametrize("path", IDIOMATIC_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_framework_idiomatic_output_reads_back_identically(path, tmp_path):
    """The converted detectron2/timm/pycls config is still that framework's config: the same reader gives the
    same plan (schedule, decay policy, SGD), and the explr node says which parameters are SI."""
    converted = convert(str(path), approximate=True, si=["conv1.weight"], **READ_OPTIONS)
    out = tmp_path / path.name
    write_converted(converted, str(out))
    again = converted.detected.adapter.read(ConfigSource.load(out), ReadOptions(**READ_OPTIONS))
    assert again.lr == converted.plan.lr and again.decay == converted.plan.decay
    assert (again.optimizer, again.momentum, again.dampening, again.nesterov) == (
        converted.plan.optimizer, converted.plan.momentum, converted.plan.dampening, converted.plan.nesterov)
    node = ConfigSource.load(out).get(("EXPLR",)) or ConfigSource.load(out).get(("explr",))
    assert list(node.get("PARAMS", node.get("si"))) == ["conv1.weight"]
