"""No input makes the timm, detectron2 or pycls reader raise anything but a one-line ExplrError.

Seeded mutations of the real fixtures: a few leaves replaced by wrong types, nulls, empty and huge values.
"""
import io
import random

import pytest
from ruamel.yaml import YAML

from explr.configs import detectron2, pycls, timm
from explr.configs.adapter import ReadOptions
from explr.configs.source import ConfigSource
from explr.errors import ExplrError
from tests.conftest import FIXTURES

VALUES = [None, "x", "1e-4", [], [1, "a"], {"a": 1}, -1, 0, 1.5, True, 10 ** 12, "(1, 2)", [3, 2, 1], "inf", ""]
READERS = {"timm": timm.ADAPTER, "detectron2": detectron2.ADAPTER, "pycls": pycls.ADAPTER}
OPTIONS = [ReadOptions(), ReadOptions(num_devices=2), ReadOptions(dataset_size=1000, num_devices=3)]


def leaves(node, prefix=()):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from leaves(value, prefix + (key,))
        else:
            yield prefix + (key,)


def mutated(text: str, rng: random.Random) -> str:
    data = YAML().load(text)
    keys = list(leaves(data))
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice(keys)
        node = data
        for part in parents:
            node = node[part]
        node[last] = rng.choice(VALUES)
    out = io.StringIO()
    YAML().dump(data, out)
    return out.getvalue()


@pytest.mark.parametrize("name", READERS)
def test_mutated_real_configs_give_one_line_errors(tmp_path, name):
    rng = random.Random(0)
    paths = sorted((FIXTURES / "configs" / name / "real").rglob("*.y*ml"))
    for trial in range(60):
        path = rng.choice(paths)
        copy = path.parent / f"_fuzz_{trial}_{path.name}"  # next to the original: `_BASE_` paths stay valid
        copy.write_text(mutated(path.read_text(), rng))
        try:
            READERS[name].read(ConfigSource.load(copy), rng.choice(OPTIONS))
        except ExplrError as exc:
            assert "\n" not in str(exc) and str(exc)
        finally:
            copy.unlink()


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "SOLVER: 3\n", "OPTIM: []\n", "opt: sgd\nsched: []\n",
                                  "_BASE_: 5\n", "_BASE_: [a.yaml, 3]\n", "SOLVER:\n  STEPS: 5\n", "sched: poly\nopt: x\n"])
@pytest.mark.parametrize("name", READERS)
def test_odd_documents_give_one_line_errors(tmp_path, name, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    try:
        READERS[name].read(ConfigSource.load(path), ReadOptions())
    except ExplrError as exc:
        assert "\n" not in str(exc)
