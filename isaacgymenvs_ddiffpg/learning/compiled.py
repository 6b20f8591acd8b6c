"""torch.compile of the learner's pieces: static shapes, a graph per shape, CUDA graphs on CUDA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch._dynamo
from torch import Tensor
from torch.utils import _pytree as pytree

FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])

# Graphs kept per compiled function: one per shape it is called with (batch per group count,
# rollout and evaluation sizes; up to `max_modes` + 1 group counts), so it never falls back to
# eager in a long run.
RECOMPILE_LIMIT = 64


class Compiler:
    """Wraps the pure functions an agent runs every update and every step in `torch.compile`.

    Every wrapped function takes its modules and tensors as arguments (noise comes in drawn from
    the agent's generator, so nothing random happens inside a graph) and holds no host sync, no
    ``.item()`` and no branch on a tensor's value, so each compiles to one graph (``fullgraph``).
    Shapes are static (``dynamic=False``): a new shape, such as the batch of each group after
    mode discovery changes the number of groups, compiles one more graph, which is kept and
    reused whenever that shape comes back; parameters replaced by mode discovery's remap (same
    shapes) reuse the graph as it is. Modules are passed, never replaced, so their state_dict
    keys are the same compiled or not.

    On CPU the graphs run inductor's C++ kernels. On CUDA they are captured as CUDA graphs
    (``mode="reduce-overhead"``); a wrapped function's outputs are then copied out of the
    graphs' memory pool, so a later replay cannot overwrite what the caller holds.

    Args:
        enabled: compile (False: every function runs as it is, eagerly).
        device: where the agent runs.

    Attributes:
        backend: torch.compile's backend: "inductor", or e.g. "aot_eager" to trace the same
            graphs without generating code (what the fast tests check).
    """

    backend = "inductor"

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.enabled = enabled
        self.cuda_graphs = enabled and device.type == "cuda"
        if enabled:
            limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
            torch._dynamo.config.recompile_limit = limit

    def __call__(self, fn: FunctionT) -> FunctionT:
        """`fn` compiled (or `fn` itself when compiling is off)."""
        if hasattr(fn, "__wrapped__"):  # e.g. under @torch.no_grad(): its wrapper's code
            # object is shared by every function so decorated, and so would be the graphs'
            # cache, its guards and its recompile limit; use `with torch.no_grad():` inside.
            raise ValueError(f"compile {fn.__qualname__} undecorated")
        if not self.enabled:
            return fn
        mode = "reduce-overhead" if self.cuda_graphs and self.backend == "inductor" else None
        compiled = torch.compile(fn, dynamic=False, fullgraph=True, mode=mode, backend=self.backend)
        if not self.cuda_graphs:
            return compiled  # type: ignore[return-value]

        def run(*args: Any, **kwargs: Any) -> Any:
            out = compiled(*args, **kwargs)
            return pytree.tree_map_only(Tensor, torch.Tensor.clone, out)

        return run  # type: ignore[return-value]

    def begin_step(self) -> None:
        """Mark the start of an update or a rollout step: on CUDA graphs, the outputs of the
        previous one are no longer needed (they were copied out)."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
