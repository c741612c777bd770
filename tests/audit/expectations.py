"""Expected scale-invariance verdicts of every fixture in fixtures/models/, derived by hand from
docs/theory.md §1, §2 (never from running the static analysis), and confirmed numerically by
test_fixtures_ground_truth.py. The static-vs-numeric tests reuse EXPECTED.

Per fixture:
- individually_si: each parameter alone is SI (train mode, every c > 0);
- jointly_si: the multi-member groups of the maximal SI set (what a conversion uses); each is SI as a
  whole, none of its members alone, and the groups (and individually-SI parameters) may each be
  scaled by their own factor;
- not_si: every other parameter; neither alone nor added to the maximal set is it SI.
  These three partition named_parameters().
Optional:
- inert: parameters with no effect on the output at all (a bias before BatchNorm/InstanceNorm).
  They are trivially individually SI (listed there too); a static audit reports them as inert.
- alternatives: SI sets that are not subsets of the maximal set (it is not unique, docs/theory.md §2).
- opaque: parameters inside a part graph capture cannot follow (a static audit must say "not SI").
"""
from __future__ import annotations

import importlib.util
from functools import cache
from itertools import product
from pathlib import Path
from types import ModuleType

FIXTURE_MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"


def _pair(module: str) -> frozenset[str]:
    return frozenset({f"{module}.weight", f"{module}.bias"})


def _names(*modules: str, kinds=("weight", "bias")) -> set[str]:
    return {f"{m}.{k}" for m in modules for k in kinds}


def _preresnet32() -> dict:
    blocks = [f"layer{s}.{b}" for s, b in product((1, 2, 3), range(5))]
    transition = {"layer2.0", "layer3.0"}  # bn1 also feeds the 1x1 shortcut writing the new stream
    # Stage 1's stream has degree x_stem <= 1 (the stem reads the raw input): each block adds
    # conv2 OR its bn2 pair, and conv2 has more elements. Stages 2-3 start from a shortcut reading
    # bn1's affine output, so their stream can carry degree 2 (shortcut AND bn1 pair): every block
    # then adds conv2 AND its bn2 pair (c·c = c²).
    streams = [frozenset({"conv1.weight", *(f"layer1.{b}.conv2.weight" for b in range(5))})]
    streams += [frozenset({f"layer{s}.0.shortcut.weight", *_pair(f"layer{s}.0.bn1"),
                           *(n for b in range(5) for n in {f"layer{s}.{b}.conv2.weight", *_pair(f"layer{s}.{b}.bn2")})})
                for s in (2, 3)]
    return {
        "individually_si": {f"{b}.conv1.weight" for b in blocks},
        "jointly_si": streams + [_pair(f"{b}.bn1") for b in blocks if b not in transition],
        "not_si": _names(*(f"layer1.{b}.bn2" for b in range(5)), "bn", "fc"),
        # stage 1: a block's bn2 pair may replace its conv2 in the stream group (not join it)
        "alternatives": [(streams[0] - {"layer1.2.conv2.weight"}) | _pair("layer1.2.bn2")],
    }


def _resnet_cifar() -> dict:
    blocks = [f"layer{s}.{b}" for s, b in product((1, 2, 3), range(2))]
    shortcuts = ["layer2.0.shortcut", "layer3.0.shortcut"]
    return {
        "individually_si": {"conv1.weight", *(f"{b}.{c}.weight" for b in blocks for c in ("conv1", "conv2")),
                            *(f"{s}.0.weight" for s in shortcuts)},
        "jointly_si": [_pair(f"{b}.bn1") for b in blocks] + [
            _pair("bn1") | _pair("layer1.0.bn2") | _pair("layer1.1.bn2"),
            _pair("layer2.0.shortcut.1") | _pair("layer2.0.bn2") | _pair("layer2.1.bn2")],
        "not_si": _names("layer3.0.bn2", "layer3.1.bn2", "layer3.0.shortcut.1", "fc"),
    }


