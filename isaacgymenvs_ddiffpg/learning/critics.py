"""Per-group distributional double-Q critics stacked over groups, and their C51 loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.group_adamw import GroupAdamW


def remap_stacked(tensor: Tensor, num_groups: int, source: Tensor) -> Tensor:
    """Gather group slices of a group-major stacked tensor: new group j = old group source[j].

    Args:
        tensor: (G * m, ...) stacked tensor, m members per group.
        num_groups: G, the current number of groups.
        source: (G_new,) long indices into the old groups (repeats allowed).

    Returns:
        remapped: (G_new * m, ...) contiguous.
    """
    members = tensor.shape[0] // num_groups
    gathered = tensor.reshape(num_groups, -1)[source]
    return gathered.reshape(source.shape[0] * members, *tensor.shape[1:]).contiguous()


class GroupLinear(nn.Module):
    """A linear layer per group, applied with one ``baddbmm``: y[g] = x[g] W[g] + b[g]."""

    def __init__(self, num_groups: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_groups, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_groups, 1, out_features))
        with torch.no_grad():
            for group in range(num_groups):
                # Same draws, in the same order, as a fresh nn.Linear(in_features, out_features).
                weight = torch.empty(out_features, in_features)
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
                self.weight[group].copy_(weight.T)
                bound = 1.0 / math.sqrt(in_features)
                self.bias[group].uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Apply each group's layer to its own batch.

        Args:
            x: (G, B, in_features).

        Returns:
            y: (G, B, out_features).
        """
        return torch.baddbmm(self.bias, x, self.weight)


class GroupMLP(nn.Module):
    """An MLP of ``GroupLinear`` layers with an activation between layers."""

    def __init__(
        self,
        num_groups: int,
        in_dim: int,
        hidden: tuple[int, ...],
        out_dim: int,
        activation: type[nn.Module] = nn.ELU,
    ) -> None:
        super().__init__()
        dims = (in_dim, *hidden, out_dim)
        self.layers = nn.ModuleList(
            GroupLinear(num_groups, dim_in, dim_out)
            for dim_in, dim_out in zip(dims[:-1], dims[1:], strict=True)
        )
        self.activation = activation()

    def forward(self, x: Tensor) -> Tensor:
        """Apply the stacked MLP.

        Args:
            x: (G, B, in_dim).

        Returns:
            y: (G, B, out_dim).
        """
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class GroupDistributionalDoubleQ(nn.Module):
    """C51 clipped double-Q for G groups: two heads [obs, act] -> hidden (ELU) -> atom logits.

    Group 0 is Q_explore and groups 1..K are the mode critics. The two heads of group g are
    members 2g and 2g + 1 of one ``GroupMLP``, so every parameter has a group-major leading
    dimension 2G: ``param.view(G, -1)[g]`` is group g's slice, which is what ``GroupAdamW``'s
    per-group clipping and bias correction and ``remap_groups`` rely on.
    """

    num_heads = 2
    support: Tensor

    def __init__(
        self,
        num_groups: int,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...] = (512, 256, 128),
        num_atoms: int = 51,
        v_min: float = 0.0,
        v_max: float = 5.0,
    ) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.heads = GroupMLP(num_groups * self.num_heads, obs_dim + act_dim, hidden, num_atoms)
        self.register_buffer("support", torch.linspace(v_min, v_max, num_atoms))

    def logits(self, obs: Tensor, action: Tensor) -> Tensor:
        """Atom logits of both heads.

        Args:
            obs: (G, B, obs_dim).
            action: (G, B, act_dim).

        Returns:
            logits: (2, G, B, num_atoms).
        """
        groups, batch, _ = obs.shape
        x = torch.cat([obs, action], dim=-1).unsqueeze(1)
        x = x.expand(groups, self.num_heads, batch, x.shape[-1])
        logits = self.heads(x.reshape(groups * self.num_heads, batch, -1))
        return logits.view(groups, self.num_heads, batch, -1).transpose(0, 1)

    def probs(self, obs: Tensor, action: Tensor) -> Tensor:
        """Distributions of both heads over the support.

        Args:
            obs: (G, B, obs_dim).
            action: (G, B, act_dim).

        Returns:
            probs: (2, G, B, num_atoms).
        """
        return self.logits(obs, action).softmax(dim=-1)

    def q(self, obs: Tensor, action: Tensor) -> Tensor:
        """Clipped double-Q value min(Q1, Q2) with Q = sum_j p_j z_j.

        Args:
            obs: (G, B, obs_dim).
            action: (G, B, act_dim).

        Returns:
            q: (G, B).
        """
        return (self.probs(obs, action) * self.support).sum(-1).min(dim=0).values

    @torch.no_grad()
    def remap_groups(self, source: Tensor) -> None:
        """Rebuild the stacked parameters so new group j copies old group source[j].

        Every parameter is replaced by a new ``nn.Parameter`` (autograd caches a leaf's shape,
        so resizing in place is not an option): rebuild optimisers and parameter lists after
        this, e.g. with ``GroupAdamW.remap_groups(..., params=critic.parameters())``.

        Args:
            source: (G_new,) long indices into the current groups; repeats duplicate a group.
        """
        for module in self.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                remapped = remap_stacked(param.detach(), self.num_groups, source)
                setattr(module, name, nn.Parameter(remapped, requires_grad=param.requires_grad))
        self.num_groups = source.shape[0]


