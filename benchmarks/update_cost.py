"""Cost of DDiffPG against its baselines: seconds per learner update and per action sample.

    python benchmarks/update_cost.py                      # paper-size nets, batch 4096, CPU
    python benchmarks/update_cost.py --compile            # + compiled, side by side
    python benchmarks/update_cost.py --compile --reference e42aa42 --modes 2
    python benchmarks/update_cost.py --device cuda:0 --compile --repeats 20

DDiffPG with 1, 2 and 4 modes (K + 1 critic groups sharing the batch), TD3 and DIPO, all with
their default (released, paper-size) settings and the same batch, measured in one process one
after the other, so the ratios to TD3 are what to read (the machines are noisy). The replay is
filled with random AntMaze-sized transitions (obs 29, action 8); the modes are made by labelling
stored trajectories, exactly what mode discovery writes. With ``--compile`` every agent is there
twice, eager and with ``compile`` on (its compile time reported apart); with ``--reference`` a
third time, as the code of that commit ran it (``eager_before``: the package exported with
``git archive`` and run in a worker process that takes its turn in every repeat). Prints one
JSON object, with the matrix-multiply GFLOP of each call next to its time: where the calls are
compute-bound (a CPU), the time ratios to TD3 stay near the GFLOP ratios, which removing
overhead cannot lower. It also profiles pairs of updates of each agent, splits them into their
named phases (``update/critic``, ``update/target_actions``, ...; medians over the repeats), and
gives each of DDiffPG's phases as a multiple of TD3's whole update.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
REPO = Path(__file__).resolve().parent.parent
PLAIN_CHAIN = "DDiffPG_2_modes_plain_chain"


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


def seconds(fn: Callable[[], object], device: str) -> float:
    """Wall-clock seconds of one call, the device drained before and after."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


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


class Bench:
    """The agents of one variant and the calls the benchmark times on them.

    Args:
        args: the command line (device, batch, samples, modes).
        compiled: build the agents with ``compile`` on.
    """

    def __init__(self, args: argparse.Namespace, compiled: bool) -> None:
        device, self.device = args.device, args.device
        extra: dict[str, Any] = {"compile": True} if compiled else {}
        self.agents: dict[str, Agent] = {
            "TD3": filled(TD3Config(batch_size=args.batch, **extra), device),
            "DIPO": filled(DIPOConfig(batch_size=args.batch, **extra), device),
        }
        for num_modes in args.modes:
            agent = filled(DDiffPGConfig(batch_size=args.batch, **extra), device)
            assert isinstance(agent, DDiffPG)
            give_modes(agent, num_modes)
            self.agents[f"DDiffPG_{num_modes}_modes"] = agent
        self.obs = torch.randn(args.samples, OBS_DIM, device=device)
        self.noise_std = torch.full((args.samples,), 0.1, device=device)
        self.z = {
            name: agent.group_z[-1].expand(args.samples, -1) for name, agent in self.agents.items()
        }

    def call(self, what: str, name: str) -> Any:
        """Time (or count, or profile) one call of agent `name`.

        what: "first" (seconds of its first two updates and first sample: compilation),
        "update" (seconds per update, over a pair), "sample", "plain_chain", "phases",
        "update_gflop", "sample_gflop".
        """
        if name == PLAIN_CHAIN:
            agent = self.agents["DDiffPG_2_modes"]
            assert isinstance(agent, DDiffPG)
            return seconds(
                lambda: plain_chain(agent, self.obs, self.z["DDiffPG_2_modes"]), self.device
            )
        agent = self.agents[name]
        pair = lambda: (agent.update(), agent.update())  # noqa: E731
        sample = lambda: agent.act(self.obs, self.z[name], self.noise_std)  # noqa: E731
        if what == "first":
            return seconds(pair, self.device) + seconds(sample, self.device)
        if what == "update":
            return seconds(pair, self.device) / 2
        if what == "sample":
            return seconds(sample, self.device)
        if what == "phases":
            return phase_seconds(agent.update, self.device)
        return gflop(agent.update if what == "update_gflop" else sample)


class Reference:
    """The eager agents of a reference commit in a worker process, called in turn."""

    def __init__(self, commit: str, folder: Path, argv: list[str]) -> None:
        archive = folder / "reference.tar"
        with archive.open("wb") as out:
            command = ["git", "archive", commit, "isaacgymenvs_ddiffpg"]
            subprocess.run(command, cwd=REPO, stdout=out, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(folder)},
        )

    def call(self, what: str, name: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"what": what, "name": name}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"the reference worker failed (exit code {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def worker(args: argparse.Namespace) -> None:
    """Serve `Bench.call` requests (one JSON line each) on the package found first on the path."""
    import isaacgymenvs_ddiffpg

    if not Path(isaacgymenvs_ddiffpg.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        sys.exit(f"the worker imported {isaacgymenvs_ddiffpg.__file__}, not the reference")
    bench = Bench(args, compiled=False)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(bench.call(request["what"], request["name"])), flush=True)


