"""Transfer rules: degrees, constraints and facts on small inline models (no fixtures needed)."""
from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explr.audit.api import analyse_capture
from explr.audit.capture import capture
from explr.audit.transfer import TABLE, rule


def solved(model: nn.Module, *inputs, train: bool = True):
    cap = capture(model.train(train), inputs)
    params = list(model.named_parameters())
    ctx, sol = analyse_capture(cap, params)
    index = {n: i for i, (n, _) in enumerate(params)}
    return ctx, sol, index


def si(sol, index) -> set[str]:
    return {n for n, i in index.items() if i in sol.chosen}


def alone(sol, index) -> set[str]:
    return {n for n, i in index.items() if i in sol.individually and i in sol.chosen}


class Seq(nn.Module):
    """Runs a function of self on the input: small models inline."""

    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, m in mods.items():
            setattr(self, k, m)

    def forward(self, *x):
        return self.fn(self, *x)


IMG = torch.randn(4, 3, 6, 6)


def test_duplicate_rule_registration_is_an_error():
    assert F.conv2d in TABLE
    with pytest.raises(RuntimeError, match="duplicate"):
        rule("F.conv2d")(lambda call: None)


def test_unknown_op_constrains_its_inputs_and_is_reported():
    m = Seq(lambda s, x: s.bn(s.conv(x).cumprod(1)), conv=nn.Conv2d(3, 4, 1, bias=False), bn=nn.BatchNorm2d(4))
    ctx, sol, index = solved(m, IMG)
    assert [(u.op, u.module) for u in ctx.unknown_ops] == [("Tensor.cumprod", "")]
    assert "conv.weight" not in si(sol, index)
    assert sol.forced[index["conv.weight"]].kind == "unknown"


def test_bias_before_batch_norm_is_cancelled_and_inert():
    m = Seq(lambda s, x: s.conv2(F.relu(s.bn(s.conv(x)))).sum(), conv=nn.Conv2d(3, 4, 1), bn=nn.BatchNorm2d(4),
            conv2=nn.Conv2d(4, 2, 1))
    ctx, sol, index = solved(m, IMG)
    assert alone(sol, index) == {"conv.weight", "conv.bias"}
    assert ctx.dropped == {index["conv.bias"]: "bn"}
    assert {"bn.weight", "bn.bias", "conv2.weight", "conv2.bias"}.isdisjoint(si(sol, index))


def test_bias_before_layer_norm_varies_inside_the_group_so_only_jointly():
    m = Seq(lambda s, x: s.head(F.relu(s.ln(s.fc(x)))), fc=nn.Linear(5, 6), ln=nn.LayerNorm(6), head=nn.Linear(6, 2))
    ctx, sol, index = solved(m, torch.randn(3, 5))
    assert si(sol, index) == {"fc.weight", "fc.bias"} and alone(sol, index) == set()
    assert [sorted(index_to_names(g, index)) for g in sol.groups] == [["fc.bias", "fc.weight"]]


def index_to_names(vs, index):
    names = {i: n for n, i in index.items()}
    return [names[v] for v in vs]


def test_channel_blocks_of_a_concat_are_normalized_separately():
    def dense(s, x):
        y = torch.cat([s.a(x), s.b(x)], dim=1)
        return s.head(F.relu(s.bn(y)).mean((2, 3)))
    m = Seq(dense, a=nn.Conv2d(3, 2, 1, bias=False), b=nn.Conv2d(3, 3, 1, bias=False), bn=nn.BatchNorm2d(5),
            head=nn.Linear(5, 2))
    ctx, sol, index = solved(m, IMG)
    assert {"a.weight", "b.weight"} <= alone(sol, index)


def test_concat_read_by_a_channel_mixing_conv_forces_equal_degrees():
    def mixed(s, x):
        return s.bn(s.mix(torch.cat([s.a(x), s.b(x)], dim=1)))
    m = Seq(mixed, a=nn.Conv2d(3, 2, 1, bias=False), b=nn.Conv2d(3, 3, 1, bias=False),
            mix=nn.Conv2d(5, 4, 1, bias=False), bn=nn.BatchNorm2d(4, affine=False))
    ctx, sol, index = solved(m, IMG)
    assert "mix.weight" in alone(sol, index)
    assert {"a.weight", "b.weight"} <= si(sol, index) and not {"a.weight", "b.weight"} & alone(sol, index)


