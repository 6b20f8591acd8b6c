"""Cost of DDiffPG against its baselines: seconds per learner update and per action sample.

    python benchmarks/update_cost.py                      # paper-size nets, batch 4096, CPU
    python benchmarks/update_cost.py --device cuda:0 --repeats 20

DDiffPG with 1, 2 and 4 modes (K + 1 critic groups sharing the batch), TD3 and DIPO, all with
their default (released, paper-size) settings and the same batch, measured in one process one
after the other, so the ratios to TD3 are what to read (the machines are noisy). The replay is
filled with random AntMaze-sized transitions (obs 29, action 8); the modes are made by labelling
stored trajectories, exactly what mode discovery writes. Prints one JSON object, with the
matrix-multiply GFLOP of each call next to its time: where the calls are compute-bound (a CPU),
the time ratios to TD3 stay near the GFLOP ratios, which removing overhead cannot lower. It also
profiles pairs of updates of each agent, splits them into their named phases (``update/critic``,
``update/target_actions``, ...; medians over the repeats), and gives each of DDiffPG's phases as
a multiple of TD3's whole update: the share no speed-up of the other phases can remove.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from isaacgymenvs_ddiffpg.learning.agents import Agent, make_agent
from isaacgymenvs_ddiffpg.learning.baselines import DIPOConfig, TD3Config
from isaacgymenvs_ddiffpg.learning.config import AgentConfig, DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.critics import remap_groups
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG
from isaacgymenvs_ddiffpg.learning.modes import ModePlan

OBS_DIM, ACT_DIM, FEATURE_DIM, EPISODE, ENVS = 29, 8, 2, 50, 64


def filled(cfg: AgentConfig, device: str) -> Agent:
    """An agent whose replay holds 4 complete random episodes per env."""
    spec = EnvSpec(OBS_DIM, ACT_DIM, FEATURE_DIM, EPISODE, ENVS, max_reward=10.0)
    agent = make_agent(cfg, spec, device, seed=0)
    gen = torch.Generator(device).manual_seed(0)
    for step in range(4 * EPISODE):
        done = torch.full((ENVS,), (step + 1) % EPISODE == 0, device=device)
        obs = torch.randn(ENVS, OBS_DIM, device=device, generator=gen)
        action = torch.rand(ENVS, ACT_DIM, device=device, generator=gen) * 2 - 1
        success = done.long() * (step // EPISODE % 2)
        reward = torch.zeros(ENVS, device=device)
        agent.replay.add(obs, action, reward, obs, done & (success > 0), done, success)
    return agent


def give_modes(agent: DDiffPG, num_modes: int) -> None:
    """Make `num_modes` modes: group k copies Q_explore, stored trajectories are labelled 1..K."""
    groups = num_modes + 1
    plan = ModePlan([0] * groups, [True] * groups, [True] * groups, list(range(groups)))
    plan.fresh_optimizer[0] = plan.fresh_embedding[0] = False
    source = plan.source_tensor(agent.device)
    fresh = torch.tensor(plan.fresh_optimizer, device=agent.device)
    remap_groups(agent.critic, agent.critic_target, agent.critic_opt, source, fresh)
    agent.replay.remap_slots(source)
    ids = agent.replay.completed(FEATURE_DIM)["ids"]
    agent.replay.set_groups(ids, 1 + torch.arange(len(ids)) % num_modes)
    agent.embeddings.apply_plan(plan)
    agent.group_z = agent.embeddings.group_embeddings(agent.device)


@torch.no_grad()
def plain_chain(agent: DDiffPG, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The reverse chain through the unsplit network (time features per sample, the whole first
    layer every step): the reference for `DiffusionPolicy.sample`, same function."""
    policy = agent.actor
    cond = torch.cat((obs, z), dim=-1)
    action = torch.randn(cond.shape[0], policy.act_dim, device=cond.device)
    for k in reversed(range(policy.denoising_steps)):
        timestep = torch.full((cond.shape[0],), k, device=cond.device)
        eps_hat = policy.net(action, timestep, cond)
        noise = torch.randn_like(action) if k > 0 else None
        action = policy.schedule.step(eps_hat, k, action, noise)
    return action