def ratios(values: dict[str, float], reference: float) -> dict[str, float]:
    return {name: round(value / reference, 2) for name, value in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--samples", type=int, default=4096, help="actions per sample call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--modes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--compile", action="store_true", help="compiled agents side by side")
    parser.add_argument("--reference", help="commit whose eager agents run side by side too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return
    load_before = os.getloadavg()
    benches: dict[str, Any] = {"eager": Bench(args, compiled=False)}
    if args.compile:
        benches["compiled"] = Bench(args, compiled=True)
    with tempfile.TemporaryDirectory() as folder:
        if args.reference:
            argv = [f"--device={args.device}", f"--batch={args.batch}"]
            argv += [f"--samples={args.samples}", f"--threads={args.threads}"]
            argv += ["--modes", *map(str, args.modes)]
            benches = {"eager_before": Reference(args.reference, Path(folder), argv), **benches}
        result = measure(benches, args)
        for bench in benches.values():
            if isinstance(bench, Reference):
                bench.close()
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


def measure(benches: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Every call of every variant's agents, in turns; medians over the repeats."""
    names = list(benches["eager"].agents)
    first = {
        variant: {n: bench.call("first", n) for n in names} for variant, bench in benches.items()
    }
    runs: dict[str, dict[str, dict[str, list]]] = {
        what: {variant: {n: [] for n in names} for variant in benches}
        for what in ("update", "sample", "phases")
    }
    runs["sample"]["eager"][PLAIN_CHAIN] = []
    for _ in range(args.repeats):  # every call of every variant takes its turn in each repeat
        for what in ("update", "sample", "phases"):
            for variant, bench in benches.items():
                for name in runs[what][variant]:
                    runs[what][variant][name].append(bench.call(what, name))
    update_s = {
        v: {n: statistics.median(t) for n, t in d.items()} for v, d in runs["update"].items()
    }
    sample_s = {
        v: {n: statistics.median(t) for n, t in d.items()} for v, d in runs["sample"].items()
    }
    phases = {
        variant: {
            name: {p: round(statistics.median(r[p] for r in runs_), 4) for p in runs_[0]}
            for name, runs_ in by_name.items()
        }
        for variant, by_name in runs["phases"].items()
    }
    bench = benches["eager"]
    update_gflop = {n: round(bench.call("update_gflop", n), 2) for n in names}
    sample_gflop = {n: round(bench.call("sample_gflop", n), 2) for n in names}
    middle = f"DDiffPG_{args.modes[len(args.modes) // 2]}_modes"
    eager_td3 = (update_s["eager"]["TD3"], sample_s["eager"]["TD3"])
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else "cpu",
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "batch": args.batch,
        "samples": args.samples,
        "repeats": args.repeats,
        "variants": list(benches),
        "update_s": {v: {n: round(s, 4) for n, s in d.items()} for v, d in update_s.items()},
        "sample_s": {v: {n: round(s, 4) for n, s in d.items()} for v, d in sample_s.items()},
        "update_vs_td3": {v: ratios(d, d["TD3"]) for v, d in update_s.items()},
        "sample_vs_td3": {v: ratios(d, d["TD3"]) for v, d in sample_s.items()},
        "update_vs_eager_td3": {v: ratios(d, eager_td3[0]) for v, d in update_s.items()},
        "sample_vs_eager_td3": {v: ratios(d, eager_td3[1]) for v, d in sample_s.items()},
        "first_calls_s": {v: {n: round(s, 2) for n, s in d.items()} for v, d in first.items()},
        "update_phase_s": phases,
        f"{middle}_phase_vs_td3_update": {
            v: ratios(p[middle], sum(p["TD3"].values())) for v, p in phases.items()
        },
        "update_gflop": update_gflop,
        "sample_gflop": sample_gflop,
        "update_gflop_vs_td3": ratios(update_gflop, update_gflop["TD3"]),
        "sample_gflop_vs_td3": ratios(sample_gflop, sample_gflop["TD3"]),
    }
    if "compiled" in benches:  # compile time: the first calls beyond steady ones
        steady = {n: 2 * update_s["compiled"][n] + sample_s["compiled"][n] for n in names}
        result["compile_s"] = {n: round(first["compiled"][n] - steady[n], 1) for n in names}
    if "eager_before" in benches:
        result["speedup_vs_eager_before"] = {
            what: {
                v: {n: round(d["eager_before"][n] / d[v][n], 2) for n in names}
                for v in benches
                if v != "eager_before"
            }
            for what, d in (("update", update_s), ("sample", sample_s))
        }
    result["goals"] = {
        v: {
            f"update_{middle}_le_3x_td3": update_s[v][middle] <= 3 * update_s[v]["TD3"],
            f"sample_{middle}_le_8x_td3": sample_s[v][middle] <= 8 * sample_s[v]["TD3"],
            f"update_{middle}_le_3x_eager_td3": update_s[v][middle] <= 3 * eager_td3[0],
            f"sample_{middle}_le_8x_eager_td3": sample_s[v][middle] <= 8 * eager_td3[1],
        }
        for v in benches
    }
    return result


if __name__ == "__main__":
    main()