def test_adding_a_constant_is_not_homogeneous_but_eps_on_a_statistic_is():
    def standardized(s, x):  # weight standardization written by hand, with eps
        w = s.conv.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.var((1, 2, 3), keepdim=True) + 1e-5).sqrt()
        y = F.conv2d(x, w)
        return s.other(y + 1.0).sum()
    m = Seq(standardized, conv=nn.Conv2d(3, 4, 1, bias=False), other=nn.Conv2d(4, 2, 1))
    ctx, sol, index = solved(m, IMG)
    assert alone(sol, index) == {"conv.weight"}
    assert ctx.normalized_by[index["conv.weight"]]


def test_sigmoid_and_softmax_constrain_their_input_to_degree_zero():
    m = Seq(lambda s, x: s.bn(s.conv(x) * torch.sigmoid(s.g(x))).softmax(1).sum(),
            conv=nn.Conv2d(3, 4, 1, bias=False), g=nn.Conv2d(3, 4, 1, bias=False), bn=nn.BatchNorm2d(4))
    ctx, sol, index = solved(m, IMG)
    assert "g.weight" not in si(sol, index)
    assert sol.forced[index["g.weight"]].op in ("torch.sigmoid", "F.sigmoid")
    assert "conv.weight" in alone(sol, index)


def test_in_place_ops_rebind_the_degree_of_their_input():
    def inplace(s, x):
        y = s.conv(x)
        y.mul_(s.scale)  # without rebinding, `scale` would look unconstrained (wrongly SI)
        return y.sum()
    m = Seq(inplace, conv=nn.Conv2d(3, 4, 1, bias=False))
    m.scale = nn.Parameter(torch.ones(1))
    ctx, sol, index = solved(m, IMG)
    assert si(sol, index) == set()
    assert sol.forced[index["scale"]].kind == "output"


def test_eval_mode_batch_norm_is_not_a_normalization():
    m = Seq(lambda s, x: s.bn(s.conv(x)), conv=nn.Conv2d(3, 4, 1, bias=False), bn=nn.BatchNorm2d(4, affine=False))
    ctx, sol, index = solved(m, IMG, train=False)
    assert si(sol, index) == set()
    assert sol.forced[index["conv.weight"]].op == "F.batch_norm"


def test_group_norm_keeps_channel_blocks_only_when_they_align_with_groups():
    def gn(s, x, groups):
        return F.relu(F.group_norm(torch.cat([s.a(x), s.b(x)], 1), groups)).sum()
    a, b = nn.Conv2d(3, 2, 1, bias=False), nn.Conv2d(3, 2, 1, bias=False)
    aligned = Seq(lambda s, x: gn(s, x, 2), a=a, b=b)
    straddling = Seq(lambda s, x: gn(s, x, 1), a=a, b=b)
    assert alone(*solved(aligned, IMG)[1:]) == {"a.weight", "b.weight"}
    _, sol, index = solved(straddling, IMG)
    assert alone(sol, index) == set() and si(sol, index) == {"a.weight", "b.weight"}


def test_in_place_op_on_a_view_must_keep_the_degree_of_the_base():
    def on_view(s, x):
        y = s.bn(s.conv(x))
        y[:, :2].mul_(s.scale)  # scales half the channels of y by `scale`: y is no longer homogeneous
        return s.bn2(s.conv2(y))
    m = Seq(on_view, conv=nn.Conv2d(3, 4, 1, bias=False), bn=nn.BatchNorm2d(4, affine=False),
            conv2=nn.Conv2d(4, 4, 1, bias=False), bn2=nn.BatchNorm2d(4, affine=False))
    m.scale = nn.Parameter(torch.ones(1))
    _, sol, index = solved(m, IMG)
    assert "scale" not in si(sol, index)


def test_a_tuple_result_used_by_attribute_keeps_its_degree():
    m = Seq(lambda s, x: s.fc(x).max(dim=1).values, fc=nn.Linear(4, 4))
    _, sol, index = solved(m, torch.randn(3, 4))
    assert si(sol, index) == set()


def test_elementwise_max_of_two_tensors_needs_equal_degrees():
    m = Seq(lambda s, x: s.bn(torch.max(s.a(x), s.b(x))), a=nn.Conv2d(3, 4, 1, bias=False),
            b=nn.Conv2d(3, 4, 1, bias=False), bn=nn.BatchNorm2d(4, affine=False))
    _, sol, index = solved(m, IMG)
    assert si(sol, index) == {"a.weight", "b.weight"} and alone(sol, index) == set()


def test_a_term_constant_inside_its_block_is_not_dropped_by_a_norm_over_all_channels():
    def merged(s, x):  # a per-sample offset on block a only, then LayerNorm over (C, H, W)
        a = s.a(x) + s.offset
        y = torch.cat([a, s.b(x)], dim=1)
        return F.layer_norm(y, y.shape[1:]).sum()
    m = Seq(merged, a=nn.Conv2d(3, 2, 1, bias=False), b=nn.Conv2d(3, 2, 1, bias=False))
    m.offset = nn.Parameter(torch.ones(1, 1, 1, 1))
    _, sol, index = solved(m, IMG)
    assert "offset" not in alone(sol, index)