def interleaved_seconds(
    calls: dict[str, Callable[[], object]], repeats: int, device: str
) -> dict[str, float]:
    """Median wall-clock seconds of each call, after one warm-up call each; the calls take turns
    in every repeat, so a change in machine load hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for fn in calls.values():
        fn()
    for _ in range(repeats):
        for name, fn in calls.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def phase_seconds(fn: Callable[[], object], device: str, calls: int = 2) -> dict[str, float]:
    """Seconds per call spent in each ``update/<phase>`` profiler range, over `calls` calls of
    `fn` (2 covers TD3's delayed actor step once): CPU time on a CPU, kernel time on a GPU."""
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(calls):
            fn()
    phases: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("update/"):
            micros = event.device_time_total if device.startswith("cuda") else event.cpu_time_total
            name = event.key.removeprefix("update/")
            phases[name] = max(phases.get(name, 0.0), micros / 1e6 / calls)
    return phases


def gflop(fn: Callable[[], object]) -> float:
    """Matrix-multiply GFLOP of one call (torch's FLOP counter; elementwise work not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--samples", type=int, default=4096, help="actions per sample call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device

    agents: dict[str, Agent] = {"TD3": filled(TD3Config(batch_size=args.batch), device)}
    agents["DIPO"] = filled(DIPOConfig(batch_size=args.batch), device)
    for num_modes in (1, 2, 4):
        agent = filled(DDiffPGConfig(batch_size=args.batch), device)
        assert isinstance(agent, DDiffPG)
        give_modes(agent, num_modes)
        agents[f"DDiffPG_{num_modes}_modes"] = agent

    obs = torch.randn(args.samples, OBS_DIM, device=device)
    noise_std = torch.full((args.samples,), 0.1, device=device)
    # Updates are timed in pairs, so TD3's delayed actor step (every 2nd update) is in each.
    pair_s = interleaved_seconds(
        {name: lambda a=agent: (a.update(), a.update()) for name, agent in agents.items()},
        args.repeats,
        device,
    )
    update_s = {name: seconds / 2 for name, seconds in pair_s.items()}
    z = {name: agent.group_z[-1].expand(args.samples, -1) for name, agent in agents.items()}
    reference = agents["DDiffPG_2_modes"]
    assert isinstance(reference, DDiffPG)
    sample_s = interleaved_seconds(
        {
            **{
                name: lambda a=agent, n=name: a.act(obs, z[n], noise_std)
                for name, agent in agents.items()
            },
            "DDiffPG_2_modes_plain_chain": lambda: plain_chain(
                reference, obs, z["DDiffPG_2_modes"]
            ),
        },
        args.repeats,
        device,
    )
    # The arithmetic of each call, counted in one more call after the timing: where the calls
    # are compute-bound (a CPU; a GPU at large batch) the time ratios stay near these ratios.
    update_gflop = {name: gflop(agent.update) for name, agent in agents.items()}
    sample_gflop = {
        name: gflop(lambda a=agent, n=name: a.act(obs, z[n], noise_std))
        for name, agent in agents.items()
    }
    # Phases: one profiled pair of updates per agent and repeat, in turns; medians.
    phase_runs: dict[str, list[dict[str, float]]] = {name: [] for name in agents}
    for _ in range(args.repeats):
        for name, agent in agents.items():
            phase_runs[name].append(phase_seconds(agent.update, device))
    update_phase_s = {
        name: {phase: statistics.median(run[phase] for run in runs) for phase in runs[0]}
        for name, runs in phase_runs.items()
    }
    td3_update, td3_sample = update_s["TD3"], sample_s["TD3"]
    result = {
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "batch": args.batch,
        "samples": args.samples,
        "repeats": args.repeats,
        "update_s": {k: round(v, 4) for k, v in update_s.items()},
        "sample_s": {k: round(v, 4) for k, v in sample_s.items()},
        "update_vs_td3": {k: round(v / td3_update, 2) for k, v in update_s.items()},
        "sample_vs_td3": {k: round(v / td3_sample, 2) for k, v in sample_s.items()},
        "update_phase_s": {
            name: {k: round(v, 4) for k, v in phases.items()}
            for name, phases in update_phase_s.items()
        },
        "ddiffpg_2_modes_phase_vs_td3_update": {
            k: round(v / sum(update_phase_s["TD3"].values()), 2)
            for k, v in update_phase_s["DDiffPG_2_modes"].items()
        },
        "update_gflop": {k: round(v, 2) for k, v in update_gflop.items()},
        "sample_gflop": {k: round(v, 2) for k, v in sample_gflop.items()},
        "update_gflop_vs_td3": {
            k: round(v / update_gflop["TD3"], 2) for k, v in update_gflop.items()
        },
        "sample_gflop_vs_td3": {
            k: round(v / sample_gflop["TD3"], 2) for k, v in sample_gflop.items()
        },
        "goals": {
            "update_2_modes_le_2x_td3": update_s["DDiffPG_2_modes"] <= 2 * td3_update,
            "sample_le_3x_td3": sample_s["DDiffPG_2_modes"] <= 3 * td3_sample,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
