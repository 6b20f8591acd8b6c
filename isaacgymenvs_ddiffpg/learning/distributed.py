"""Multi-process training under torchrun or SLURM: broadcasts, gradient averaging, discovery.

One process per device with its own envs and replay. Networks, optimisers and modes are
replicas: they start from rank 0's copy and every optimiser step uses gradients averaged over
the ranks (one flattened all-reduce). Mode discovery runs on rank 0 over the completed
trajectories of all ranks and is broadcast: the union gives the modes one process holding all
the data would find, with the single-process code and no consensus step. Every rank runs the
same collectives in the same order. Without a process group every method is a no-op.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.utils.errors import ConfigError

if TYPE_CHECKING:  # discovery pulls in scikit-learn; train.py imports this module early
    from isaacgymenvs_ddiffpg.learning.discovery import Discovery

# A trajectory id on rank r is r * RANK_ID_STRIDE + its local id (local ids stay far below), so
# ids are unique across ranks and rank 0's ids, the ones in a checkpoint, are unchanged.
RANK_ID_STRIDE = 2**48

# Checkpoint keys that hold one rank's own data rather than replicated state.
LOCAL_KEYS = ("obs", "rollout_group", "torch_rng", "env_state", "eval_env_state")
LOCAL_ALGO_KEYS = ("replay", "generator", "rng")


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list, e.g. ``"gpu[07-09,12],cpu3"`` -> ``"gpu07"``."""
    first = re.match(r"([^,\[]+)(\[([^\]]*)\])?", nodelist.strip())
    if first is None:
        raise ValueError(f"cannot read the SLURM node list {nodelist!r}")
    prefix, ranges = first.group(1), first.group(3)
    return prefix if ranges is None else prefix + ranges.split(",")[0].split("-")[0]


def slurm_to_torchrun_env(environ: MutableMapping[str, str]) -> None:
    """Fill torchrun's variables from SLURM's when a SLURM task was started without torchrun.

    ``SLURM_PROCID`` -> ``RANK``, ``SLURM_LOCALID`` -> ``LOCAL_RANK``, ``SLURM_NTASKS`` ->
    ``WORLD_SIZE``; ``MASTER_ADDR`` is the job's first node and ``MASTER_PORT`` derives from the
    job id (both kept when already set). Nothing changes when ``RANK`` is set or outside SLURM.
    """
    if "RANK" in environ or "SLURM_PROCID" not in environ:
        return
    environ["RANK"] = environ["SLURM_PROCID"]
    environ["LOCAL_RANK"] = environ.get("SLURM_LOCALID", "0")
    environ["WORLD_SIZE"] = environ.get("SLURM_NTASKS", "1")
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")
    environ.setdefault("MASTER_ADDR", first_slurm_host(nodelist) if nodelist else "127.0.0.1")
    environ.setdefault("MASTER_PORT", str(20000 + int(environ.get("SLURM_JOB_ID", "0")) % 20000))


def device_for_rank(device: str, local_rank: int) -> str:
    """The device of a rank: ``cuda`` or ``cuda:k`` becomes ``cuda:<local_rank>``; CPU stays."""
    return f"cuda:{local_rank}" if device.startswith("cuda") else device


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group of a torchrun or SLURM launch (NCCL on CUDA, gloo on CPU).

    Args:
        device: the rl device as configured (``cpu``, ``cuda`` or ``cuda:k``).

    Returns:
        ``(rank, local_rank)``.

    Raises:
        ConfigError: not started by torchrun or as a SLURM task.
    """
    slurm_to_torchrun_env(os.environ)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ConfigError(
            "multi_gpu=True runs one process per device and needs torchrun (or a SLURM task) to "
            "start them, e.g. torchrun --standalone --nproc_per_node=2 train.py multi_gpu=True "
            "...; for one process drop multi_gpu=True."
        )
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, local_rank


def shutdown_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def state_digest(state: Any) -> str:
    """SHA-256 of a nested state (dicts, sequences, tensors, plain values), order-independent
    in dict keys; equal states give equal digests on any rank."""
    sha = hashlib.sha256()

    def visit(value: Any) -> None:
        if isinstance(value, Tensor):
            data = value.detach().cpu().contiguous()
            sha.update(f"T{data.dtype}{tuple(data.shape)}".encode())
            sha.update(data.view(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, Mapping):
            sha.update(b"{")
            for key in sorted(value, key=repr):
                sha.update(repr(key).encode())
                visit(value[key])
            sha.update(b"}")
        elif isinstance(value, list | tuple):
            sha.update(b"[")
            for item in value:
                visit(item)
            sha.update(b"]")
        else:
            sha.update(repr(value).encode())

    visit(state)
    return sha.hexdigest()


def replicated_state(algo_state: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `DDiffPG.state_dict` output every rank holds identically."""
    return {key: value for key, value in algo_state.items() if key not in LOCAL_ALGO_KEYS}