def _vgg11_bn() -> dict:
    # features layout (conv, bn, relu per number, one pool per "M" of the VGG-11 config)
    conv_indices = (0, 4, 8, 11, 15, 18, 22, 25)
    convs, bns = [f"features.{i}" for i in conv_indices], [f"features.{i + 1}" for i in conv_indices]
    biases = {f"{c}.bias" for c in convs}
    return {
        "individually_si": {f"{c}.weight" for c in convs} | biases,
        "inert": biases,
        "jointly_si": [_pair(b) for b in bns[:-1]],
        "not_si": _names(bns[-1], "classifier.0", "classifier.3", "classifier.6"),
    }


def _densenet_bc() -> dict:
    layers = [f"block{k}.{i}" for k, i in product((1, 2), range(2))]
    return {
        "individually_si": {"conv1.weight", "trans1.conv.weight",
                            *(f"{layer}.{c}.weight" for layer in layers for c in ("conv1", "conv2"))},
        "jointly_si": [_pair(f"{layer}.{n}") for layer in layers for n in ("norm1", "norm2")] + [_pair("trans1.norm")],
        "not_si": _names("norm", "fc"),
    }


def _preln_transformer() -> dict:
    blocks = ("blocks.0", "blocks.1")
    stream = {"pos", *_names("embed"), *(n for b in blocks for n in _names(f"{b}.attn.proj", f"{b}.mlp.fc2"))}
    return {
        "individually_si": set(),
        "jointly_si": [frozenset(stream)],
        "not_si": _names("ln_f", "head", *(f"{b}.{m}" for b in blocks
                                           for m in ("ln1", "ln2", "attn.qkv", "mlp.fc1"))),
    }


def _convnext_stochastic_depth() -> dict:
    # Stream s1 at degree 1 through the stem LayerNorm affine: each block's fc2 {w, b} writes it (not the
    # smaller layer scale), and its dwconv bias must follow the stream the dwconv reads (its weight stays
    # out). Stage 2: the same, started by the downsample conv {w, b} instead of its LayerNorm affine.
    s1 = {*_pair("stem.1"), *_names("stage1.0.fc2", "stage1.1.fc2"), "stage1.0.dwconv.bias", "stage1.1.conv_dw.bias"}
    s2 = {*_pair("downsample.1"), *_names("stage2.0.fc2"), "stage2.0.conv_dw.bias"}
    return {
        "individually_si": set(),
        "jointly_si": [_pair("stem.0"), frozenset(s1), frozenset(s2)],
        "not_si": {"stage1.0.layer_scale", "stage1.0.dwconv.weight", "stage1.1.gamma", "stage1.1.conv_dw.weight",
                   "stage2.0.gamma", "stage2.0.conv_dw.weight", *_pair("downsample.0"), *_pair("head_norm"),
                   *_pair("head"), *(n for b in ("stage1.0", "stage1.1", "stage2.0") for n in _names(f"{b}.norm", f"{b}.fc1"))},
        # the layer scale writes the stream instead of fc2; or no stream at all, and the dwconvs are SI as pairs
        "alternatives": [(s1 - _pair("stage1.0.fc2")) | {"stage1.0.layer_scale"},
                         _pair("stage1.0.dwconv") | _pair("stage1.1.conv_dw")],
    }


def _swin_window() -> dict:
    blocks1, blocks2 = ("stage1.0", "stage1.1"), ("stage2.0",)
    writers = lambda blocks: {n for b in blocks for n in _names(f"{b}.attn.proj", f"{b}.fc2")}  # noqa: E731
    s2 = {"merge.reduction.weight", *writers(blocks2)}
    return {
        "individually_si": set(),
        "jointly_si": [_pair("embed"), frozenset({*_pair("embed_norm"), *writers(blocks1)}), frozenset(s2)],
        "not_si": {*_pair("merge.norm"), *_pair("norm"), *_pair("head"),
                   *(n for b in blocks1 + blocks2 for n in {*_names(f"{b}.norm1", f"{b}.attn.qkv", f"{b}.norm2", f"{b}.fc1"),
                                                           f"{b}.attn.relative_position_bias_table"})},
        "alternatives": [(s2 - {"merge.reduction.weight"}) | _pair("merge.norm")],
    }


