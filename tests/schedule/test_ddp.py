"""torch.distributed: TEXP under DDP (gloo, 2 processes on localhost) follows the one-process trajectory.

Each rank trains on half of every batch. BatchNorm then normalizes each half with its own
statistics, so the one-process reference computes the two halves separately ("ghost batches") and
averages their mean losses: exactly the gradient DDP averages across ranks.
"""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import explr
from explr.schedule.lr import LRSchedule
from tests.schedule.nets import SI_NAMES, batches, make_net, max_rel_diff

STEPS, HALF = 30, 8
SCHEDULE = LRSchedule(0.1, STEPS, milestones=(10, 20))


def make_training(net):
    opt = torch.optim.SGD(explr.param_groups(net, SI_NAMES, weight_decay=5e-4), lr=0.1, momentum=0.9)
    return opt, explr.TEXP(opt, SCHEDULE, renormalize=(0.5, 4.0))


def step(model, opt, sched, halves):
    """One iteration on the given half-batches; returns the outputs before the update."""
    outs = [model(x) for x, _ in halves]
    loss = sum(F.cross_entropy(o, y) for o, (_, y) in zip(outs, halves)) / len(halves)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return torch.cat([o.detach() for o in outs])


def halves_of(batch):
    x, y = batch
    return [(x[:HALF], y[:HALF]), (x[HALF:], y[HALF:])]


def _worker(rank, world, port, result_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        net = make_net()
        model = DistributedDataParallel(net)
        opt, sched = make_training(net)
        outs = [step(model, opt, sched, [halves_of(b)[rank]]) for b in batches(STEPS, batch=2 * HALF)]
        gathered = [torch.empty_like(torch.stack(outs)) for _ in range(world)]
        dist.all_gather(gathered, torch.stack(outs))
        if rank == 0:
            torch.save({"outputs": torch.cat(gathered, dim=1), "renorms": sched.renormalizations}, result_path)
        dist.barrier()  # no rank tears its connections down while the other still uses them
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one_process(tmp_path):
    result = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, free_port(), str(result)), nprocs=2, join=True)
    ddp = torch.load(result)

    net = make_net()
    opt, sched = make_training(net)
    single = torch.stack([step(net, opt, sched, halves_of(b)) for b in batches(STEPS, batch=2 * HALF)])
    assert ddp["renorms"] == sched.renormalizations >= 1
    assert max_rel_diff(list(single), list(ddp["outputs"])) <= 1e-12
