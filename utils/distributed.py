"""Data-parallel training with ``torchrun`` and ``torch.distributed`` (DistributedDataParallel).

    torchrun --nproc_per_node 2 main_modern.py --model resnet18 ...      # one machine, 2 processes
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 main_modern.py ...

torchrun starts one process per device and tells each its place in environment variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...); :func:`setup` reads them and joins
the process group (``nccl`` on CUDA, ``gloo`` on CPU). Nothing else here launches processes or
moves data between them by hand. What data parallelism changes, and where:

- each process trains on its own shard of every batch: ``--batch-size`` is per process, the global
  batch is ``batch_size × world_size``, and step ``s`` of an epoch is the same global batch as a
  single process with that batch would see (``utils/data/order.shard_window``);
- DDP averages the gradients in the backward pass, so every process takes the same step;
- the step log and the evaluation sums are added over processes (:func:`all_reduce_sum`), so the
  loss, accuracies and the non-finite check are global and every process decides alike;
- only rank 0 prints, writes files and holds the run folder's lock; checkpoints hold the unwrapped
  model, so a DDP run's ``best.pt`` evaluates and resumes in a single process, and the other way round.

Without torchrun (no ``LOCAL_RANK`` in the environment) every function here is a no-op.
"""
from __future__ import annotations

import atexit
import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from utils.errors import UserError

TIMEOUT = datetime.timedelta(minutes=10)  # a collective that waits longer than this means a peer is gone


@dataclass(frozen=True)
class Placement:
    """Where this process is: rank among ``world_size`` processes, and its device index on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def restarted_by_torchrun() -> bool:
    """True in a worker that ``torchrun --max-restarts`` started again after a failure."""
    return launched_by_torchrun() and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def setup(device: torch.device) -> Placement:
    """Join torchrun's process group (once per process) on ``device``'s kind; a plain ``python`` run gets rank 0 of 1."""
    if not launched_by_torchrun():
        return Placement()
    placement = Placement(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        use_cuda = device.type == "cuda"
        if use_cuda:
            torch.cuda.set_device(placement.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo", store=restart_store(), rank=placement.rank,
                                world_size=placement.world_size, timeout=TIMEOUT)
        # Leave the group before the interpreter tears down: a gloo process that exits still in it can abort
        # ("terminate called without an active exception") while its peer is still saving the run's files.
        atexit.register(shutdown)
        if not placement.is_main:
            sys.stdout = open(os.devnull, "w")  # only rank 0 prints; errors still reach stderr
    return placement


def restart_store() -> dist.Store:
    """torchrun's key-value store, under a prefix of its own for each ``--max-restarts`` attempt.

    The processes of a group find each other through the store: each writes its address under a
    fixed key and reads the others'. torchrun keeps one store for the whole job, so after a restart
    the keys of the dead processes are still there, and a restarted process that reads a peer's key
    before the peer rewrites it gets a dead address (gloo: "connectFullMesh failed ... Connection
    refused"). A prefix per attempt gives each attempt fresh keys.
    """
    store, _, _ = next(dist.rendezvous("env://", timeout=TIMEOUT))
    return dist.PrefixStore(f"attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def device_for(placement: Placement, device: torch.device) -> torch.device:
    """Each process of a CUDA run gets its own GPU (``cuda:LOCAL_RANK``)."""
    if placement.distributed and device.type == "cuda":
        return torch.device("cuda", placement.local_rank)
    return device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place (no-op in a single process); returns it."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_process(flag: bool, device: torch.device) -> bool:
    """True on every process when ``flag`` is True on at least one (e.g. a stop signal)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    return bool(all_reduce_sum(torch.tensor([int(flag)], device=device)).item())


def share_from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every process. A UserError instance is raised on every process."""
    if dist.is_available() and dist.is_initialized():
        box = [value]
        dist.broadcast_object_list(box, src=0)
        value = box[0]
    if isinstance(value, UserError):
        raise value
    return value


def gather_to_all(tensor: torch.Tensor) -> torch.Tensor:
    """The concatenation over processes (in rank order) of CPU tensors of any length along dim 0."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    parts = [None] * dist.get_world_size()
    # As plain lists: pickled tensors do not survive the object collectives of every backend.
    dist.all_gather_object(parts, (tensor.tolist(), str(tensor.dtype).removeprefix("torch.")))
    # A process with nothing to add (no test images in its share) sends []: its part is left out.
    gathered = [torch.tensor(values, dtype=getattr(torch, dtype)) for values, dtype in parts if values]
    return torch.cat(gathered) if gathered else tensor


def share_state_from_main(state: dict[str, torch.Tensor] | None, template: dict[str, torch.Tensor]
                          ) -> dict[str, torch.Tensor]:
    """Rank 0's tensors ``state`` (e.g. a checkpoint's weights) on every process, shaped like ``template``."""
    if not (dist.is_available() and dist.is_initialized()):
        return state
    shared = {}
    for key, like in template.items():
        tensor = state[key].to(like.device).clone() if state is not None else torch.empty_like(like)
        dist.broadcast(tensor, src=0)
        shared[key] = tensor
    return shared


def is_peer_failure(error: BaseException) -> bool:
    """Does ``error`` (from a collective) mean that another process died or cannot be reached?"""
    message = str(error).lower()
    return isinstance(error, getattr(dist, "DistError", ())) or any(
        word in message for word in ("connection", "peer", "closed", "timed out", "timeout", "broken pipe"))


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every process, as DDP's next forward would make them."""
    if dist.is_available() and dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
