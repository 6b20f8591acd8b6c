"""Tests of the DDPM schedule, reverse step and a bimodal toy fit of the diffusion policy."""

import math

import torch
import torch.nn.functional as F

from isaacgymenvs_ddiffpg.learning.diffusion import (
    DDPMSchedule,
    DiffusionNet,
    DiffusionPolicy,
    mish_inplace,
)


def test_cosine_cap_betas_match_hand_computation():
    steps = 5

    def alpha_bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    expected = [min(1 - alpha_bar((k + 1) / steps) / alpha_bar(k / steps), 0.999) for k in range(5)]
    schedule = DDPMSchedule(steps)
    torch.testing.assert_close(schedule.betas, torch.tensor(expected))
    assert schedule.betas[-1].item() == torch.tensor(0.999).item()  # the cap binds at k = K-1
    expected_alpha_bars = torch.tensor(expected, dtype=torch.float64).neg().add(1).cumprod(0)
    torch.testing.assert_close(schedule.alpha_bars, expected_alpha_bars.float())


def test_step_with_true_noise_follows_the_exact_posterior():
    schedule = DDPMSchedule(5)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 3, generator=generator) * 1.6 - 0.8
    noise = torch.randn(64, 3, generator=generator)
    for k in range(1, 5):
        x_k = schedule.add_noise(x0, noise, k)
        ab, ab_prev, beta = schedule.alpha_bars[k], schedule.alpha_bars[k - 1], schedule.betas[k]
        posterior_mean = (ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x_k) / (
            1 - ab
        )
        torch.testing.assert_close(
            schedule.step(noise, k, x_k, None), posterior_mean, atol=2e-3, rtol=0
        )
    # At k = 0 the step returns x0 exactly (recovered from the true noise), whatever the noise.
    x_0 = schedule.add_noise(x0, noise, 0)
    recovered = schedule.step(noise, 0, x_0, torch.randn(64, 3, generator=generator))
    torch.testing.assert_close(recovered, x0, atol=1e-5, rtol=0)


def test_ancestral_step_marginal_matches_forward_process():
    """x_k ~ q(x_k | x0) then one step with the true noise gives x_{k-1} ~ q(x_{k-1} | x0)."""
    schedule = DDPMSchedule(5)
    generator = torch.Generator().manual_seed(1)
    x0 = torch.full((200_000, 1), 0.5)
    for k in (2, 4):
        noise = torch.randn(x0.shape, generator=generator)
        x_k = schedule.add_noise(x0, noise, k)
        x_prev = schedule.step(noise, k, x_k, torch.randn(x0.shape, generator=generator))
        ab_prev = schedule.alpha_bars[k - 1]
        assert abs(x_prev.mean() - ab_prev.sqrt() * 0.5) < 0.01
        assert abs(x_prev.var() - (1 - ab_prev)) < 0.01


def test_step_accepts_per_sample_timesteps_and_clips_x0():
    schedule = DDPMSchedule(5)
    x_k = torch.randn(6, 2)
    eps_hat = torch.randn(6, 2)
    k = torch.tensor([0, 1, 2, 3, 4, 4])
    batched = schedule.step(eps_hat, k, x_k, None)
    for row in range(6):
        single = schedule.step(eps_hat[row : row + 1], int(k[row]), x_k[row : row + 1], None)
        torch.testing.assert_close(batched[row : row + 1], single)
    huge = schedule.step(torch.zeros(4, 2), 0, torch.full((4, 2), 50.0), None)
    torch.testing.assert_close(huge, torch.ones(4, 2))


def test_diffusion_net_shapes():
    net = DiffusionNet(cond_dim=7, act_dim=3, time_dim=32, hidden=(64, 32))
    assert net.time_encoder[1].in_features == 32 and net.time_encoder[1].out_features == 128
    out = net(torch.randn(5, 3), torch.randint(0, 5, (5,)), torch.randn(5, 7))
    assert out.shape == (5, 3)


def test_split_first_layer_is_the_plain_network():
    """Projecting time and condition separately computes the same function and gradients."""
    torch.manual_seed(0)
    net = DiffusionNet(cond_dim=7, act_dim=3, time_dim=32, hidden=(64, 32))
    action, cond = torch.randn(9, 3), torch.randn(9, 7)
    k = torch.randint(0, 5, (9,))
    plain = net(action, k, cond)
    plain_grads = torch.autograd.grad(plain.square().sum(), list(net.parameters()))
    split = net.eps_from(action, net.project_time(5, action.device)[k], net.project_cond(cond))
    split_grads = torch.autograd.grad(split.square().sum(), list(net.parameters()))
    torch.testing.assert_close(split, plain)
    for a, b in zip(split_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_sampling_runs_the_plain_chain():
    torch.manual_seed(0)
    policy = DiffusionPolicy(cond_dim=4, act_dim=2, time_dim=16, hidden=(32, 32))
    cond = torch.randn(10, 4)
    sampled = policy.sample(cond, torch.Generator().manual_seed(3))
    steps = policy.denoising_steps
    draws = torch.randn(steps, 10, 2, generator=torch.Generator().manual_seed(3))
    action = draws[0]  # a_K, then the noise of steps K-1 .. 1
    for k in reversed(range(steps)):
        eps_hat = policy.net(action, torch.full((10,), k), cond)
        noise = draws[steps - k] if k > 0 else None
        action = policy.schedule.step(eps_hat, k, action, noise)
    torch.testing.assert_close(sampled, action)


def test_in_place_mish_is_mish():
    x = torch.cat([torch.linspace(-100.0, 100.0, 2001), torch.randn(1000) * 3])
    torch.testing.assert_close(mish_inplace(x.clone()), F.mish(x))


def test_sampling_is_seedable():
    torch.manual_seed(0)
    policy = DiffusionPolicy(cond_dim=4, act_dim=2, time_dim=16, hidden=(32, 32))
    cond = torch.randn(10, 4)
    first = policy.sample(cond, torch.Generator().manual_seed(3))
    second = policy.sample(cond, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)
    assert first.shape == (10, 2) and first.abs().max() <= 1.0


def test_loss_gradients_are_deterministic_on_two_threads():
    """The training loss's gradients repeat bit for bit on a multi-threaded CPU. Each sample's
    time features are picked from a per-timestep table; picked by indexing, the table's gradient
    is accumulated by index_put, whose result varies from call to call at this size."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(cond_dim=8, act_dim=2, time_dim=32, hidden=(1024, 32))
    cond, target = torch.randn(4096, 8), torch.rand(4096, 2) * 2 - 1
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(5):
            loss = policy.loss(cond, target, torch.Generator().manual_seed(1))
            grads.append(torch.autograd.grad(loss, list(policy.parameters())))
    finally:
        torch.set_num_threads(threads)
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            assert torch.equal(a, b)


def test_ddpm_learns_two_modes():
    """A small DDPM behaviour-cloned on actions +-0.8 under one condition samples both modes."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    policy = DiffusionPolicy(cond_dim=1, act_dim=1, time_dim=16, hidden=(64, 64))
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    steps = 600
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=5e-4)
    cond = torch.zeros(256, 1)
    for _ in range(steps):
        sign = torch.randint(0, 2, (256, 1), generator=generator) * 2 - 1
        loss = policy.loss(cond, 0.8 * sign.float(), generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    samples = policy.sample(torch.zeros(2000, 1), generator).squeeze(1)
    near_positive = ((samples - 0.8).abs() < 0.2).float().mean()
    near_negative = ((samples + 0.8).abs() < 0.2).float().mean()
    assert near_positive >= 0.3 and near_negative >= 0.3