def test_addmm_is_a_linear_with_bias():
    def conv1d(s, x):  # HF GPT-2 Conv1D
        return F.relu(F.layer_norm(torch.addmm(s.b, x, s.w), (4,))).sum()
    m = Seq(conv1d)
    m.w, m.b = nn.Parameter(torch.randn(5, 4)), nn.Parameter(torch.randn(4))
    _, sol, index = solved(m, torch.randn(3, 5))
    assert si(sol, index) == {"w", "b"} and alone(sol, index) == set()


def test_runtime_asserts_on_tensors_are_known_and_inert():
    def checked(s, x):
        y = s.bn(s.conv(x))
        torch._assert((y > -1e9).all(), "finite")
        return s.conv2(F.relu(y)).sum()
    m = Seq(checked, conv=nn.Conv2d(3, 4, 1, bias=False), bn=nn.BatchNorm2d(4), conv2=nn.Conv2d(4, 2, 1))
    ctx, sol, index = solved(m, IMG)
    assert ctx.unknown_ops == [] and "conv.weight" in alone(sol, index)


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))  # the line a failing relu rule must name


def test_a_rule_that_raises_names_node_module_and_source_line(monkeypatch):
    def broken(call):
        raise ValueError("boom")
    monkeypatch.setitem(TABLE, F.relu, broken)
    m = Seq(lambda s, x: s.block(x), block=_Block())
    ctx, sol, index = solved(m, IMG)
    [failure] = ctx.unknown_ops
    assert failure.op == "F.relu" and failure.module == "block"
    assert failure.detail.startswith("its rule failed at node relu (module block, ")
    assert "test_degrees.py:" in failure.detail and "F.relu(self.conv(x))" in failure.detail
    assert failure.detail.endswith("ValueError: boom")
    assert "block.conv.weight" not in si(sol, index)  # conservative: the op counts as unknown
    assert sol.forced[index["block.conv.weight"]].kind == "rule-error"


def test_hand_written_eps_is_read_as_the_statistic_only_when_small():
    def hand_bn(s, x):
        z = s.conv(x)
        return (z - z.mean((0, 2, 3), keepdim=True)) / torch.sqrt(z.var((0, 2, 3), keepdim=True) + 1e-5)
    m = Seq(hand_bn, conv=nn.Conv2d(3, 4, 3, bias=False))
    ctx, sol, index = solved(m, IMG)
    assert si(sol, index) == {"conv.weight"}
    [site] = ctx.eps_sites
    assert site.eps == 1e-5 and site.vars == {index["conv.weight"]} and 0 < site.ratio < 1e-3
    ctx, sol, index = solved(m, IMG * 1e-3)  # activations ~1e-3: eps/var ~ 10
    assert si(sol, index) == set() and ctx.eps_sites == []
    assert "eps 1e-05 is" in sol.forced[index["conv.weight"]].detail



class Outputs(NamedTuple):
    """As torchvision's GoogLeNetOutputs(logits, aux_logits2, aux_logits1), returned in train mode."""
    logits: torch.Tensor
    aux: torch.Tensor | None


def test_a_namedtuple_output_is_seen_through_not_an_unknown_op():
    # fx records the construction of a returned namedtuple as a call of its class
    model = Seq(lambda m, x: Outputs(m.head(m.bn(m.conv(x)).mean((2, 3))), aux=None),
                conv=nn.Conv2d(3, 4, 3), bn=nn.BatchNorm2d(4), head=nn.Linear(4, 2))
    ctx, sol, index = solved(model, IMG)
    assert [u.op for u in ctx.unknown_ops] == []
    assert alone(sol, index) == {"conv.weight", "conv.bias"} and si(sol, index) == {"conv.weight", "conv.bias"}


def test_recurrent_layers_have_a_rule_and_hold_their_weights_at_degree_0():
    # timm's Sequencer2d: BiLSTMs over the rows and columns of a normalized feature map
    def fn(m, x):
        y = m.bn(m.conv(x)).flatten(2).transpose(1, 2)  # (B, HW, C)
        out, _ = m.rnn(y)
        return m.gru(out)[0]

    model = Seq(fn, conv=nn.Conv2d(3, 4, 3), bn=nn.BatchNorm2d(4), rnn=nn.LSTM(4, 5, batch_first=True),
                gru=nn.GRU(5, 3, batch_first=True))
    ctx, sol, index = solved(model, IMG)
    assert [u.op for u in ctx.unknown_ops] == []
    assert si(sol, index) == {"conv.weight", "conv.bias"}


