"""A converted run under the real Lightning Trainer resumes from its checkpoint (ckpt_path=) exactly.

Lightning restores the optimizer before the first batch binds the TEXPScheduler: the scheduler re-splits
the param groups as the checkpoint records, keeps the TEXP state until bind, and bind checks the split.
"""
import logging
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader, TensorDataset

from explr.errors import ConfigError
from explr.integrations.lightning import ExplrCallback, TEXPScheduler
from tests.schedule.nets import SI_NAMES, make_net

BATCHES_PER_EPOCH, EPOCHS = 8, 4
SCHEDULE = {"base_lr": 0.1, "total_iters": 40, "milestones": [12, 20], "warmup_iters": 10, "warmup_factor": 0.1}


class Module(L.LightningModule):
    def __init__(self, schedule=SCHEDULE, si=tuple(SI_NAMES), overflow_at=()):
        super().__init__()
        self.net, self.schedule, self.si, self.seen = make_net(eps=1e-20), schedule, si, []
        self.overflow_at = set(overflow_at)  # global batch indices whose loss is made inf (an AMP overflow)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        self.seen.append(out.detach().clone())
        inf = float("inf") if len(self.seen) - 1 in self.overflow_at else 1.0
        return torch.nn.functional.cross_entropy(out, y) * inf

    def configure_optimizers(self):  # what LightningCLI builds from a converted config
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        scheduler = TEXPScheduler(opt, self.schedule, si=[f"net.{n}" for n in self.si])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def loader():
    g = torch.Generator().manual_seed(1)
    n = BATCHES_PER_EPOCH * 8
    x, y = torch.randn(n, 3, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 4, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)


def fit(module, root, ckpt_path=None, *callbacks, explr=True, plugins=()):
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    trainer = L.Trainer(max_epochs=EPOCHS, callbacks=[ExplrCallback()] * explr + list(callbacks), logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=bool(callbacks),
                        accelerator="cpu", default_root_dir=str(root), plugins=list(plugins))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on num_workers and the like
        trainer.fit(module, loader(), ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """The uninterrupted run, with a checkpoint at the end of every epoch."""
    root = tmp_path_factory.mktemp("lightning")
    module = Module()
    fit(module, root, None, ModelCheckpoint(dirpath=str(root / "ckpt"), save_top_k=-1, every_n_epochs=1))
    return module, root / "ckpt"


@pytest.mark.parametrize("epoch", [0, 1], ids=["mid-warmup", "between-milestones"])
def test_resume_from_checkpoint_continues_exactly(whole_run, tmp_path, epoch):
    module, ckpt = whole_run
    step = (epoch + 1) * BATCHES_PER_EPOCH
    resumed = Module()
    trainer = fit(resumed, tmp_path, str(ckpt / f"epoch={epoch}-step={step}.ckpt"))
    assert len(resumed.seen) == len(module.seen) - step
    assert all(torch.equal(a, b) for a, b in zip(module.seen[step:], resumed.seen))  # bit for bit
    texp = trainer.lr_scheduler_configs[0].scheduler.texp
    assert texp.last_epoch == EPOCHS * BATCHES_PER_EPOCH


def test_checkpoint_of_another_schedule_is_refused_in_one_line(whole_run, tmp_path):
    _, ckpt = whole_run
    other = {**SCHEDULE, "milestones": [13, 20]}
    with pytest.raises(ConfigError, match="another LR schedule") as err:
        fit(Module(schedule=other), tmp_path, str(ckpt / "epoch=1-step=16.ckpt"))
    assert "\n" not in str(err.value)


def test_checkpoint_with_another_si_set_is_refused_in_one_line(whole_run, tmp_path):
    _, ckpt = whole_run
    with pytest.raises(ConfigError, match="the checkpoint trained 6 parameters as SI, this model's SI set has 5"):
        fit(Module(si=SI_NAMES[1:]), tmp_path, str(ckpt / "epoch=1-step=16.ckpt"))


class WeightDecayModule(Module):
    """The original run: SGD with weight decay and the torch schedule, stepped by Lightning every batch."""

    def configure_optimizers(self):
        from torch.optim.lr_scheduler import LambdaLR

        from explr.integrations.scheduler import schedule_from_args

        schedule = schedule_from_args(self.schedule)
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        sched = LambdaLR(opt, lambda i: schedule.lr_at(i) / 0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def amp():
    """Lightning's own 16-mixed precision plugin with a CPU GradScaler (the net stays float64: autocast on
    CPU lowers float32 only), so its overflow handling is the real one and the comparison stays exact."""
    return MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))


def test_amp_skipped_steps_under_lightning_keep_the_converted_run_exact(tmp_path):
    skips = {0, 5, 11, 12, 19}
    original, converted = WeightDecayModule(overflow_at=skips), Module(overflow_at=skips)
    fit(original, tmp_path / "a", explr=False, plugins=[amp()])
    trainer = fit(converted, tmp_path / "b", plugins=[amp()])
    texp = trainer.lr_scheduler_configs[0].scheduler.texp
    assert texp.skipped_steps == sorted(skips) and texp.optimizer_steps == EPOCHS * BATCHES_PER_EPOCH - len(skips)
    worst = max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(original.seen, converted.seen))
    assert worst <= 1e-12
    untouched = WeightDecayModule()
    fit(untouched, tmp_path / "c", explr=False)
    assert max((a - b).abs().max().item() for a, b in zip(original.seen, untouched.seen)) > 1e-3  # skips mattered
