"""Cluster sweeps: the SLURM launcher preset composes, and a 2-seed multirun through submitit's
local launcher writes one complete run folder per seed."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from isaacgymenvs_ddiffpg.config import register_configs
from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the slurm extra")


def test_slurm_preset_has_the_usual_keys_and_stays_headless() -> None:
    register_configs()
    overrides = [
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.account=rl",
    ]
    with initialize_config_module("isaacgymenvs_ddiffpg.cfg", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.account) == ("gpu", "rl")
    assert launcher.gpus_per_node == launcher.tasks_per_node == 1
    assert launcher.timeout_min > 0 and launcher.mem_gb > 0
    # time to finish an iteration and write nn/last.pth, then requeue on time limits
    assert launcher.signal_delay_s >= 60 and launcher.max_num_timeout >= 1
    assert cfg.headless is True


@pytest.mark.slow
def test_two_seed_sweep_with_submitit_writes_two_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "--multirun",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "seed=1,2",
            "task=PointMazeV1",
            "train=DDiffPGSmall",
            "num_envs=4",
            "num_threads=1",
            "max_iterations=3",
            "train.params.config.ddiffpg.eval_envs=2",
            "experiment=sweep",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    sweep = tmp_path / "runs" / "sweep"
    job_errors = "".join(log.read_text()[-1500:] for log in sweep.glob(".submitit/*/*_log.err"))
    assert done.returncode == 0, done.stderr[-1500:] + job_errors
    for job, seed in (("0", 1), ("1", 2)):
        run = sweep / job
        assert list((run / "summaries").glob("events.*")), f"no tensorboard events in {run}"
        assert load_checkpoint(run / "nn" / "last.pth")["iteration"] == 3
        assert f"seed: {seed}" in (run / "config.yaml").read_text().splitlines()
    assert list((sweep / ".submitit").glob("*/*_log.out")), "submitit kept no job logs"
