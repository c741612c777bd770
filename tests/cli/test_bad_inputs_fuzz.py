"""Adversarial inputs through the CLI entry: every one is exit 2 with one `explr: error:` line naming the
file/key at fault, no traceback, the inputs unchanged byte for byte and nothing new written.

The mutations are text edits of the real fixtures (one value at a time), broken files and broken models.
"""
from __future__ import annotations

import pathlib

import pytest

from explr.cli import main
from tests.conftest import FIXTURES

CONFIGS = FIXTURES / "configs"
MODEL = FIXTURES / "models" / "ln_mlp.py"

# format -> (fixture, extra convert arguments, [(original text, replacement, what the error must name)])
VALUE_MUTATIONS = {
    "explr": ("explr/cifar_resnet_step.yaml", [], [
        ("lr: 0.1", 'lr: "abc"', "optimizer.lr"), ("lr: 0.1", "lr: [0.1]", "optimizer.lr"),
        ("lr: 0.1", "lr: null", "optimizer.lr"), ("lr: 0.1", "lr: .nan", "optimizer.lr"),
        ("lr: 0.1", "lr: 1.0e+400", "optimizer.lr"), ("lr: 0.1", "lr: -0.1", "lr"),
        ("  lr: 0.1\n", "", "optimizer.lr"), ("momentum: 0.9", "momentum: 1.5", "momentum"),
        ("momentum: 0.9", "momentum: {a: 1}", "optimizer.momentum"), ("momentum: 0.9", "momentum: null", "momentum"),
        ("weight_decay: 5.0e-4", "weight_decay: -1", "weight_decay"),
        ("weight_decay: 5.0e-4", "weight_decay: true", "optimizer.weight_decay"),
        ("milestones: [100, 150]", "milestones: 5", "schedule.milestones"),
        ("milestones: [100, 150]", 'milestones: ["a"]', "schedule.milestones"),
        ("milestones: [100, 150]", "milestones: [null, 150]", "schedule.milestones"),
        ("milestones: [100, 150]", "milestones: [.inf]", "schedule.milestones"),
        ("milestones: [100, 150]", "milestones: null", "schedule.milestones"),
        ("milestones: [100, 150]", "milestones: [150, 100]", "milestones"),
        ("gamma: 0.1", "gamma: null", "schedule.gamma"), ("gamma: 0.1", "gamma: 2", "gamma"),
        ("epochs: 200", "epochs: 0", "training"), ("epochs: 200", "epochs: -3", "iterations"),
        ("epochs: 200", "epochs: 1.0e+30", "iterations"), ("epochs: 200", "epochs: .nan", "training.epochs"),
        ("epochs: 200", "epochs: .inf", "training.epochs"), ("unit: epoch", "unit: 3", "unit"),
        ("explr: 1\n", "explr: 1\nexplr: 1\n", "duplicate key"),
    ]),
    "lightning": ("lightning/cifar_resnet_step.yaml", [], [
        ("lr: 0.1", 'lr: "abc"', "lr"), ("lr: 0.1", "lr: .nan", "lr"),
        ("milestones: [100, 150]", "milestones: 5", "milestones"),
        ("milestones: [100, 150]", 'milestones: ["a"]', "milestones"),
        ("gamma: 0.1", "gamma: null", "gamma"), ("max_epochs: 200", "max_epochs: 1.0e+30", "max_epochs"),
        ("momentum: 0.9", "momentum: 1.5", "momentum"),
        ("  callbacks:\n    - class_path: lightning.pytorch.callbacks.LearningRateMonitor\n      init_args:\n"
         "        logging_interval: step\n", "  callbacks: 3\n", "trainer.callbacks"),
    ]),
    "hydra": ("hydra/cifar_resnet_step.yaml", [], [
        ("lr: 0.1", 'lr: "abc"', "lr"), ("milestones: [100, 150]", "milestones: 5", "milestones"),
        ("gamma: 0.1", "gamma: null", "gamma"), ("max_epochs: 200", "max_epochs: 1.0e+30", "max_epochs"),
    ]),
    "timm": ("timm/cifar10_resnet_multistep.yaml", ["--lock", "LOCK"], [
        ("lr: 0.1", 'lr: "abc"', "lr"), ("decay_milestones: [100, 150]", "decay_milestones: [.nan, 150]", "decay_milestones"),
        ("decay_milestones: [100, 150]", "decay_milestones: [100, .inf]", "decay_milestones"),
        ("decay_milestones: [100, 150]", "decay_milestones: [-1, 150]", "decay_milestones"),
        ("epochs: 200", "epochs: 1.0e+30", "iterations"), ("momentum: 0.9", "momentum: 1.5", "momentum"),
    ]),
    "pycls": ("pycls/cifar_resnet56_steps.yaml", ["--approximate"], [
        ("BASE_LR: 0.1", 'BASE_LR: "abc"', "BASE_LR"), ("STEPS: [0, 80, 120]", "STEPS: 5", "STEPS"),
        ("MAX_EPOCH: 160", "MAX_EPOCH: 1.0e+30", "iterations"),
    ]),
    "detectron2": ("detectron2/Base-RCNN-FPN.yaml", ["--lock", "LOCK"], [
        ("BASE_LR: 0.02", 'BASE_LR: "abc"', "BASE_LR"), ("STEPS: (60000, 80000)", "STEPS: 5", "STEPS"),
        ("MAX_ITER: 90000", "MAX_ITER: -1", "MAX_ITER"), ("MAX_ITER: 90000", "MAX_ITER: 100000000000", "MAX_ITER"),
    ]),
}
VALUE_CASES = [(fmt, *mutation) for fmt, (_, _, mutations) in VALUE_MUTATIONS.items() for mutation in mutations]

