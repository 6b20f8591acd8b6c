"""Seconds per training iteration (one vector step and the preset's learner updates) of a real
task: the code of a reference commit, today's code eager, and today's code compiled; prints JSON.

    python benchmarks/iteration_cost.py       # AntMazeV1 x 256, FrankaReach x 64, PointMazeV1 x 64
    python benchmarks/iteration_cost.py --tasks PointMazeV1:32 --presets DDiffPGSmall TD3Small
    python benchmarks/iteration_cost.py --option action_steps=2 action_lr=0.25  # + that variant
    python benchmarks/iteration_cost.py --device cuda:0 --sim warp --tasks AntMazeV1:4096 \\
        --presets DDiffPG --variants eager compiled

Each variant runs in its own worker process: `eager_before` imports the package as it was at
`--reference` (exported with `git archive` into a temporary folder), `eager` and `compiled`
import this checkout with `compile` off and on. A worker builds the task and a `Trainer`, plays
the warm-up (random actions, no updates), gives DDiffPG `--modes` modes (stored trajectories
labelled as mode discovery labels them, so the update has K + 1 critic groups), then runs two
iterations in which the compiled variant compiles (`first_iterations_s`; `compile_s` is their
time beyond two steady iterations). Then the workers take turns: in each of `--rounds` rounds
every worker times `--iterations` iterations while the others wait, so a change in machine
load hits every variant alike; the figures are medians over rounds, split into the vector step
(`collect_s`: acting, physics, replay) and the learner updates (`update_s`). `--option` adds
`compiled_option`: compiled, with those settings changed (an algorithmic option, side by side).
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRAIN_CONFIG_DIR = REPO / "isaacgymenvs_ddiffpg" / "cfg" / "train"
DEFAULT_REFERENCE = "e42aa42"  # the code before the learner was compiled and its work cut
SECTIONS = {"DDiffPG": "ddiffpg", "TD3": "td3", "SAC": "sac", "DIPO": "dipo"}


# ---------------------------------------------------------------------------- worker
def preset_config(preset: str, compiled: bool, option: list[str], tree: Path = REPO) -> Any:
    """The settings of `tree`'s cfg/train/<preset>.yaml (the Small presets' overrides of the
    paper's; each variant runs the preset of its own code), without evaluation, with `compile`
    set when the code has it and `option`'s KEY=VALUE."""
    from omegaconf import OmegaConf

    from isaacgymenvs_ddiffpg.learning.agents import ALGORITHMS

    section = next(v for k, v in SECTIONS.items() if preset.startswith(k))
    overrides: dict[str, Any] = {}
    if preset not in SECTIONS:
        yaml = OmegaConf.load(tree / TRAIN_CONFIG_DIR.relative_to(REPO) / f"{preset}.yaml")
        overrides = OmegaConf.to_container(yaml.params.config[section], resolve=True)  # type: ignore[assignment]
    overrides.update(eval_interval=10**9, eval_envs=1, log_interval=10**9, save_interval=10**9)
    if compiled:
        overrides["compile"] = True
    for setting in option:
        key, value = setting.split("=", 1)
        overrides[key] = json.loads(value)
    return ALGORITHMS[section].config(**overrides)


def give_modes(agent: Any, num_modes: int) -> None:
    """Make `num_modes` modes: group k copies Q_explore, stored trajectories are labelled
    1..K in turn (what mode discovery writes; a mode with no trajectory samples like group 0)."""
    import torch

    from isaacgymenvs_ddiffpg.learning.critics import remap_groups
    from isaacgymenvs_ddiffpg.learning.modes import ModePlan

    groups = num_modes + 1
    plan = ModePlan([0] * groups, [True] * groups, [True] * groups, list(range(groups)))
    plan.fresh_optimizer[0] = plan.fresh_embedding[0] = False
    source = plan.source_tensor(agent.device)
    fresh = torch.tensor(plan.fresh_optimizer, device=agent.device)
    remap_groups(agent.critic, agent.critic_target, agent.critic_opt, source, fresh)
    agent.replay.remap_slots(source)
    ids = agent.replay.completed(agent.mode_feature_dim)["ids"]
    agent.replay.set_groups(ids, 1 + torch.arange(len(ids)) % num_modes)
    agent.embeddings.apply_plan(plan)
    agent.group_z = agent.embeddings.group_embeddings(agent.device)


