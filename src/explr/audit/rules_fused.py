"""Transfer rules for fused arithmetic that library blocks call (docs/theory.md §2).

`torch.addcmul(input, t1, t2, value=v)` is input + v·t1·t2 (timm's ResMLP `Affine`: β + α·x): the
product has degree d_t1 + d_t2 and the sum follows the sum rule — equal degrees, except a term
constant over the dimensions a later normalization averages over.
"""
from __future__ import annotations

import torch
from torch import fx

from explr.audit.forms import Deg, broadcast_terms, f_add, sum_degs
from explr.audit.transfer import Call, conservative, rule


@rule("torch.addcmul", "Tensor.addcmul")
def _addcmul(call: Call):
    inp, t1, t2 = call.arg("input"), call.arg("tensor1"), call.arg("tensor2")
    value = call.arg("value", 1)
    operands = (inp, t1, t2)
    if not all(isinstance(x, fx.Node) for x in operands) or not isinstance(value, (int, float)) or value == 0:
        return conservative(call)  # a tensor `value`, or a scalar operand: not the pattern this rule accounts for
    maybe = [call.deg(x) for x in operands]
    degs = [d for d in maybe if d is not None]
    if len(degs) != len(maybe):
        return conservative(call)
    mix, total = call.origin("mix"), call.origin("sum")
    product = Deg.of(f_add(call.ctx.resolve(degs[1], mix), call.ctx.resolve(degs[2], mix)))
    out_shape = call.shape()
    product_shape = tuple(torch.broadcast_shapes(call.shape(t1), call.shape(t2)))
    parts = [broadcast_terms(d, shape, out_shape) or Deg.of(call.ctx.resolve(d, total))
             for d, shape in ((degs[0], call.shape(inp)), (product, product_shape))]
    out = sum_degs(parts, out_shape)
    return Deg(out.tagged(total).blocks, degs[0].stat and degs[1].stat and degs[2].stat)
