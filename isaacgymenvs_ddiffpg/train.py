"""Hydra entry point: compose the config, build the task, register with rl-games, train or play."""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import isaacgymenvs_ddiffpg.viz.gl  # noqa: F401  (picks MUJOCO_GL before mujoco is imported)
from isaacgymenvs_ddiffpg.config import RootConfig, register_configs, viz_config
from isaacgymenvs_ddiffpg.learning.checkpoint import newest_checkpoint
from isaacgymenvs_ddiffpg.learning.distributed import (
    Distributed,
    device_for_rank,
    init_distributed,
    shutdown_distributed,
    slurm_to_torchrun_env,
)
from isaacgymenvs_ddiffpg.tasks import SimConfig, make_task
from isaacgymenvs_ddiffpg.utils.errors import (
    CheckpointError,
    ConfigError,
    TrainingDivergedError,
    TrainingInterrupted,
)
from isaacgymenvs_ddiffpg.utils.run_folder import claim_run_folder
from isaacgymenvs_ddiffpg.utils.seeding import set_seed

RUNS = "runs"


def output_dir(experiment: str, test: bool, checkpoint: str, multi_gpu: bool = False) -> str:
    """The run folder hydra creates: runs/<experiment> to train; to play, a new folder
    play/<time> inside the run that wrote the checkpoint (runs/<experiment>/play/<time> for a
    checkpoint outside a run), so that a play run never writes over a training run's files.

    A process claims its folder (`claim_run_folder`): when another live process trains in
    runs/<experiment>, this one trains in runs/<experiment>_2 (or _3, ...), and two plays
    started in the same second get play/<time> and play/<time>_2. Under multi_gpu only rank 0
    claims; the ranks use rank 0's folder (`train_or_play`)."""
    if not safe_run_name(experiment):
        return RUNS  # refused by `check_top_level` before anything is written
    if not test:
        if multi_gpu:  # SLURM's or torchrun's rank, read as `init_distributed` will
            slurm_to_torchrun_env(os.environ)
            if os.environ.get("RANK", "0") != "0":
                return f"{RUNS}/{experiment}"
        return str(claim_run_folder(f"{RUNS}/{experiment}"))
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    played = Path(checkpoint)
    run = played.parent.parent if played.parent.name == "nn" else Path(RUNS) / experiment
    return str(claim_run_folder(run / "play" / stamp))


def safe_run_name(name: str) -> bool:
    """Whether runs/<name> is a folder inside runs/ (not runs/ itself, nothing outside)."""
    path = Path(name)
    return (
        bool(name.strip())
        and not path.is_absolute()
        and ".." not in path.parts
        and (path.parts not in ((), (".",)))
    )


OmegaConf.register_new_resolver("igd_output_dir", output_dir, replace=True)
register_configs()


def check_top_level(cfg: DictConfig) -> None:
    """Refuse top-level keys the schema does not have (e.g. `+lr=...`), and an experiment name
    that would write outside runs/ or into runs/ itself."""
    known = {f.name for f in dataclasses.fields(RootConfig)} | {"hydra"}
    unknown = sorted({str(key) for key in cfg.keys()} - known)
    if unknown:
        raise ConfigError(
            f"Unknown top-level key(s) {', '.join(map(repr, unknown))}. Top-level keys are: "
            f"{', '.join(sorted(known - {'hydra'}))}; task and algorithm settings go under "
            f"task.env.<key> and train.params.config.<algorithm>.<key>."
        )
    name = str(cfg.experiment)
    if not safe_run_name(name):
        raise ConfigError(
            f"experiment={name!r} is not a run name: the run folder is {RUNS}/<experiment>, so "
            f"the name must be non-empty and stay inside {RUNS}/ (no '..', no absolute path). "
            f"Pass e.g. experiment=my_run."
        )


def resolve_checkpoint(path: str, required: bool) -> str:
    """Absolute path of an existing checkpoint file, or "" when none is given."""
    if not path:
        if required:
            raise CheckpointError(
                "test=True plays a trained policy and needs checkpoint=<path to a .pth>, e.g. "
                "checkpoint=runs/<experiment>/nn/last.pth."
            )
        return ""
    resolved = Path(hydra.utils.to_absolute_path(path))
    if not resolved.is_file():
        raise CheckpointError(
            f"Checkpoint {path!r} does not exist (looked for {resolved}). Pass the path of a .pth "
            f"written by a run, e.g. checkpoint=runs/<experiment>/nn/last.pth."
        )
    return str(resolved)


def guard_run_dir(run_dir: Path, checkpoint: str, test: bool) -> None:
    """Refuse to train into a folder that already holds checkpoints of another run."""
    if test or not (run_dir / "nn").is_dir():
        return
    newest = newest_checkpoint(run_dir / "nn")
    if newest is not None and not (checkpoint and Path(checkpoint).parent == run_dir / "nn"):
        raise ConfigError(
            f"The run folder {run_dir} already holds checkpoints; training there would "
            f"overwrite them. Choose another experiment=<name>, or resume that run with "
            f"checkpoint={newest}."
        )


