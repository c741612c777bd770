"""The zoo table: explr's audit on torchvision and timm models against an independent numeric truth.

    PYTHONPATH=$PWD/src /work/venv-tv/bin/python benchmarks/zoo.py            # all models -> docs/zoo.md
    PYTHONPATH=$PWD/src /work/venv-tv/bin/python benchmarks/zoo.py resnet18   # some models, printed only

Needs torch + torchvision + timm in one environment (not CI's). Models are built with random
weights (weights=None / pretrained=False: nothing is downloaded), timm models with drop_path_rate 0.1
where they take one, so that stochastic depth is on the residual streams as in training. Inputs are
one random batch of 2 at 64x64 (the ViT-style models are built for that size; LeViT: see INPUTS). The truth (benchmarks/zoo_truth.py) uses no part of
explr. Each model's row is kept in benchmarks/.zoo-cache/rows/, so several processes can share the
list (`zoo.py MODEL...`) and `zoo.py --render` then writes docs/zoo.md from all of them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_truth  # noqa: E402
from zoo_truth import FINITE_TOL, Probe, Truth, numeric_truth  # noqa: E402

from explr.audit.api import audit  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "zoo.md"
CACHE = Path(__file__).resolve().parent / ".zoo-cache"
SMALL = {"img_size": 64}
# (source, name, constructor kwargs), roughly from cheap to expensive
MODELS = [
    ("torchvision", "mobilenet_v3_small", {}), ("timm", "mobilenetv3_small_100", {}),
    ("torchvision", "shufflenet_v2_x0_5", {}), ("torchvision", "mnasnet0_5", {}), ("timm", "regnetx_002", {}),
    ("timm", "ghostnet_100", {}), ("torchvision", "resnet18", {}), ("timm", "levit_128s", {"img_size": 128}),
    ("timm", "deit_tiny_patch16_224", SMALL), ("timm", "vit_tiny_patch16_224", SMALL),
    ("timm", "mixer_s16_224", SMALL), ("timm", "convnext_atto", {}), ("timm", "edgenext_xx_small", {}),
    ("torchvision", "efficientnet_b0", {}), ("timm", "efficientnet_b0", {}), ("torchvision", "mobilenet_v2", {}),
    ("torchvision", "regnet_y_400mf", {}), ("timm", "resnet26d", {}), ("timm", "poolformer_s12", {}),
    ("timm", "resmlp_12_224", SMALL), ("timm", "coatnet_nano_rw_224", SMALL), ("torchvision", "swin_t", {}),
    ("timm", "swin_tiny_patch4_window7_224", SMALL), ("torchvision", "convnext_tiny", {}),
    ("torchvision", "resnet50", {}), ("torchvision", "densenet121", {}), ("torchvision", "vgg11_bn", {}),
    ("timm", "convmixer_768_32", {}), ("torchvision", "vit_b_16", {"image_size": 64}),
]
# The second table: models added to look for failure classes beyond the first table (docs/zoo.md,
# "Further models"). EfficientFormer-L1 is built for 224x224 inputs (its last-stage attention
# bias is 7x7): it runs at 224, far slower than the rest.
HUNT = [
    ("timm", "mobilenetv3_small_050", {}), ("timm", "regnety_002", {}), ("timm", "ghostnet_050", {}),
    ("torchvision", "squeezenet1_0", {}), ("timm", "lcnet_050", {}), ("timm", "tinynet_e", {}),
    ("timm", "nf_resnet26", {}), ("timm", "eca_nfnet_l0", {}), ("timm", "nfnet_l0", {}),
    ("timm", "tf_efficientnetv2_b0", {}), ("timm", "efficientnetv2_rw_t", {}), ("timm", "resnest14d", {}),
    ("timm", "dla34", {}), ("torchvision", "googlenet", {}), ("timm", "cait_xxs24_224", SMALL),
    ("timm", "xcit_nano_12_p16_224", SMALL), ("timm", "deit3_small_patch16_224", SMALL),
    ("timm", "skresnet18", {}), ("timm", "res2net50_14w_8s", {}), ("timm", "ese_vovnet19b_dw", {}),
    ("timm", "rexnet_100", {}), ("timm", "repvgg_a0", {}), ("timm", "mobileone_s0", {}),
    ("timm", "fastvit_t8", {}), ("timm", "mobilevit_xxs", {}), ("timm", "convit_tiny", SMALL),
    ("timm", "pit_ti_224", SMALL), ("timm", "efficientvit_m0", SMALL), ("timm", "hgnetv2_b0", {}),
    ("timm", "cspresnet50", {}), ("timm", "dpn68", {}), ("timm", "selecsls42b", {}),
    ("timm", "gernet_s", {}), ("timm", "lambda_resnet26t", {}), ("timm", "efficientformer_l1", {}),
    ("torchvision", "inception_v3", {"aux_logits": False, "init_weights": False}), ("timm", "efficientvit_b0", {}),
]
SECTIONS = [("", MODELS), ("hunt", HUNT)]


# (batch, image size) where 2 x 64 x 64 degenerates: LeViT's last stage would hold one token (softmax over
# one key), and its BatchNorm1d head normalizes over the batch alone (two samples: every channel +-1).
INPUTS = {"levit_128s": (4, 128), "inception_v3": (2, 96), "efficientformer_l1": (2, 224)}


@dataclass
class Row:
    label: str
    tensors: int = 0
    numel: int = 0
    error: str = ""
    audit_s: float = 0.0
    confirmation: str = ""
    claim_error: float | None = None  # explr's claimed set scaled in the truth's probe
    groups_members: list[list[str]] = field(default_factory=list)  # explr's groups
    rechecked: bool = False
    si: set[str] = field(default_factory=set)
    individual: set[str] = field(default_factory=set)
    groups: int = 0
    truth: Truth | None = None
    truth_s: float = 0.0
    # what the audit could not see through, and what its own confirmation withdrew (static false claims)
    opaque: list[str] = field(default_factory=list)
    unknown_ops: list[str] = field(default_factory=list)
    refuted: list[str] = field(default_factory=list)


    def to_json(self) -> dict:
        doc = {k: getattr(self, k) for k in ("label", "tensors", "numel", "error", "audit_s", "confirmation",
                                              "claim_error", "groups", "truth_s", "groups_members", "rechecked",
                                              "opaque", "unknown_ops", "refuted")}
        doc |= {"si": sorted(self.si), "individual": sorted(self.individual),
                "truth": self.truth.to_json() if self.truth else None}
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "Row":
        truth = Truth.from_json(doc.pop("truth")) if doc.get("truth") else None
        return cls(**{**doc, "si": set(doc["si"]), "individual": set(doc["individual"]), "truth": truth})


def row_path(source: str, name: str) -> Path:
    return CACHE / "rows" / f"{source}_{name}.json"


def build(source: str, name: str, kwargs: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    if source == "torchvision":
        import torchvision
        return torchvision.models.get_model(name, weights=None, **kwargs)
    import timm
    try:
        return timm.create_model(name, pretrained=False, drop_path_rate=0.1, **kwargs)
    except TypeError:  # a model without stochastic depth
        return timm.create_model(name, pretrained=False, **kwargs)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def run_model(source: str, name: str, kwargs: dict) -> Row:
    row = Row(f"{source}/{name}")
    try:
        model = build(source, name, kwargs)
    except Exception as exc:  # noqa: BLE001 - every model gets a row
        row.error = f"build failed: {one_line(exc)}"
        return row
    params = list(model.named_parameters())
    row.tensors, row.numel = len(params), sum(p.numel() for _, p in params)
    inputs = model_inputs(name, kwargs)
    try:
        start = time.perf_counter()
        report = audit(model, inputs, model_name=row.label)
        row.audit_s = time.perf_counter() - start
        row.si = set(report.si_names)
        row.individual = {p.name for p in report.parameters if p.individually_si}
        row.groups = sum(1 for g in report.groups if len(g.members) > 1)
        row.groups_members = [list(g.members) for g in report.groups]
        row.confirmation = report.verification.status
        row.claim_error = claim_error(model, inputs, report)
        row.opaque = [f"{o.module or '<root>'}: {o.why}" for o in report.opaque]
        row.unknown_ops = sorted({f"{u.op} in {u.module or '<root>'}" for u in report.unknown_ops})
        row.refuted = [f.message for f in report.findings if f.code == "EXP109"]
    except Exception as exc:  # noqa: BLE001
        row.error = f"explr audit raised {one_line(exc)}"
    try:
        start = time.perf_counter()
        row.truth = cached_truth(row.label, kwargs, model, inputs)
        row.truth_s = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001
        row.error += f"{'; ' if row.error else ''}numeric truth failed: {one_line(exc)}"
    return row


EXTREME = (0.05, 2.9, 30.0)  # a clamp (ReLU6, hardtanh) may pass random factors near 1, not these


def recheck(row: Row, source: str, name: str, kwargs: dict) -> None:
    """Second pass over a kept row: explr's claim, and every truth set holding a tensor explr missed,
    scaled by each of EXTREME (a set failing there is not SI: it leaves the truth)."""
    model = build(source, name, kwargs)
    probe = Probe(model, model_inputs(name, kwargs), seed=5)
    claimed = row.si | row.individual
    if claimed:
        groups = [set(g) - row.individual for g in row.groups_members] if row.groups_members else \
            [row.si - row.individual]  # rows kept before groups were: the groups under one common factor
        units = [{n} for n in row.individual] + [g for g in groups if g]
        worst = max(probe.scaled_error({n: EXTREME[(i + k) % 3] for i, u in enumerate(units) for n in u})
                    for k in range(3))
        row.claim_error = max(row.claim_error or 0.0, worst)
    t = row.truth
    real, _ = misses(row)
    doubtful = [s for s in t.sets if set(s) & set(real)]
    failed = [s for s in doubtful if any(probe.scaled_error(dict.fromkeys(s, c)) > FINITE_TOL for c in EXTREME)]
    if failed:
        t.sets = [s for s in t.sets if s not in failed]
        t.members = t.individual | {n for s in t.sets for n in s}
        t.notes.append(f"{len(failed)} SI set(s) refuted at factors {EXTREME}: removed")


def model_inputs(name: str, kwargs: dict) -> tuple:
    batch, size = INPUTS.get(name, (2, kwargs.get("img_size", 64)))
    return (torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)),)


def claim_error(model: torch.nn.Module, inputs: tuple, report) -> float:
    """explr's claim checked with the truth's own probe (float64, eps 1e-30, perturbed weights): each
    group scaled by its own factor and each individually-SI tensor by another, in two draws."""
    probe = Probe(model, inputs, seed=5)
    gen = random.Random(5)
    worst = 0.0
    for _ in range(2):
        factors = {n: c for g in report.groups for c in [0.3 + 2.7 * gen.random()] for n in g.members}
        factors |= {p.name: 0.3 + 2.7 * gen.random() for p in report.parameters if p.individually_si}
        factors |= {p.name: 0.3 + 2.7 * gen.random() for p in report.parameters if p.si and p.name not in factors}
        worst = max(worst, probe.scaled_error(factors)) if factors else worst
    return worst


def cached_truth(label: str, kwargs: dict, model: torch.nn.Module, inputs: tuple) -> Truth:
    """The truth depends only on the model, the inputs and zoo_truth.py: kept in CACHE between runs."""
    import timm
    import torchvision
    key = json.dumps([label, kwargs, [list(x.shape) for x in inputs], torch.__version__, torchvision.__version__,
                      timm.__version__, zoo_truth.VERSION], sort_keys=True)
    path = CACHE / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
    if path.exists():
        return Truth.from_json(json.loads(path.read_text()))
    truth = numeric_truth(model, inputs)
    CACHE.mkdir(exist_ok=True)
    path.write_text(json.dumps(truth.to_json()))
    return truth


def misses(row: Row) -> tuple[list[str], list[str]]:
    """Truth members explr did not report: (real misses, forced out by a choice between alternatives).
    A miss is a choice when no SI set of the truth contains it together with everything explr chose
    in its component."""
    t = row.truth
    real, choice = [], []
    for name in sorted(t.members - row.si, key=t.names.index):
        comp = next((c for c in t.components if name in c), set())
        chosen = row.si & comp
        if name not in t.individual and any(name in s and chosen <= s for s in t.sets):
            real.append(name)
        elif name in t.individual:
            real.append(name)
        else:
            choice.append(name)
    return real, choice


def best_share(t: Truth) -> int:
    """Elements of the largest SI set: individual tensors plus the heaviest set per component."""
    total = sum(t.numel[n] for n in t.individual)
    for comp in t.components:
        total += max((sum(t.numel[n] for n in s) for s in t.sets if s <= comp), default=0)
    return total


def _frac(a: int, b: int) -> str:
    return f"{a}/{b}"


def table_line(row: Row) -> str:
    if row.truth is None or row.error.startswith(("build", "explr")):
        return f"| {row.label} | {row.tensors} | – | – | – | – | – | – | – | – | {row.error} |"
    t = row.truth
    false = ((row.si - t.members) | (row.individual - t.individual)) - t.undetermined
    real, choice = misses(row)
    share = sum(t.numel[n] for n in row.si) / max(row.numel, 1)
    best = best_share(t) / max(row.numel, 1)
    notes = []
    if false:
        notes.append(f"**false claims: {', '.join(sorted(false)[:4])}**")
    if real:
        notes.append(f"missed: {', '.join(real[:4])}{' …' if len(real) > 4 else ''} ({len(real)})")
    if choice:
        notes.append(f"{len(choice)} left out by a choice between alternatives ({', '.join(choice[:2])} …)")
    if t.undetermined:
        notes.append(f"{len(t.undetermined)} tensors undetermined by the truth (not counted as claims)")
    notes += t.notes
    notes += audit_notes(row)
    return (f"| {row.label} | {row.tensors} | {_frac(len(row.individual & t.individual), len(t.individual))} "
            f"| {_frac(len(row.si & t.members), len(t.members))} | {len(false)} "
            f"| {row.groups} | {100 * share:.1f}% / {100 * best:.1f}% | {row.audit_s:.1f} s "
            f"| {row.confirmation} | {_claim(row)} | {'; '.join(notes) or '–'} |")


def audit_notes(row: Row) -> list[str]:
    """What the audit could not see through, and what its own confirmation withdrew."""
    notes = []
    if row.unknown_ops:
        notes.append(f"ops without a rule: {', '.join(row.unknown_ops[:3])}{' …' if len(row.unknown_ops) > 3 else ''}")
    if row.opaque:
        notes.append(f"opaque: {'; '.join(o[:120] for o in row.opaque[:2])}{' …' if len(row.opaque) > 2 else ''}")
    if row.refuted:
        notes.append(f"{len(row.refuted)} static claim(s) refuted and withdrawn by explr's confirmation (EXP109)")
    return notes


def _claim(row: Row) -> str:
    if row.claim_error is None:
        return "–"
    return f"{'holds' if row.claim_error <= FINITE_TOL else '**refuted**'} ({row.claim_error:.0e})"


def totals(rows: list[Row]) -> dict[str, int]:
    out = dict.fromkeys(("models", "errors", "ind_found", "ind_total", "joint_found", "joint_total",
                         "false", "missed", "choice", "undetermined", "not_run"), 0)
    for row in rows:
        out["models"] += 1
        if row.error == "not run":
            out["not_run"] += 1
            continue
        if row.truth is None or row.error:
            out["errors"] += 1
            if row.truth is None:
                continue
        t = row.truth
        out["ind_found"] += len(row.individual & t.individual)
        out["ind_total"] += len(t.individual)
        out["joint_found"] += len(row.si & t.members)
        out["joint_total"] += len(t.members)
        out["false"] += len(((row.si - t.members) | (row.individual - t.individual)) - t.undetermined)
        out["undetermined"] += len(t.undetermined)
        real, choice = misses(row)
        out["missed"] += len(real)
        out["choice"] += len(choice)
    return out


HEADER = """# The zoo: explr's audit on {n} torchvision and timm models, checked against numeric truth