EXPECTED: dict[str, dict] = {
    "convnext_stochastic_depth": _convnext_stochastic_depth(),
    "swin_window": _swin_window(),
    "wrapped_data_dependent": {
        "individually_si": {"conv0.weight", "conv1.weight"},
        "jointly_si": [_pair("bn1")],
        "not_si": _names("bn0", "gate", "bn2", "fc"),
        "opaque": _names("gate"),
    },
    "resnet_cifar": _resnet_cifar(),
    "preresnet32": _preresnet32(),
    "vgg11_bn": _vgg11_bn(),
    "densenet_bc": _densenet_bc(),
    "conv_bias_bn": {
        "individually_si": {"conv1.weight", "conv2.weight", "conv1.bias", "conv2.bias"},
        "inert": {"conv1.bias", "conv2.bias"},
        "jointly_si": [_pair("bn1")],
        "not_si": _names("bn2", "fc"),
    },
    "linear_bias_ln": {
        "individually_si": set(),
        "jointly_si": [_pair("fc1")],
        "not_si": _names("ln", "head"),
    },
    "bn_affine_relu_conv": {
        "individually_si": {"conv0.weight", "conv1.weight"},
        "jointly_si": [_pair("bn0")],
        "not_si": _names("bn1", "fc"),
    },
    "groupnorm_net": {
        "individually_si": {"conv2.weight"},
        "jointly_si": [_pair("conv1"), _pair("gn1")],
        "not_si": _names("gn2", "fc"),
    },
    "instancenorm_net": {
        "individually_si": {"conv1.weight", "conv1.bias", "conv2.weight"},
        "inert": {"conv1.bias"},
        "jointly_si": [_pair("in1")],
        "not_si": _names("fc"),
    },
    "weight_standardized": {
        "individually_si": {"std_conv1.weight", "std_conv2.weight"},
        "jointly_si": [],
        "not_si": {"std_conv1.bias", *_names("fc")},
    },
    "weight_normalized": {
        "individually_si": {"fc1.parametrizations.weight.original1"},
        "jointly_si": [],
        "not_si": {"fc1.parametrizations.weight.original0", "fc1.bias", *_names("head")},
    },
    "preln_transformer": _preln_transformer(),
    "ln_mlp": {
        "individually_si": {"fc1.weight", "fc2.weight"},
        "jointly_si": [_pair("ln1")],
        "not_si": _names("ln2", "head"),
    },
    "se_block": {
        "individually_si": {"conv0.weight", "conv1.weight"},
        "jointly_si": [],
        "not_si": _names("bn0", "se.fc1", "se.fc2", "bn1", "fc"),
    },
    "no_norm": {
        "individually_si": set(),
        "jointly_si": [],
        "not_si": _names("conv1", "conv2", "fc"),
    },
    "data_dependent": {
        "individually_si": {"conv0.weight", "conv1.weight"},
        "jointly_si": [_pair("bn0")],
        "not_si": _names("bn1", "head.fc"),
        "opaque": _names("head.fc"),
    },
    "shape_control_flow": {
        "individually_si": {"stem.weight", "blocks.0.conv.weight", "blocks.1.conv.weight"},
        "jointly_si": [_pair("bn") | _pair("blocks.0.bn")],
        "not_si": _names("blocks.1.bn", "head"),
    },
    "multi_input": {
        "individually_si": {"conv.weight"},
        "jointly_si": [_pair("fc")],
        "not_si": _names("bn", "ln", "head"),
    },
}


def maximal_si(expected: dict) -> set[str]:
    """The maximal jointly SI set: individually-SI parameters plus every joint group."""
    return set(expected["individually_si"]).union(*expected["jointly_si"])


def groups(expected: dict) -> list[frozenset[str]]:
    """Independent groups of the maximal set: one per individually-SI parameter, plus the joint ones."""
    singletons = [frozenset({n}) for n in sorted(expected["individually_si"])]
    return singletons + [frozenset(g) for g in expected["jointly_si"]]


@cache
def fixture_module(name: str) -> ModuleType:
    """Import fixtures/models/<name>.py by path (the fixtures are files, not a package)."""
    path = FIXTURE_MODELS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"explr_fixture_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_fixture(name: str):
    """(fresh model from build_model(), example_inputs()) of a fixture."""
    module = fixture_module(name)
    return module.build_model(), module.example_inputs()