def requeued_checkpoint(run_dir: Path, checkpoint: str, test: bool) -> str:
    """On a SLURM requeue of this run (SLURM_RESTART_COUNT > 0) without checkpoint=, the
    newest checkpoint of its run folder, so the job continues where it was stopped."""
    if test or checkpoint or int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) <= 0:
        return checkpoint
    newest = newest_checkpoint(run_dir / "nn")
    if newest is None:
        return checkpoint
    print(f"SLURM requeue: resuming from {newest}.")
    return str(newest)


def rlgames_params(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """The rl-games `params` dict of the train config, with run paths and overrides filled in."""
    train: dict[str, Any] = OmegaConf.to_container(cfg.train, resolve=True)  # type: ignore[assignment]
    config = train["params"]["config"]
    config["train_dir"] = str(run_dir.parent)
    config["full_experiment_name"] = run_dir.name
    config["num_actors"] = cfg.task.env.num_envs
    config["preset"] = cfg.train.name
    if cfg.max_iterations is not None:
        config["max_epochs"] = cfg.max_iterations
    return train


def run(cfg: DictConfig) -> None:
    """Train or play as `cfg` says (see README for the command-line contract)."""
    rank = start_ranks(cfg) if cfg.multi_gpu else 0
    try:
        train_or_play(cfg, rank)
    finally:
        if cfg.multi_gpu:
            shutdown_distributed()


def start_ranks(cfg: DictConfig) -> int:
    """Join the torchrun/SLURM process group; this rank's devices are cuda:LOCAL_RANK (on GPU).

    Returns:
        This process's rank (its seed is offset by it).
    """
    if cfg.test:
        raise ConfigError("test=True plays in one process; drop multi_gpu=True.")
    if cfg.train.params.algo.name != "ddiffpg":
        raise ConfigError(
            f"multi_gpu=True averages DDiffPG's gradients across ranks; train={cfg.train.name} "
            f"runs in one process (drop multi_gpu=True)."
        )
    rank, local_rank = init_distributed(cfg.rl_device)
    cfg.sim_device = device_for_rank(cfg.sim_device, local_rank)
    cfg.rl_device = device_for_rank(cfg.rl_device, local_rank)
    return rank


def train_or_play(cfg: DictConfig, rank: int) -> None:
    """Build the task(s) and run rl-games; `rank` > 0 only under multi_gpu."""
    from isaacgymenvs_ddiffpg.rlgames import Runner, SuccessObserver, register_rlgames

    run_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
    if cfg.multi_gpu:  # the ranks' clocks may name different folders (${now:...})
        run_dir = Distributed().broadcast_object(run_dir)
    if cfg.num_envs is not None:
        cfg.task.env.num_envs = cfg.num_envs
    check_top_level(cfg)
    checkpoint = resolve_checkpoint(cfg.checkpoint, required=cfg.test)
    checkpoint = requeued_checkpoint(run_dir, checkpoint, cfg.test)
    guard_run_dir(run_dir, checkpoint, cfg.test)

    seed = set_seed(cfg.seed, cfg.torch_deterministic, rank)
    task = make_task(
        cfg.task.name,
        env=cfg.task.env,
        seed=seed,
        rl_device=cfg.rl_device,
        sim=SimConfig(cfg.sim, cfg.sim_device, cfg.num_threads),
    )
    params = rlgames_params(cfg, run_dir)
    viz = viz_config(cfg)
    viz.check(task)
    if cfg.multi_gpu:
        params["params"]["seed"] = seed  # base seed + rank
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        if cfg.test:
            print(f"Play outputs go to {run_dir}")

    def make_eval_task(num_envs: int):
        return make_task(
            cfg.task.name,
            env=cfg.task.env,
            num_envs=num_envs,
            seed=seed + 1,
            rl_device=cfg.rl_device,
            sim=SimConfig(cfg.sim, cfg.sim_device, cfg.num_threads),
        )

    runner = Runner(SuccessObserver())
    register_rlgames(runner, lambda **_: task, None if cfg.test or rank else make_eval_task, viz)
    set_seed(seed, cfg.torch_deterministic)  # the Runner re-enables cudnn benchmark and TF32
    runner.load(params)
    runner.reset()
    runner.run({"train": not cfg.test, "play": cfg.test, "checkpoint": checkpoint, "sigma": None})


@hydra.main(version_base="1.3", config_path="cfg", config_name="config")
def main(cfg: DictConfig) -> None:
    """Entry point of `python train.py ...`."""
    try:
        run(cfg)
    except (ConfigError, CheckpointError, TrainingDivergedError) as err:
        sys.exit(f"error: {err}")
    except TrainingInterrupted as stop:
        name = signal.Signals(stop.signum).name if stop.signum else "a signal"
        args = [arg for arg in sys.argv[1:] if not arg.startswith("checkpoint=")]
        command = shlex.join(["python", "train.py", *args, f"checkpoint={stop.checkpoint}"])
        print(f"Stopped by {name}; checkpoint written to {stop.checkpoint}. Resume: {command}")
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
