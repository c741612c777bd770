"""mmdet's QuadraticWarmupLR, the oracle for explr's replay of it (mmdet cannot be installed beside CI's torch).

Copied from open-mmlab/mmdetection `mmdet/engine/schedulers/quadratic_warmup.py` (Apache-2.0, Copyright
OpenMMLab; stored version 618d65a6d99980c9630d4d6d6d90c3bf94d09f1f of a fork, identical to upstream):
the class body unchanged but its docstring; it registers in mmengine's PARAM_SCHEDULERS (mmdet's registry
is a child of it); the oracle builds a config's `mmdet.QuadraticWarmupLR` under its bare name.
The momentum variant is left out.
"""
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS
from torch.optim import Optimizer


class QuadraticWarmupParamScheduler(_ParamScheduler):
    def __init__(
        self,
        optimizer: Optimizer,
        param_name: str,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ):
        if end >= INF:
            raise ValueError(
                "``end`` must be less than infinity,"
                "Please set ``end`` parameter of "
                "``QuadraticWarmupScheduler`` as the "
                "number of warmup end."
            )
        self.total_iters = end - begin
        super().__init__(
            optimizer=optimizer,
            param_name=param_name,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose,
        )

    @classmethod
    def build_iter_from_epoch(
        cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None, **kwargs
    ):
        """Build an iter-based instance of this scheduler from an epoch-based
        config."""
        assert by_epoch, (
            "Only epoch-based kwargs whose `by_epoch=True` can "
            "be converted to iter-based."
        )
        assert epoch_length is not None and epoch_length > 0, (
            f"`epoch_length` must be a positive integer, " f"but got {epoch_length}."
        )
        by_epoch = False
        begin = begin * epoch_length
        if end != INF:
            end = end * epoch_length
        return cls(*args, begin=begin, end=end, by_epoch=by_epoch, **kwargs)

    def _get_value(self):
        """Compute value using chainable form of the scheduler."""
        if self.last_step == 0:
            return [
                base_value * (2 * self.last_step + 1) / self.total_iters**2
                for base_value in self.base_values
            ]

        return [
            group[self.param_name]
            + base_value * (2 * self.last_step + 1) / self.total_iters**2
            for base_value, group in zip(self.base_values, self.optimizer.param_groups)
        ]


class QuadraticWarmupLR(LRSchedulerMixin, QuadraticWarmupParamScheduler):
    """Warm up the learning rate of each parameter group by quadratic formula."""


PARAM_SCHEDULERS.register_module(name="QuadraticWarmupLR", module=QuadraticWarmupLR, force=True)