class PositionalAttention(nn.Module):
    """The pattern of timm's ConViT GPSA positional scores (timm/models/convit.py, Apache-2.0): a linear
    map of fixed relative positions to one score per head, softmax over the keys. A per-head bias is
    constant along the keys, so the softmax cancels it: the bias has no effect at all (SI alone).
    (ConViT permutes the heads forward first; here they stay last, the softmax runs over dim 2.)"""

    def __init__(self, heads: int = 2, dim: int = 4, over_keys: bool = True):
        super().__init__()
        self.pos_proj, self.value, self.over_keys = nn.Linear(3, heads), nn.Linear(dim, heads * dim), over_keys
        self.heads, self.dim = heads, dim

    def forward(self, x, rel):  # x: (B, N, dim), rel: (1, N, N, 3) relative positions
        b, n, _ = x.shape
        # scores (1, N, N, heads): over the keys (dim 2) the bias is constant; over the heads it is not
        attn = F.softmax(self.pos_proj(rel), dim=2 if self.over_keys else 3)
        v = self.value(x).reshape(b, n, self.heads, self.dim)
        return torch.einsum("bqkh,bkhd->bqhd", attn.expand(b, n, n, self.heads), v)


def _positional_inputs():
    n = 3
    idx = torch.arange(n, dtype=torch.float64)
    d = idx.view(1, -1) - idx.view(-1, 1)
    return torch.randn(2, n, 4, dtype=torch.float64), torch.stack([d, d.abs(), d * d], dim=-1).unsqueeze(0)


@pytest.mark.parametrize("over_keys", [True, False])
def test_softmax_cancels_a_term_constant_along_its_dim(over_keys):
    from explr.audit.numeric import ScalingProbe
    torch.manual_seed(0)
    model, inputs = PositionalAttention(over_keys=over_keys).double(), _positional_inputs()
    ctx, sol, index = solved(model, *inputs)
    probe = ScalingProbe(model, inputs)
    invariant = probe.scaling_error(["pos_proj.bias"]) <= 1e-12
    assert invariant is over_keys  # the truth: only a softmax along the keys cancels the per-head bias
    assert ("pos_proj.bias" in alone(sol, index)) is over_keys
    assert "pos_proj.weight" not in si(sol, index)


class ClassAttention(nn.Module):
    """The pattern of timm's ClassAttn (CaiT, XCiT; timm/models/cait.py, Apache-2.0): separate q, k, v
    linears, the class token's query against every token's key, fused attention. k's bias adds q.b_k,
    the same for every key, to the scores: the softmax cancels it (SI alone). Heads are left out, so
    that no reshape stands between the bias and the attention."""

    def __init__(self, dim: int = 4):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):  # (B, N, dim)
        return F.scaled_dot_product_attention(self.q(x[:, :1]), self.k(x), self.v(x))


def test_attention_cancels_a_key_term_constant_along_the_keys():
    from explr.audit.numeric import ScalingProbe
    torch.manual_seed(0)
    model, inputs = ClassAttention().double(), (torch.randn(2, 5, 4, dtype=torch.float64),)
    ctx, sol, index = solved(model, *inputs)
    probe = ScalingProbe(model, inputs)
    assert probe.scaling_error(["k.bias"]) <= 1e-12 and probe.scaling_error(["q.bias"]) > 1e-6  # the truth
    assert alone(sol, index) == {"k.bias"} == si(sol, index)


def test_torch_split_reads_its_tensor_argument():
    # timm's SelectiveKernel (SKResNet): torch.split(x, in_channels // paths, 1), a Python function whose
    # first parameter is `tensor`, not `input`: the stream it splits is not forced to degree 0
    def fn(m, x):
        a, b = torch.split(m.bn0(m.conv0(x)), 2, 1)
        return m.bn1(m.c1(a)) + m.bn2(m.c2(b))

    model = Seq(fn, conv0=nn.Conv2d(3, 4, 3), bn0=nn.BatchNorm2d(4), c1=nn.Conv2d(2, 3, 3), bn1=nn.BatchNorm2d(3),
                c2=nn.Conv2d(2, 3, 3), bn2=nn.BatchNorm2d(3))
    ctx, sol, index = solved(model, IMG)
    assert {"bn0.weight", "bn0.bias", "conv0.weight"} <= si(sol, index)
    assert not {"bn1.weight", "bn2.weight"} & si(sol, index)  # they reach the output