BROKEN_FILES = {  # name -> bytes; every one is a config nobody can convert
    "empty.yaml": b"", "list.yaml": b"- 1\n- 2\n", "scalar.yaml": b"42\n", "tab.yaml": b"explr: 1\noptimizer:\n\tlr: 1\n",
    "bom_bad.yaml": b"\xef\xbb\xbfexplr: 1\n", "alias.yaml": b"x: *nope\n", "unclosed.yaml": b"a: [1\n",
    "binary.yaml": b"\xff\xfe\x00\x01", "merge.yaml": b"b: &b {lr: 0.1}\noptimizer:\n  <<: *b\n",
    "d2_missing_base.yaml": b"_BASE_: missing.yaml\nSOLVER: {BASE_LR: 0.1}\n",
    "d2_cycle.yaml": b"_BASE_: d2_cycle.yaml\nSOLVER: {BASE_LR: 0.1}\n",
    "mm_raises.py": b"raise RuntimeError('boom')\n", "mm_syntax.py": b"x = (\n",
    "mm_cycle.py": b"_base_ = ['mm_cycle.py']\n", "mm_import.py": b"import explr_no_such_module\noptim_wrapper = 1\n",
}
BROKEN_MODELS = {  # model file text, spec suffix
    "syntax": ("def f(:\n", ""), "import": ("import explr_no_such_module\n", ""), "none": ("x = 1\n", ""),
    "raises": ("from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
               "        self.l = nn.Linear(4, 4)\n    def forward(self, x):\n        raise ValueError('bad')\n", ":M"),
    "recursion": ("from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        return self.forward(x)\n",
                  ":M"),
    "ctor": ("from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        raise RuntimeError('x')\n", ":M"),
    "factory_int": ("def build():\n    return 5\n", ":build"),
}


def _snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(capsys, folder: pathlib.Path, argv: list[str], names: str) -> None:
    """Exit 2, exactly one error line naming `names`, no traceback, nothing in `folder` changed or added."""
    before = _snapshot(folder)
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("explr: error:")]
    assert code == 2, (argv, err)
    assert len(errors) == 1 and "Traceback" not in err + out, err
    assert names.lower() in errors[0].lower(), errors[0]
    assert _snapshot(folder) == before


