"""Process-group and device-mesh setup for the trainer (torchrun or a plain single process).

Under torchrun the usual env vars (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) are used.
A plain ``python`` process gets a world of one through a private FileStore, so the single-process
path runs exactly the same FSDP2 + collective code as a multi-rank run. Backend: nccl when CUDA
is available, gloo otherwise. Every collective carries ``timeout_s``: a hung rank becomes an
error, not a silent stall.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import tempfile
from dataclasses import dataclass

import torch
import torch.distributed as dist


_GROUP_STARTED = False  # set once this process has started a process group


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    mesh: object  # torch.distributed.device_mesh.DeviceMesh
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(timeout_s: float = 600.0, hsdp_replicas: int = 1) -> DistInfo:
    """Initialise (or reuse) the default process group and build the FSDP device mesh."""
    from torch.distributed.device_mesh import init_device_mesh

    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    timeout = datetime.timedelta(seconds=timeout_s)
    owns = False
    if not dist.is_initialized():
        owns = True
        global _GROUP_STARTED
        _GROUP_STARTED = True
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
            if restart == 0:
                dist.init_process_group(backend=backend, timeout=timeout)
            else:
                # After a torchrun restart the launcher's store still holds the dead attempt's
                # peer addresses; a per-attempt key prefix keeps the new ranks from reading them.
                rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
                agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
                base = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                                     is_master=(rank == 0 and not agent), timeout=timeout, multi_tenant=not agent)
                store = dist.PrefixStore(f"ifrl/attempt_{restart}", base)
                dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world, timeout=timeout)
        else:
            # Single process without torchrun: a private file store avoids picking a TCP port.
            fd, path = tempfile.mkstemp(prefix="ifrl_store_")
            os.close(fd)
            os.unlink(path)
            store = dist.FileStore(path, 1)
            dist.init_process_group(backend=backend, store=store, rank=0, world_size=1, timeout=timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if hsdp_replicas > 1:
        if world % hsdp_replicas:
            raise ValueError(f"parallel.hsdp_replicas={hsdp_replicas} must divide the world size {world}.")
        mesh = init_device_mesh(device.type, (hsdp_replicas, world // hsdp_replicas), mesh_dim_names=("replicate", "shard"))
    else:
        mesh = init_device_mesh(device.type, (world,), mesh_dim_names=("shard",))
    return DistInfo(rank, world, local_rank, device, mesh, owns)


def _all_reduce(t: torch.Tensor, op) -> torch.Tensor:
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return t
    if dist.get_backend() == "nccl" and t.device.type != "cuda":
        # nccl reduces device tensors only; small metric vectors make the round trip cheap.
        dev = t.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(dev, op=op)
        t.copy_(dev.cpu())
    else:
        dist.all_reduce(t, op=op)
    return t


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum across ranks in place (CPU tensors are moved to the GPU and back under nccl)."""
    return _all_reduce(t, dist.ReduceOp.SUM)


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    return _all_reduce(t, dist.ReduceOp.MAX)


def broadcast_object(obj, src: int = 0):
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def shutdown(info: DistInfo | None) -> None:
    if info is not None and info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def leave(code: int):
    """End a command-line process with ``code``; one that started a process group skips Python's
    interpreter teardown.

    Once FSDP2 has sharded a model, the gloo backend's worker threads outlive
    ``destroy_process_group`` (DTensor specs keep the device mesh, which holds the group; clearing
    that alone does not free it), so they still run while Python finalizes. A 2-rank gloo run of
    the in-loop evaluation test aborted once in 76 (rank 0, no Python traceback) with "terminate
    called without an active exception": what a native thread ended by forced unwinding prints,
    and that is what happens to a thread that takes the GIL while Python finalizes.
    Everything the run writes is closed by then, so the process flushes its streams and log
    handlers and exits at once."""
    if not _GROUP_STARTED:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