def keep_local_state(loaded: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint for a rank > 0 to resume from: rank 0's replicated state (networks,
    optimisers, modes, counters) with this rank's own replay, envs and random streams.

    Args:
        loaded: `Trainer.state_dict` output read from the checkpoint.
        own: this rank's current `Trainer.state_dict` output.
    """
    merged = {**loaded, **{key: own[key] for key in LOCAL_KEYS if key in own}}
    for key in LOCAL_KEYS:
        if key not in own:
            merged.pop(key, None)
    merged["algo"] = {**loaded["algo"], **{key: own["algo"][key] for key in LOCAL_ALGO_KEYS}}
    return merged


def concat_trajectories(parts: list[dict[str, Tensor]], device: torch.device) -> dict[str, Tensor]:
    """Concatenate `TrajectoryReplay.completed` outputs of several ranks (ids already global).

    Paths are zero-padded to the longest horizon; ids stay sorted since rank r's ids all lie in
    ``[r * RANK_ID_STRIDE, (r + 1) * RANK_ID_STRIDE)``.
    """
    horizon = max(part["paths"].shape[1] for part in parts)
    paths = [
        nn.functional.pad(part["paths"], (0, 0, 0, horizon - part["paths"].shape[1]))
        for part in parts
    ]
    out = {key: torch.cat([part[key] for part in parts]) for key in parts[0] if key != "paths"}
    out["paths"] = torch.cat(paths)
    return {key: value.to(device) for key, value in out.items()}


class Distributed:
    """The process group as the trainer sees it; rank 0 of 1 with no-op methods when
    ``torch.distributed`` is not initialised (every single-process run).

    Attributes:
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(self) -> None:
        self.enabled = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.enabled else 0
        self.world_size = dist.get_world_size() if self.enabled else 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the rank that logs, evaluates, saves and clusters."""
        return self.rank == 0

    def broadcast_modules(self, *modules: nn.Module) -> None:
        """Overwrite every parameter and buffer with rank 0's, in place."""
        if not self.enabled:
            return
        for module in modules:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (pickled; keep tensors in it on the CPU)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_state(self, obj: Any) -> None:
        """Load rank 0's ``obj.state_dict()`` into `obj` on every rank (CPU state only)."""
        if self.enabled:
            obj.load_state_dict(self.broadcast_object(obj.state_dict() if self.is_main else None))

    def broadcast_flag(self, flag: bool, device: str | torch.device = "cpu") -> bool:
        """Rank 0's decision, e.g. to stop, on every rank (device: the backend's device)."""
        if not self.enabled:
            return flag
        box = torch.tensor([flag], dtype=torch.uint8, device=device)
        dist.broadcast(box, src=0)
        return bool(box.item())

    def average_gradients(self, params: Iterable[Tensor]) -> None:
        """Replace each gradient with its mean over the ranks: one all-reduce of all of them
        flattened. Call after ``backward()`` and before clipping and the optimiser step.

        A parameter without a gradient counts as a zero gradient (it gets one), so every rank
        reduces the same layout.
        """
        if not self.enabled:
            return
        params = [param for param in params if param.requires_grad]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for param in params:
            param.grad = flat[offset : offset + param.numel()].view_as(param)
            offset += param.numel()

    def sum_(self, *tensors: Tensor) -> None:
        """Sum each tensor over the ranks, in place (e.g. episode counters before logging)."""
        if self.enabled:
            for tensor in tensors:
                dist.all_reduce(tensor)

    def discover_on_main(
        self,
        trajectories: dict[str, Tensor],
        discover: Callable[[dict[str, Tensor]], Discovery],
    ) -> Discovery:
        """Mode discovery over the completed trajectories of every rank, run on rank 0.

        Rank 0 gathers every rank's trajectories (ids made global), runs `discover` on the
        union, and broadcasts the result; each rank gets the plan and success labels of the
        whole round and the labels and evictions of its own trajectories, in local ids.

        Args:
            trajectories: this rank's `TrajectoryReplay.completed` output.
            discover: one discovery round on a `completed`-like dict (e.g. `discover_modes`
                with its other arguments bound).

        Returns:
            This rank's view of the round.
        """
        if not self.enabled:
            return discover(trajectories)
        device = trajectories["paths"].device
        mine = {key: value.cpu() for key, value in trajectories.items()}
        mine["ids"] = mine["ids"] + self.rank * RANK_ID_STRIDE
        parts: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(mine, parts, dst=0)
        found = None
        if parts is not None:
            found = discover(concat_trajectories(parts, device))
            found = dataclasses.replace(
                found,
                ids=found.ids.cpu(),
                groups=found.groups.cpu(),
                evict_ids=found.evict_ids.cpu(),
                new_route_ids=found.new_route_ids.cpu(),
            )
        return self.local_view(self.broadcast_object(found))

    def local_view(self, found: Discovery) -> Discovery:
        """The labels and evictions of this rank's trajectories in a global round, local ids."""
        offset = self.rank * RANK_ID_STRIDE
        keep = found.ids // RANK_ID_STRIDE == self.rank
        evict = found.evict_ids[found.evict_ids // RANK_ID_STRIDE == self.rank]
        new_route = found.new_route_ids[found.new_route_ids // RANK_ID_STRIDE == self.rank]
        return dataclasses.replace(
            found,
            ids=found.ids[keep] - offset,
            groups=found.groups[keep],
            evict_ids=evict - offset,
            new_route_ids=new_route - offset,
        )

    def check_replicas(self, algo_state: Mapping[str, Any]) -> list[str]:
        """Digests of every rank's replicated state (networks, optimisers, modes), after
        checking they agree; [] in a single process.

        Raises:
            RuntimeError: on every rank, when the replicas have diverged.
        """
        if not self.enabled:
            return []
        digests: list[Any] = [None] * self.world_size
        dist.all_gather_object(digests, state_digest(replicated_state(algo_state)))
        if len(set(digests)) > 1:
            raise RuntimeError(
                f"The ranks' networks, optimisers or modes have diverged (state digests "
                f"{[d[:12] for d in digests]}); every rank must run the same updates and "
                f"collectives."
            )
        return digests
