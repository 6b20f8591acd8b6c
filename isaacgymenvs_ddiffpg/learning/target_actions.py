"""Diffusion policy gradient target actions: batched Adam ascent of min(Q1, Q2) over actions."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

QFunction = Callable[[Tensor, Tensor], Tensor]


def improve_target_actions(
    q_fn: QFunction,
    obs: Tensor,
    target_action: Tensor,
    steps: int = 20,
    lr: float = 0.03,
    eps: float = 1e-5,
    max_grad_norm: float | None = 1.0,
    bound: float = 1.0 - 1e-5,
    betas: tuple[float, float] = (0.9, 0.999),
    flat_grad: float | Tensor = 0.0,
) -> Tensor:
    """Improve stored target actions by Adam ascent on each group's own critic (DDiffPG 1.2).

    Every group g minimises -mean_b Q_g(s_b, a_b) with a fresh Adam state, as the released code
    does with a new action optimiser per call. Groups are independent: the summed loss gives
    each group exactly its own gradient, which is clipped to ``max_grad_norm`` over that
    group's (B, act_dim) slice. Only the actions receive gradients (``torch.autograd.grad``),
    so nothing accumulates in the critic's ``.grad``. Actions are clamped to
    [-bound, bound] before the first step and after every step.

    Args:
        q_fn: maps obs (G, B, obs_dim) and actions (G, B, act_dim) to min(Q1, Q2), (G, B).
        obs: (G, B, obs_dim).
        target_action: (G, B, act_dim) current target actions.
        steps: number of Adam steps.
        lr: Adam step size.
        eps: Adam epsilon.
        max_grad_norm: per-group gradient norm clip, or None for no clipping.
        bound: actions are kept in [-bound, bound].
        betas: Adam moment decay rates.
        flat_grad: a slope |dQ/da| (per sample, per action dim) treated as flat: added to
            Adam's denominator, so a step is about ``lr * g / (|g| + flat_grad)``. 0 (released):
            every step has size ``lr`` whatever the slope, so where the critic is flat in a
            direction (e.g. pushing into a wall) noise walks the action to the bound, where it
            stays. With ``flat_grad`` > 0 such directions barely move. A (G,) tensor gives each
            group its own (a critic whose slopes are small everywhere, such as one learning only
            the small intrinsic reward, needs a smaller one, or none).

    Returns:
        improved: (G, B, act_dim) detached target actions.
    """
    beta1, beta2 = betas
    obs = obs.detach()
    action = target_action.detach().clamp(-bound, bound)
    exp_avg = torch.zeros_like(action)
    exp_avg_sq = torch.zeros_like(action)
    flat = torch.as_tensor(flat_grad, dtype=action.dtype, device=action.device)
    if flat.dim() == 1:
        flat = flat.view(-1, 1, 1)
    denom_floor = eps + flat / action.shape[1]  # the loss is a batch mean: grads carry 1 / B
    for step in range(1, steps + 1):
        # 1. Gradient of each group's loss -mean_b min(Q1, Q2) with respect to its actions.
        with torch.enable_grad():
            action.requires_grad_(True)
            loss = -q_fn(obs, action).mean(dim=1).sum()
            (grad,) = torch.autograd.grad(loss, action)
        action = action.detach()
        # 2. Clip the gradient norm per group.
        if max_grad_norm is not None:
            grad_norm = grad.flatten(1).norm(dim=1).view(-1, 1, 1)
            grad = grad * (max_grad_norm / (grad_norm + 1e-6)).clamp(max=1.0)
        # 3. Adam step (same arithmetic as torch.optim.Adam), then clamp into the box.
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        step_size = lr / (1.0 - beta1**step)
        denom = (exp_avg_sq.sqrt() / (1.0 - beta2**step) ** 0.5).add_(denom_floor)
        action = (action - step_size * exp_avg / denom).clamp(-bound, bound)
    return action
