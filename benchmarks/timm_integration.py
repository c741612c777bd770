"""Real timm (side venv): a converted args.yaml trained through explr.integrations.timm vs timm's own optimizer
and scheduler on the weight-decay config, timm train.py's loop reduced to the optimizer/scheduler calls.

    PYTHONPATH=$PWD/src /work/venv-tv/bin/python benchmarks/timm_integration.py

Prints the largest output difference over the run (float64, BatchNorm eps 1e-30) and the final LRs.
"""
from __future__ import annotations

import argparse
import copy
import pathlib
import sys
import tempfile

import torch
import yaml
from timm.optim import create_optimizer_v2, optimizer_kwargs
from timm.scheduler import create_scheduler_v2, scheduler_kwargs

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import explr  # noqa: E402
from explr.configs.api import write_converted  # noqa: E402
from explr.integrations.timm import create_optimizer_and_scheduler  # noqa: E402
from explr.load import load_model  # noqa: E402

MODEL = str(pathlib.Path(__file__).resolve().parents[1] / "fixtures/models/conv_bias_bn.py")


def fixture_model() -> torch.nn.Module:
    model = load_model(MODEL).model.double()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eps = 1e-30  # invariance holds up to eps/sigma^2: make it negligible
    return model.train()


def batches(n: int) -> list:
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (6,), generator=g))
            for _ in range(n)]


def loss_step(model, optimizer, batch) -> None:
    x, y = batch
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()

UPDATES, CONFIGS = 10, {
    "multistep": "opt: momentum\nlr: 0.1\nmomentum: 0.9\nweight_decay: 5.0e-3\nsched: multistep\n"
                 "decay_milestones: [2, 4]\ndecay_rate: 0.1\nepochs: 6\nwarmup_epochs: 0\nbatch_size: 6\n",
    "cosine-warmup-updates": "opt: momentum\nlr: 0.1\nmomentum: 0.9\nweight_decay: 5.0e-3\nsched: cosine\n"
                             "epochs: 6\nwarmup_epochs: 1\nwarmup_lr: 0.01\nmin_lr: 0.001\nsched_on_updates: true\n"
                             "cooldown_epochs: 0\nbatch_size: 6\n",
}


def timm_args(text: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()  # timm train.py: parser.set_defaults(**yaml.safe_load(config)), parse_args
    parser.set_defaults(**yaml.safe_load(text))
    return parser.parse_args([])


def train(model, optimizer, scheduler, epochs: int) -> list[torch.Tensor]:
    probe, outs, num_updates = batches(1)[0][0], [], 0
    data = batches(UPDATES)
    for epoch in range(epochs):  # timm train_one_epoch, reduced
        for batch in data:
            loss_step(model, optimizer, batch)
            num_updates += 1
            scheduler.step_update(num_updates=num_updates)
            with torch.no_grad():
                outs.append(model(probe))
        scheduler.step(epoch + 1)
    return outs


def main() -> None:
    tmp = pathlib.Path(tempfile.mkdtemp())
    for name, text in CONFIGS.items():
        (tmp / "args.yaml").write_text(text)
        converted = explr.convert(str(tmp / "args.yaml"), model=MODEL, iters_per_epoch=UPDATES)
        write_converted(converted, str(tmp / "args_explr.yaml"))
        args, args_explr = timm_args(text), timm_args((tmp / "args_explr.yaml").read_text())
        net = fixture_model()
        model_a, model_b = net, copy.deepcopy(net)
        opt_a = create_optimizer_v2(model_a, **optimizer_kwargs(cfg=args))
        sched_a, epochs = create_scheduler_v2(opt_a, **scheduler_kwargs(args), updates_per_epoch=UPDATES)
        opt_b, sched_b, epochs_b = create_optimizer_and_scheduler(model_b, args_explr, UPDATES)
        a, b = train(model_a, opt_a, sched_a, epochs), train(model_b, opt_b, sched_b, epochs_b)
        worst = max((x - y).abs().max().item() for x, y in zip(a, b))
        print(f"{name}: epochs {epochs}/{epochs_b}, max |output diff| {worst:.3g}, final LR original "
              f"{opt_a.param_groups[0]['lr']:.4g}, converted SI {max(g['lr'] for g in opt_b.param_groups):.4g}")


if __name__ == "__main__":
    main()