Generated by `benchmarks/zoo.py` ({versions}; float64 truth). Random weights (nothing downloaded),
train mode, one batch of 2 random 3x64x64 images (LeViT: 4 at 3x128x128, so that its last stage keeps
2x2 tokens and its BatchNorm1d head sees more than two samples); timm models with drop_path_rate 0.1 where they
take one (torchvision's ConvNeXt, EfficientNet and Swin have stochastic depth on by default).

**The truth** is computed without explr (`benchmarks/zoo_truth.py`): the scaling derivative of every
parameter tensor (sampled with random backward passes until its rank saturates) gives the
tensors that are SI on their own and, from the 0/1 vectors of its null space, every jointly SI
set; each is then confirmed by finite scaling (factors in [0.3, 3], relative output change
<= 1e-9, normalization eps set to 1e-30).

Columns: *individually SI* and *jointly SI* are tensors explr reports / tensors the truth finds
(jointly SI = in some SI set, the individually SI ones included). *False claims*: tensors explr
calls SI (alone or jointly) that the truth does not. *SI weights*: share of parameter elements in
explr's SI set / in the largest SI set of the truth. *Confirmation*: explr's own numeric check of
its report; *claim in truth's probe*: explr's whole claim (every group by its own factor, every
individually-SI tensor by another) applied in the truth's float64 probe. A tensor *left out by a choice* belongs to an SI set that cannot be merged with the
set explr chose (the maximal SI set is not unique; explr keeps the one with most elements).

| model | tensors | individually SI | jointly SI | false claims | groups | SI weights explr / best | audit | confirmation | claim in truth's probe | notes |
|---|---|---|---|---|---|---|---|---|---|---|
"""


HUNT_HEADER = """
{marker}
## Further models: {n} more, looking for failure classes beyond the table above

Made the same way as the table above (`benchmarks/zoo.py --render --section hunt`; {versions}), with these
inputs where 2 x 3x64x64 does not fit: torchvision inception_v3 (aux_logits off) at 96x96, EfficientFormer-L1 at
224x224 (its attention biases are built for 7x7 tokens in the last stage). The notes also name what the audit
treated as opaque or unknown, and what its own confirmation withdrew from the static claim.

| model | tensors | individually SI | jointly SI | false claims | groups | SI weights explr / best | audit | confirmation | claim in truth's probe | notes |
|---|---|---|---|---|---|---|---|---|---|---|
"""


def render(section: str, rows: list[Row]) -> str:
    import timm
    import torchvision
    versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, " \
               f"Python {platform.python_version()}"
    tot = totals(rows)
    header = HUNT_HEADER if section else HEADER
    lines = [header.format(n=len(rows), versions=versions, marker=marker(section))]
    lines += [table_line(r) + "\n" for r in rows]
    lines.append(f"\n**Totals over {tot['models'] - tot['not_run']} models** ({tot['not_run']} not run; "
                 f"{tot['errors']} with an error noted above): "
                 f"individually SI found {tot['ind_found']}/{tot['ind_total']}; jointly SI found "
                 f"{tot['joint_found']}/{tot['joint_total']}; false claims {tot['false']}; missed "
                 f"{tot['missed']}; left out by a choice between alternatives {tot['choice']}; undetermined by the "
                 f"truth {tot['undetermined']}.\n")
    return "".join(lines)


MARKER = "<!-- zoo section: "


def marker(section: str) -> str:
    return f"{MARKER}{section} -->" if section else ""


def splice(text: str, section: str, table: str) -> str:
    """docs/zoo.md with one section's table replaced. A section runs up to the next marker, so a
    hand-written section (its own marker, not in SECTIONS) after a table survives the render."""
    start = text.find(marker(section)) if section else 0
    if start < 0:
        return text.rstrip("\n") + "\n" + table
    end = text.find(MARKER, start + 1)
    end = len(text) if end < 0 else end
    head = text[:start].rstrip("\n") + "\n" if start else ""
    return head + table + ("\n" + text[end:] if end < len(text) else "")


def kept_row(source: str, name: str, kwargs: dict) -> Row:
    """A model's row from the cache (checked a second time once, see recheck); "not run" if absent."""
    path = row_path(source, name)
    if not path.exists():
        return Row(f"{source}/{name}", error="not run")
    row = Row.from_json(json.loads(path.read_text()))
    if row.truth is not None and not row.error and not row.rechecked:
        recheck(row, source, name, kwargs)
        row.rechecked = True
        path.write_text(json.dumps(row.to_json()))
    return row


def fresh_row(source: str, name: str, kwargs: dict) -> Row:
    row = run_model(source, name, kwargs)
    if row.truth is not None and not row.error:
        recheck(row, source, name, kwargs)
        row.rechecked = True
    path = row_path(source, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row.to_json()))
    print(table_line(row), f"(truth {row.truth_s:.1f} s)", flush=True)
    for what in ("opaque", "unknown_ops", "refuted"):
        for line in getattr(row, what)[:8]:
            print(f"    {what}: {line[:300]}", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="model names to run (default: all, and write docs/zoo.md)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render", action="store_true",
                        help="write docs/zoo.md from the rows earlier runs kept in benchmarks/.zoo-cache")
    parser.add_argument("--section", choices=[n or "main" for n, _ in SECTIONS],
                        help="with --render: rewrite only this table of docs/zoo.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if not args.render:
        every = [m for _, models in SECTIONS for m in models]
        chosen = [m for m in every if not args.only or m[1] in args.only or f"{m[0]}/{m[1]}" in args.only]
        if args.only:  # in the order asked for
            chosen.sort(key=lambda m: next(i for i, a in enumerate(args.only) if a in (m[1], f"{m[0]}/{m[1]}")))
        rows = [fresh_row(*m) for m in chosen]
        if args.only:
            print(render("", rows).rsplit("\n\n", 1)[-1])
            return
    text = OUT.read_text() if OUT.exists() else ""  # hand-written sections after the tables are kept
    for section, models in SECTIONS:
        if not args.section or (section or "main") == args.section:
            text = splice(text, section, render(section, [kept_row(*m) for m in models]))
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