@pytest.fixture(scope="module")
def lock_file(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("lock") / "ln_mlp.lock.json"
    assert main(["audit", str(MODEL), "--write-lock", str(path)]) in (0, 1)
    return path


@pytest.mark.parametrize("fmt,original,replacement,names", VALUE_CASES)
def test_a_mutated_value_is_refused_by_name(capsys, tmp_path, lock_file, fmt, original, replacement, names):
    fixture, extra, _ = VALUE_MUTATIONS[fmt]
    text = (CONFIGS / fixture).read_text()
    assert original in text
    config = tmp_path / pathlib.Path(fixture).name
    config.write_text(text.replace(original, replacement, 1))
    extra = [str(lock_file) if arg == "LOCK" else arg for arg in extra]
    assert_refused(capsys, tmp_path, ["convert", str(config), *extra], names)
    assert_refused(capsys, tmp_path, ["convert", str(config), *extra, "-o", str(tmp_path / "out.yaml")], names)


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_a_broken_config_file_is_refused_by_name(capsys, tmp_path, lock_file, name):
    (tmp_path / name).write_bytes(BROKEN_FILES[name])
    assert_refused(capsys, tmp_path, ["convert", str(tmp_path / name), "--lock", str(lock_file)], name)


def test_a_directory_or_a_missing_config_is_refused(capsys, tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    assert_refused(capsys, tmp_path, ["convert", str(tmp_path / "dir.yaml")], "dir.yaml")
    assert_refused(capsys, tmp_path, ["convert", str(tmp_path / "absent.yaml")], "absent.yaml")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "absent.yaml")
    assert_refused(capsys, tmp_path, ["convert", str(tmp_path / "dangling.yaml")], "dangling.yaml")


def test_outputs_never_replace_an_input(capsys, tmp_path, lock_file):
    config = tmp_path / "c.yaml"
    config.write_bytes((CONFIGS / "timm" / "cifar10_resnet_multistep.yaml").read_bytes())
    lock = tmp_path / "l.json"
    lock.write_bytes(lock_file.read_bytes())
    model = tmp_path / "m.py"
    model.write_bytes(MODEL.read_bytes())
    assert_refused(capsys, tmp_path, ["convert", str(config), "--lock", str(lock), "-o", str(config)], "c.yaml")
    assert_refused(capsys, tmp_path, ["convert", str(config), "--lock", str(lock), "-o", str(lock)], "lock file")
    assert_refused(capsys, tmp_path, ["convert", str(config), "--lock", str(lock), "-o",
                                      str(tmp_path / "no" / "x.yaml")], "no")
    assert_refused(capsys, tmp_path, ["audit", str(model), "--write-lock", str(model)], "model file")
    assert_refused(capsys, tmp_path, ["audit", str(model), "-o", str(model)], "model file")


@pytest.mark.parametrize("name", sorted(BROKEN_MODELS))
def test_a_broken_model_is_refused_by_name(capsys, tmp_path, name):
    text, suffix = BROKEN_MODELS[name]
    (tmp_path / "model.py").write_text(text)
    assert_refused(capsys, tmp_path, ["audit", f"{tmp_path / 'model.py'}{suffix}", "--input-shape", "2,4"], "model.py")


@pytest.mark.parametrize("argv,names", [
    (["--input-shape", "abc"], "--input-shape"), (["--input-shape", "0,8"], "--input-shape"),
    (["--input-shape", "2.5,8"], "--input-shape"), (["--input-shape", "100000,100000,1000"], "--input-shape"),
    (["--kwargs", "{bad"], "--kwargs"), (["--kwargs", "[1]"], "--kwargs"),
    (["--kwargs", '{"zzz": 1}'], "zzz"),
])
def test_garbage_audit_options_are_refused(capsys, tmp_path, argv, names):
    assert_refused(capsys, tmp_path, ["audit", str(MODEL), *argv], names)


@pytest.mark.parametrize("content", [b"{bad json", b"[]", b'{"schema": "explr.lock/999"}', b""])
def test_a_corrupt_lock_is_refused(capsys, tmp_path, content):
    (tmp_path / "bad.lock.json").write_bytes(content)
    assert_refused(capsys, tmp_path, ["audit", str(MODEL), "--lock", str(tmp_path / "bad.lock.json")], "bad.lock.json")


DEMO_CONFIG = str(CONFIGS / "demo" / "cifar10_step.yaml")


@pytest.mark.parametrize("argv,names", [  # 0 must not read as "not given": a count or a size is > 0
    (["convert", DEMO_CONFIG, "--num-devices", "0"], "--num-devices"),
    (["convert", DEMO_CONFIG, "--batch-size", "0"], "--batch-size"),
    (["convert", DEMO_CONFIG, "--dataset-size", "-5"], "--dataset-size"),
    (["convert", DEMO_CONFIG, "--iters-per-epoch", "0"], "--iters-per-epoch"),
    (["check", str(MODEL), DEMO_CONFIG, "--steps", "0"], "--steps"),
    (["check", str(MODEL), DEMO_CONFIG, "--budget", "-1"], "--budget"),
    (["check", str(MODEL), DEMO_CONFIG, "--tolerance", "nan"], "--tolerance"),
    (["check", str(MODEL), DEMO_CONFIG, "--check-batch-size", "0"], "--check-batch-size"),
    (["demo", "--steps", "0"], "--steps"),
])
def test_a_count_or_size_option_that_is_not_positive_is_refused(capsys, tmp_path, argv, names):
    assert_refused(capsys, tmp_path, argv, names)
