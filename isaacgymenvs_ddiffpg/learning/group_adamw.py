"""The agents' optimisers: AdamW over group-stacked parameters, and guarded torch AdamW steps;
both skip a step whose loss or gradient is not finite, on the device."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


class GroupAdamW:
    """AdamW over group-stacked parameters with per-group step counts and grad-norm clipping.

    Each group's update depends only on its own slice, so a group restarted after
    re-clustering (``fresh``) redoes Adam's bias correction from step 0 while the others carry on.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        num_groups: int,
        lr: float = 5e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        max_grad_norm: float | None = 1.0,
        compiler: Callable[[StepFunction], StepFunction] | None = None,
    ) -> None:
        self.params = list(params)
        self.num_groups = num_groups
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.max_grad_norm = weight_decay, max_grad_norm
        device = self.params[0].device
        self.step_count = torch.zeros(num_groups, device=device)
        self.exp_avg = [torch.zeros_like(p).view(num_groups, -1) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p).view(num_groups, -1) for p in self.params]
        self.skipped = torch.zeros((), dtype=torch.bool, device=device)
        self._step: StepFunction = (
            group_adamw_step if compiler is None else compiler(group_adamw_step)
        )

    def zero_grad(self) -> None:
        """Drop all gradients."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self, skip: Tensor | None = None, active: Tensor | None = None) -> Tensor:
        """Clip each group's gradient to ``max_grad_norm`` and apply one AdamW step.

        A step whose gradient has a non-finite entry (in any group), or for which ``skip`` is
        true, changes nothing: parameters, moments and step counts keep their values, and
        ``self.skipped`` (0-d bool) says so. The choice is made on the device, without a host
        sync.

        Args:
            skip: 0-d bool, skip this step (e.g. the loss was not finite).
            active: (G,) bool, the groups to step; the others keep parameters, moments and step
                count (a group without data is not decayed or moved by its momentum either).

        Returns:
            grad_norm: (G,) per-group gradient norms before clipping (non-finite where a
            gradient was).
        """
        device = self.step_count.device
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in self.params]
        if skip is None:
            skip = torch.zeros((), dtype=torch.bool, device=device)
        if active is None:
            active = torch.ones(self.num_groups, dtype=torch.bool, device=device)
        hyper = (self.lr, self.betas, self.eps, self.weight_decay, self.max_grad_norm)
        grad_norm, self.skipped = self._step(
            self.params, grads, self.exp_avg, self.exp_avg_sq, self.step_count, skip, active, hyper
        )
        return grad_norm

    @torch.no_grad()
    def remap_groups(
        self, source: Tensor, fresh: Tensor, params: Iterable[nn.Parameter] | None = None
    ) -> None:
        """Remap optimiser state to match a remap of the parameters' groups.

        Args:
            source: (G_new,) long, new group j takes old group source[j]'s moments and step.
            fresh: (G_new,) bool, new groups whose moments are zeroed and step reset to 0.
            params: the remapped parameters, in the original order, when the network replaced
                its Parameter objects (as ``GroupDistributionalDoubleQ.remap_groups`` does).
        """
        if params is not None:
            self.params = list(params)
        keep = (~fresh).to(self.step_count.dtype)
        self.step_count = self.step_count[source] * keep
        keep = keep.unsqueeze(1)
        self.exp_avg = [state[source] * keep for state in self.exp_avg]
        self.exp_avg_sq = [state[source] * keep for state in self.exp_avg_sq]
        self.num_groups = source.shape[0]


StepFunction = Callable[..., tuple[Tensor, Tensor]]


def group_adamw_step(
    params: list[nn.Parameter],
    grads: list[Tensor],
    exp_avg: list[Tensor],
    exp_avg_sq: list[Tensor],
    step_count: Tensor,
    skip: Tensor,
    active: Tensor,
    hyper: tuple[float, tuple[float, float], float, float, float | None],
) -> tuple[Tensor, Tensor]:
    """`GroupAdamW.step` as a function of its tensors (compiled as one graph when asked).

    Args:
        params: parameters with a group-major leading dimension; updated in place.
        grads: their gradients (zeros where there are none).
        exp_avg, exp_avg_sq: (G, -1) moments per parameter; updated in place.
        step_count: (G,) steps taken per group; updated in place.
        skip: 0-d bool; active: (G,) bool, as for `GroupAdamW.step`.
        hyper: lr, betas, eps, weight decay, max grad norm.

    Returns:
        grad_norm: (G,) before clipping; skipped: 0-d bool.
    """
    with torch.no_grad():
        lr, (beta1, beta2), eps, weight_decay, max_grad_norm = hyper
        groups = step_count.shape[0]
        grads = [grad.reshape(groups, -1) for grad in grads]
        grad_norm = torch.stack([grad.square().sum(dim=1) for grad in grads]).sum(dim=0).sqrt()
        clip = torch.ones_like(grad_norm)
        if max_grad_norm is not None:
            clip = (max_grad_norm / (grad_norm + 1e-6)).clamp(max=1.0)
        ok = torch.isfinite(grad_norm).all() & ~skip
        go = ok & active  # (G,) groups that step
        step_count.add_(go.to(step_count.dtype))
        count = step_count.clamp(min=1.0)  # a skipped first step must not divide by 0
        step_size = (lr / (1.0 - beta1**count)).unsqueeze(1)
        bias_correction2_sqrt = (1.0 - beta2**count).sqrt().unsqueeze(1)
        rows = go.unsqueeze(1)
        for param, grad, avg, avg_sq in zip(params, grads, exp_avg, exp_avg_sq, strict=True):
            grad = grad * clip.unsqueeze(1)
            value = param.view(groups, -1)
            new_value = value * (1.0 - lr * weight_decay)
            new_avg = avg.lerp(grad, 1.0 - beta1)
            new_avg_sq = avg_sq * beta2 + grad * grad * (1.0 - beta2)
            denom = new_avg_sq.sqrt() / bias_correction2_sqrt + eps
            new_value = new_value - step_size * new_avg / denom
            value.copy_(torch.where(rows, new_value, value))
            avg.copy_(torch.where(rows, new_avg, avg))
            avg_sq.copy_(torch.where(rows, new_avg_sq, avg_sq))
        return grad_norm, ~ok


def make_adamw(params: Any, lr: float) -> torch.optim.AdamW:
    """torch's fused AdamW: one kernel per step, and it honours `found_inf`, so `guarded_step`
    can skip a step on the device."""
    return torch.optim.AdamW(params, lr=lr, fused=True)


def guarded_step(
    optimizer: torch.optim.Optimizer,
    params: Sequence[Tensor],
    loss: Tensor,
    max_grad_norm: float | None,
) -> Tensor:
    """Clip the gradients of `params` to `max_grad_norm` (None: no clipping) and take one step
    of `optimizer` (a fused torch optimizer, see `make_adamw`), unless the loss or a gradient
    is not finite: then the parameters and the optimiser's state keep their values. Decided on
    the device, without a host sync.

    Returns:
        skipped: 0-d bool.
    """
    if max_grad_norm is None:
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    else:
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    skipped = ~(torch.isfinite(norm) & torch.isfinite(loss.detach()))
    optimizer.grad_scale = None  # type: ignore[attr-defined]
    optimizer.found_inf = skipped.float()  # type: ignore[attr-defined]
    optimizer.step()
    return skipped