def c51_projection(
    next_probs: Tensor, reward: Tensor, not_done: Tensor, gamma: float, support: Tensor
) -> Tensor:
    """Project the Bellman-shifted distribution r + gamma z back onto the support (C51).

    Each shifted atom is clipped to [v_min, v_max] and its mass split between the two nearest
    atoms in proportion to proximity (the triangular kernel max(0, 1 - |position - i|)). The
    shifted atoms' positions are non-decreasing in the atom index (gamma * not_done >= 0), so
    the mass that lands on atom i is a difference of cumulative sums at the counts of shifted
    atoms below it: O(A log A) per distribution instead of the (A, A) kernel's O(A^2), and no
    scatter, so the sums run in a fixed order on every device (deterministic).

    Args:
        next_probs: (..., A) next-state distributions.
        reward: (...) rewards, broadcastable against ``next_probs[..., 0]``.
        not_done: (...) 1 for non-terminal transitions, 0 for terminal ones.
        gamma: discount.
        support: (A,) evenly spaced atoms z_0 = v_min .. z_{A-1} = v_max.

    Returns:
        projected: (..., A), non-negative, with the mass of ``next_probs`` (up to rounding).
    """
    num_atoms = support.shape[0]
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (num_atoms - 1)
    shifted = reward.unsqueeze(-1) + gamma * not_done.unsqueeze(-1) * support
    position = ((shifted.clamp(v_min, v_max) - v_min) / delta).clamp(0, num_atoms - 1)
    lower = position.floor()  # (..., A), non-decreasing along the last dim
    batch_shape = torch.broadcast_shapes(next_probs.shape[:-1], lower.shape[:-1])
    upper_mass = next_probs * (position - lower)  # to atom lower + 1
    masses = torch.stack((next_probs - upper_mass, upper_mass), dim=-2)  # (..., 2, A)
    cumulative = F.pad(masses.broadcast_to(*batch_shape, 2, num_atoms).cumsum(-1), (1, 0))
    # count[i + 1]: shifted atoms whose lower neighbour is <= i, for i = -1 .. A - 1
    bins = torch.arange(-1, num_atoms, device=support.device, dtype=lower.dtype)
    lower = lower.broadcast_to(*batch_shape, num_atoms).contiguous()
    queries = bins.expand(*batch_shape, num_atoms + 1).contiguous()
    count = torch.searchsorted(lower, queries, right=True)
    count = count.unsqueeze(-2).expand(*batch_shape, 2, num_atoms + 1)
    per_atom = cumulative.gather(-1, count).diff(dim=-1)  # (..., 2, A): mass by lower atom
    return per_atom[..., 0, :] + F.pad(per_atom[..., 1, :-1], (1, 0))


