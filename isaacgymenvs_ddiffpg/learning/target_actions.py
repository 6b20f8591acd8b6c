"""Diffusion policy gradient target actions: batched Adam ascent of min(Q1, Q2) over actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.critics import GroupDistributionalDoubleQ, GroupLinear

QFunction = Callable[[Tensor, Tensor], Tensor]
# action (G, B, act_dim) -> min(Q1, Q2) (G, B) and its gradient with respect to the action
QGrad = Callable[[Tensor], tuple[Tensor, Tensor]]


def _layers(critic: GroupDistributionalDoubleQ) -> list[GroupLinear]:
    return [cast(GroupLinear, layer) for layer in critic.heads.layers]


def project_obs(critic: GroupDistributionalDoubleQ, obs: Tensor) -> Tensor:
    """The first critic layer's pre-activation from the observation columns, bias included:
    what stays fixed while the ascent moves the actions.

    Args:
        critic: the stacked critics.
        obs: (G, B, obs_dim).

    Returns:
        (2G, B, hidden[0]), member 2g + h for head h of group g.
    """
    groups, batch, obs_dim = obs.shape
    first = _layers(critic)[0]
    members = obs.unsqueeze(1).expand(groups, critic.num_heads, batch, obs_dim)
    members = members.reshape(groups * critic.num_heads, batch, obs_dim)
    return torch.baddbmm(first.bias, members, first.weight[:, :obs_dim])


def critic_q_and_grad(
    critic: GroupDistributionalDoubleQ, obs_proj: Tensor, action: Tensor, with_grad: bool = True
) -> tuple[Tensor, Tensor | None]:
    """min(Q1, Q2) and, written out by hand, its gradient with respect to the action.

    The same values as ``critic.q`` and ``torch.autograd.grad`` of it, without autograd: the
    observation's share of the first layer comes in projected (`project_obs`), the backward
    pass computes input gradients only, and the whole step is one traceable graph.

    Args:
        critic: the stacked critics (ELU hidden layers).
        obs_proj: (2G, B, hidden[0]) from `project_obs`.
        action: (G, B, act_dim).
        with_grad: also return the gradient.

    Returns:
        q: (G, B) min(Q1, Q2).
        grad: (G, B, act_dim) dq/da (of the head that is the minimum), or None.
    """
    groups, batch, act_dim = action.shape
    heads = critic.num_heads
    layers = _layers(critic)
    activation = critic.heads.activation
    assert isinstance(activation, nn.ELU), "the hand-written gradient is ELU's"
    alpha = activation.alpha
    obs_dim = layers[0].weight.shape[1] - act_dim
    action_weight = layers[0].weight[:, obs_dim:]  # (2G, act_dim, hidden[0])
    members = action.unsqueeze(1).expand(groups, heads, batch, act_dim)
    pre = [torch.baddbmm(obs_proj, members.reshape(groups * heads, batch, act_dim), action_weight)]
    for layer in layers[1:]:
        pre.append(torch.baddbmm(layer.bias, F.elu(pre[-1], alpha), layer.weight))
    probs = pre.pop().softmax(dim=-1)  # (2G, B, atoms)
    q_heads = (probs * critic.support).sum(-1).view(groups, heads, batch)
    second = q_heads[:, 1] < q_heads[:, 0]  # ties go to head 0, as min's first index does
    q = torch.where(second, q_heads[:, 1], q_heads[:, 0])
    if not with_grad:
        return q, None
    chosen = torch.stack((~second, second), dim=1).to(probs.dtype).view(groups * heads, batch, 1)
    # dQ/dlogit_j = p_j (z_j - Q) for the chosen head, 0 for the other
    delta = probs * (critic.support - q_heads.view(groups * heads, batch, 1)) * chosen
    for layer, x in zip(reversed(layers[1:]), reversed(pre), strict=True):
        delta = torch.bmm(delta, layer.weight.transpose(1, 2))
        delta = torch.ops.aten.elu_backward(delta, alpha, 1.0, 1.0, False, x)  # * ELU'(x)
    grad = torch.bmm(delta, action_weight.transpose(1, 2))  # (2G, B, act_dim)
    return q, grad.view(groups, heads, batch, act_dim).sum(dim=1)


def autograd_q_grad(q_fn: QFunction, obs: Tensor) -> QGrad:
    """A `QGrad` of any differentiable q_fn(obs, action) -> (G, B), through autograd."""
    obs = obs.detach()

    def q_grad(action: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            action = action.detach().requires_grad_(True)
            q = q_fn(obs, action)
            (grad,) = torch.autograd.grad(q.sum(), action)
        return q.detach(), grad

    return q_grad


def ascend(
    q_grad: QGrad,
    target_action: Tensor,
    steps: int = 20,
    lr: float = 0.03,
    eps: float = 1e-5,
    max_grad_norm: float | None = 1.0,
    bound: float = 1.0 - 1e-5,
    betas: tuple[float, float] = (0.9, 0.999),
    flat_grad: float | Tensor = 0.0,
    relative_flat: float | Tensor = 0.0,
) -> Tensor:
    """Adam ascent of each group's mean Q over its actions (see `improve_target_actions`).

    Args:
        q_grad: action (G, B, act_dim) -> (Q (G, B), dQ/da (G, B, act_dim)).
        target_action: (G, B, act_dim) starting actions.
        steps, lr, eps, max_grad_norm, bound, betas, flat_grad, relative_flat: as
            `improve_target_actions`.

    Returns:
        improved: (G, B, act_dim) detached.
    """
    beta1, beta2 = betas
    action = target_action.detach().clamp(-bound, bound)
    batch = action.shape[1]
    exp_avg = torch.zeros_like(action)
    exp_avg_sq = torch.zeros_like(action)
    flat, relative = (
        torch.as_tensor(x, dtype=action.dtype, device=action.device).reshape(-1, 1, 1)
        for x in (flat_grad, relative_flat)
    )
    denom_floor = eps + flat / batch  # the loss is a batch mean: grads carry 1 / B
    for step in range(1, steps + 1):
        # 1. Gradient of each group's loss -mean_b min(Q1, Q2) with respect to its actions.
        grad = q_grad(action)[1] * (-1.0 / batch)
        # 2. Clip the gradient norm per group.
        if max_grad_norm is not None:
            grad_norm = grad.flatten(1).norm(dim=1).view(-1, 1, 1)
            grad = grad * (max_grad_norm / (grad_norm + 1e-6)).clamp(max=1.0)
        if step == 1:  # the relative floor: a share of the group's mean slope where it starts
            denom_floor = denom_floor + relative * grad.abs().mean(dim=(1, 2), keepdim=True)
        # 3. Adam step (same arithmetic as torch.optim.Adam), then clamp into the box.
        exp_avg = exp_avg.lerp(grad, 1.0 - beta1)
        exp_avg_sq = exp_avg_sq * beta2 + grad * grad * (1.0 - beta2)
        step_size = lr / (1.0 - beta1**step)
        denom = exp_avg_sq.sqrt() / (1.0 - beta2**step) ** 0.5 + denom_floor
        action = (action - step_size * exp_avg / denom).clamp(-bound, bound)
    return action


def improve_target_actions(
    q_fn: QFunction | GroupDistributionalDoubleQ,
    obs: Tensor,
    target_action: Tensor,
    steps: int = 20,
    lr: float = 0.03,
    eps: float = 1e-5,
    max_grad_norm: float | None = 1.0,
    bound: float = 1.0 - 1e-5,
    betas: tuple[float, float] = (0.9, 0.999),
    flat_grad: float | Tensor = 0.0,
    relative_flat: float | Tensor = 0.0,
) -> Tensor:
    """Improve stored target actions by Adam ascent on each group's own critic (DDiffPG 1.2).

    Every group g minimises -mean_b Q_g(s_b, a_b) with a fresh Adam state, as the released code
    does with a new action optimiser per call. Groups are independent: each group gets exactly
    its own gradient, clipped to ``max_grad_norm`` over that group's (B, act_dim) slice. Only
    the actions receive gradients, so nothing accumulates in the critic's ``.grad``: for the
    stacked critics the gradient is written out (`critic_q_and_grad`, the observation's share of
    the first layer computed once), for any other q_fn it comes from autograd. Actions are
    clamped to [-bound, bound] before the first step and after every step.

    Args:
        q_fn: the stacked critics, or any map of obs (G, B, obs_dim) and actions
            (G, B, act_dim) to min(Q1, Q2), (G, B).
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
        relative_flat: a flat slope as a share of the group's mean |dQ/da| over its batch at
            the first step, added to `flat_grad`; it scales with the critic (a float, or a (G,)
            tensor per group).

    Returns:
        improved: (G, B, act_dim) detached target actions.
    """
    if isinstance(q_fn, GroupDistributionalDoubleQ):
        return ascend_critic(
            q_fn,
            obs,
            target_action,
            steps,
            lr,
            eps,
            max_grad_norm,
            bound,
            betas,
            flat_grad,
            relative_flat=relative_flat,
        )[0]
    with torch.no_grad():
        return ascend(
            autograd_q_grad(q_fn, obs),
            target_action,
            steps,
            lr,
            eps,
            max_grad_norm,
            bound,
            betas,
            flat_grad,
            relative_flat,
        )


def ascend_critic(
    critic: GroupDistributionalDoubleQ,
    obs: Tensor,
    target_action: Tensor,
    steps: int = 20,
    lr: float = 0.03,
    eps: float = 1e-5,
    max_grad_norm: float | None = 1.0,
    bound: float = 1.0 - 1e-5,
    betas: tuple[float, float] = (0.9, 0.999),
    flat_grad: float | Tensor = 0.0,
    active: Tensor | None = None,
    relative_flat: float | Tensor = 0.0,
) -> tuple[Tensor, Tensor]:
    """`improve_target_actions` on the stacked critics; a sample whose ascent ends non-finite,
    or a group not `active`, keeps its stored action. Also gives the Q of the result.

    Args:
        critic: the stacked critics.
        obs: (G, B, obs_dim).
        target_action: (G, B, act_dim) the stored target actions.
        steps, lr, eps, max_grad_norm, bound, betas, flat_grad: as `improve_target_actions`.
        active: (G,) bool, the groups whose actions may change (None: all).
        relative_flat: as `improve_target_actions`.

    Returns:
        improved: (G, B, act_dim).
        q: (G, B) min(Q1, Q2) at the improved actions.
    """
    with torch.no_grad():
        obs_proj = project_obs(critic, obs)

        def q_grad(action: Tensor) -> tuple[Tensor, Tensor]:
            q, grad = critic_q_and_grad(critic, obs_proj, action)
            assert grad is not None
            return q, grad

        improved = ascend(
            q_grad,
            target_action,
            steps,
            lr,
            eps,
            max_grad_norm,
            bound,
            betas,
            flat_grad,
            relative_flat,
        )
        keep = torch.isfinite(improved).all(dim=-1, keepdim=True)
        if active is not None:
            keep = keep & active[:, None, None]
        improved = torch.where(keep, improved, target_action)
        return improved, critic_q_and_grad(critic, obs_proj, improved, with_grad=False)[0]