def worker(args: argparse.Namespace) -> None:
    """Set up one variant, report its set-up, then time iterations whenever asked on stdin."""
    import torch

    import isaacgymenvs_ddiffpg
    from isaacgymenvs_ddiffpg.learning.trainer import Trainer
    from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
    from isaacgymenvs_ddiffpg.tasks import make_task
    from isaacgymenvs_ddiffpg.tasks.base.vec_task import SimConfig

    package = Path(isaacgymenvs_ddiffpg.__file__).resolve().parent.parent
    if args.tree and package != Path(args.tree).resolve():
        sys.exit(f"worker imported {package}, not {args.tree}")
    torch.set_num_threads(args.threads)
    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    task_name, num_envs = args.task.split(":")
    sim = SimConfig(args.sim, device if args.sim == "warp" else "cpu")
    task = make_task(task_name, num_envs=int(num_envs), sim=sim, rl_device=device, seed=0)
    option = args.option if args.variant == "compiled_option" else []
    tree = Path(args.tree) if args.tree else REPO
    cfg = preset_config(args.preset, args.variant.startswith("compiled"), option, tree)
    run_dir = Path(tempfile.mkdtemp(prefix="iteration_cost_"))
    trainer = Trainer(cfg, RlGamesVecEnv(task), run_dir, device, seed=0)
    clock = {"collect": 0.0, "update": 0.0}

    def iteration() -> None:
        trainer.iteration += 1
        sync()
        start = time.perf_counter()
        trainer.collect()
        sync()
        middle = time.perf_counter()
        if trainer.iteration > cfg.warm_up_steps:
            for _ in range(cfg.updates_per_step):
                trainer.algo.update()
        sync()
        clock["collect"] += middle - start
        clock["update"] += time.perf_counter() - middle

    start = time.perf_counter()
    for _ in range(cfg.warm_up_steps):
        iteration()
    warm_up_s = time.perf_counter() - start
    if args.modes and getattr(trainer.algo, "learns_modes", False):
        give_modes(trainer.algo, args.modes)
    start = time.perf_counter()
    for _ in range(2):  # the compiled variant compiles here (acting and every update piece)
        iteration()
    first_s = time.perf_counter() - start
    report = {
        "package": str(package),
        "groups": trainer.algo.num_groups,
        "batch_size": cfg.batch_size,
        "updates_per_step": cfg.updates_per_step,
        "warm_up_iterations": cfg.warm_up_steps,
        "warm_up_s": round(warm_up_s, 3),
        "first_iterations_s": round(first_s, 3),
    }
    print(json.dumps(report), flush=True)
    for line in sys.stdin:
        count = int(json.loads(line)["iterations"])
        clock.update(collect=0.0, update=0.0)
        for _ in range(count):
            iteration()
        print(json.dumps({key: value / count for key, value in clock.items()}), flush=True)