@torch.no_grad()
def target_distribution(
    target_critic: GroupDistributionalDoubleQ,
    next_obs: Tensor,
    next_action: Tensor,
    reward: Tensor,
    not_done: Tensor,
    gamma: float,
) -> Tensor:
    """Clipped double-Q target: element-wise min of both heads' projected targets, renormalised.

    The min of two distributions has mass <= 1. Under softmax cross-entropy the fixed point is
    the same with or without renormalisation (the logit gradient is mass * p - target), so
    renormalising only removes a per-sample loss weight that would otherwise depend on how much
    the two heads disagree.

    Args:
        target_critic: target network.
        next_obs, next_action: (G, B, obs_dim), (G, B, act_dim); a' carries smoothing noise.
        reward, not_done: (G, B); not_done is 0 at true terminals, not at time-outs.
        gamma: discount.

    Returns:
        target: (G, B, num_atoms), sums to 1.
    """
    next_probs = target_critic.probs(next_obs, next_action)
    projected = c51_projection(next_probs, reward, not_done, gamma, target_critic.support)
    target = projected.min(dim=0).values
    return target / target.sum(dim=-1, keepdim=True).clamp_min(1e-8)


def critic_loss(
    critic: GroupDistributionalDoubleQ,
    target_critic: GroupDistributionalDoubleQ,
    obs: Tensor,
    action: Tensor,
    reward: Tensor,
    next_obs: Tensor,
    next_action: Tensor,
    not_done: Tensor,
    gamma: float,
    group_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Cross-entropy of each head against the clipped double-Q target distribution.

    Loss per group = mean_batch [CE(p1, target) + CE(p2, target)]; the total is the sum over
    groups, so each group's parameters receive exactly the gradient of their own loss.

    Args:
        critic, target_critic: online and target networks.
        obs, next_obs: (G, B, obs_dim).
        action, next_action: (G, B, act_dim); next_action is a' from the actor.
        reward, not_done: (G, B); not_done is 0 only at true terminals.
        gamma: discount.
        group_weight: (G,) optional weight of each group's loss (0 leaves a group untrained).

    Returns:
        loss: scalar to backpropagate.
        group_loss: (G,) detached per-group losses for logging.
    """
    target = target_distribution(target_critic, next_obs, next_action, reward, not_done, gamma)
    log_probs = critic.logits(obs, action).log_softmax(dim=-1)
    cross_entropy = -(target * log_probs).sum(dim=-1)
    group_loss = cross_entropy.sum(dim=0).mean(dim=-1)
    weighted = group_loss if group_weight is None else group_loss * group_weight
    return weighted.sum(), group_loss.detach()


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak averaging: target <- (1 - tau) target + tau online."""
    with torch.no_grad():
        target_params, online_params = tuple(target.parameters()), tuple(online.parameters())
        torch._foreach_lerp_(target_params, online_params, tau)  # pyright: ignore[reportPrivateImportUsage]


def group_soft_update(
    target: GroupDistributionalDoubleQ,
    online: GroupDistributionalDoubleQ,
    tau: float,
    active: Tensor,
) -> None:
    """Polyak averaging of the groups in `active` (G,) bool only; the others' targets stay."""
    with torch.no_grad():
        weight = (tau * active.to(torch.float32)).repeat_interleave(online.num_heads)
        for target_param, online_param in zip(
            target.parameters(), online.parameters(), strict=True
        ):
            rows = weight.view(-1, *([1] * (online_param.dim() - 1))).to(online_param.dtype)
            target_param.lerp_(online_param, rows)


def remap_groups(
    online: GroupDistributionalDoubleQ,
    target: GroupDistributionalDoubleQ,
    optimizer: GroupAdamW,
    source: Tensor,
    fresh: Tensor,
) -> None:
    """Re-map critics after re-clustering: new group j copies old group source[j].

    Online and target nets copy the source group's weights; the optimiser copies its moments
    and step count unless ``fresh[j]`` (a duplicated cluster or a copy of Q_explore), in which
    case group j's optimiser starts from zero.

    Args:
        online, target, optimizer: the critics and the online critic's optimiser, in place.
        source: (G_new,) long indices into the old groups; fresh: (G_new,) bool.
    """
    online.remap_groups(source)
    target.remap_groups(source)
    optimizer.remap_groups(source, fresh, online.parameters())
