"""Seeding of every random stream the project uses (python, numpy, torch)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_seed(seed: int, torch_deterministic: bool = False, rank: int = 0) -> int:
    """Seed python, numpy and torch; -1 draws a random seed. Returns the seed used (+ rank).

    With `torch_deterministic`, also asks torch (and cuBLAS) for deterministic kernels and turns
    off cuDNN autotuning and TF32 (the rl-games Runner turns them on, so call this after it).
    """
    if seed == -1:
        seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    seed += rank
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the legacy global stream libraries use)
    torch.manual_seed(seed)
    if torch_deterministic:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.use_deterministic_algorithms(True)
    return seed