# ---------------------------------------------------------------------------- parent
class Worker:
    """A worker process of one variant, answering timing requests in turn."""

    def __init__(self, variant: str, tree: Path, spec: str, preset: str, args: Any) -> None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            f"--variant={variant}",
            f"--tree={tree}",
            f"--task={spec}",
            f"--preset={preset}",
            f"--modes={args.modes}",
            f"--threads={args.threads}",
            f"--device={args.device}",
            f"--sim={args.sim}",
            "--option",
            *args.option,
        ]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree, env=env
        )
        self.setup = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"a worker failed (exit code {self.process.wait()})")
        return json.loads(line)

    def time(self, iterations: int) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"iterations": iterations}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def export(reference: str, into: Path) -> Path:
    """The package at commit `reference`, exported into `into` (git archive)."""
    archive = into / "reference.tar"
    with archive.open("wb") as out:
        done = subprocess.run(
            ["git", "archive", reference, "isaacgymenvs_ddiffpg"],
            cwd=REPO, stdout=out, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    if done.returncode != 0:
        sys.exit(
            f"iteration_cost.py: cannot export --reference {reference} for eager_before "
            f"({done.stderr.strip()}). Run it in a git clone that holds that commit (a shallow "
            "clone may not: git fetch --unshallow), or leave eager_before out with --variants "
            "eager compiled."
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(spec: str, preset: str, trees: dict[str, Path], args: Any) -> dict[str, Any]:
    """Every variant of one task and preset; medians over the rounds."""
    workers = {}
    for variant, tree in trees.items():
        print(f"{spec} {preset}: setting up {variant}", file=sys.stderr, flush=True)
        workers[variant] = Worker(variant, tree, spec, preset, args)
    runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in workers}
    for _ in range(args.rounds):
        for variant, process in workers.items():
            runs[variant].append(process.time(args.iterations))
    for process in workers.values():
        process.close()
    variants = {}
    for variant, times in runs.items():
        collect = statistics.median(t["collect"] for t in times)
        update = statistics.median(t["update"] for t in times)
        iteration = statistics.median(t["collect"] + t["update"] for t in times)
        setup = workers[variant].setup
        variants[variant] = {
            **{k: v for k, v in setup.items() if k != "package"},
            "iteration_s": round(iteration, 4),
            "collect_s": round(collect, 4),
            "update_s": round(update, 4),
            "compile_s": round(max(setup["first_iterations_s"] - 2 * iteration, 0.0), 1),
        }
    result: dict[str, Any] = {"task": spec, "preset": preset, "variants": variants}
    speed = {}
    pairs = [(v, "eager_before") for v in ("eager", "compiled", "compiled_option")]
    pairs += [("compiled", "eager"), ("compiled_option", "eager")]
    for faster, slower in pairs:
        if faster in variants and slower in variants:
            speed[f"{faster}_vs_{slower}"] = {
                part: round(variants[slower][part] / variants[faster][part], 2)
                for part in ("iteration_s", "update_s", "collect_s")
            }
    result["speedup"] = speed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--tasks", nargs="+", default=["AntMazeV1:256", "FrankaReach:64", "PointMazeV1:64"]
    )
    parser.add_argument("--presets", nargs="+", default=["DDiffPGSmall"])
    parser.add_argument(
        "--variants", nargs="+", default=["eager_before", "eager", "compiled"],
        choices=["eager_before", "eager", "compiled"],
    )  # fmt: skip
    parser.add_argument("--reference", default=DEFAULT_REFERENCE, help="commit of eager_before")
    parser.add_argument("--option", nargs="*", default=[], help="KEY=VALUE of compiled_option")
    parser.add_argument("--modes", type=int, default=2, help="DDiffPG's modes (K + 1 groups)")
    parser.add_argument("--iterations", type=int, default=10, help="iterations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="rl device (cpu, cuda:0)")
    parser.add_argument("--sim", default="mujoco", choices=["mujoco", "warp"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        variants = args.variants + (["compiled_option"] if args.option else [])
        trees = {variant: REPO for variant in variants}
        if "eager_before" in trees:
            trees["eager_before"] = export(args.reference, Path(folder))
        results = [
            measure(spec, preset, trees, args) for spec in args.tasks for preset in args.presets
        ]
    report = {
        "benchmark": "iteration_cost",
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "device": args.device,
        "sim": args.sim,
        "torch_threads": args.threads,
        "reference": args.reference if "eager_before" in args.variants else None,
        "modes": args.modes,
        "option": args.option,
        "iterations_per_round": args.iterations,
        "rounds": args.rounds,
        "results": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
