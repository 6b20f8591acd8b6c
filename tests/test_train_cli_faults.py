"""`python train.py ...` under faults, as a user meets them: stop signals, kill -9, requeues,
incompatible checkpoints, run names that would write in the wrong place, play folders."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
SMALL = (
    "task=PointMazeV1",
    "train=DDiffPGSmall",
    "num_envs=4",
    "num_threads=1",
    "+train.params.torch_threads=1",
    "train.params.config.ddiffpg.warm_up_steps=10",
    "train.params.config.ddiffpg.log_interval=10",
)
SAVE_20 = "train.params.config.ddiffpg.save_interval=20"

pytestmark = pytest.mark.slow  # each test starts `python train.py` (5 to 30 s)


def train(cwd: Path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def start(cwd: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_saves_says_where_and_resumes(tmp_path: Path, signum: int, code: int) -> None:
    run = start(
        tmp_path, *SMALL, "experiment=stopped", "train.params.config.ddiffpg.save_interval=20"
    )
    wait_for(tmp_path / "runs" / "stopped" / "nn" / "PointMazeV1_iter20.pth", run)
    run.send_signal(signum)
    out, err = run.communicate(timeout=120)
    assert run.returncode == code, err[-2000:]
    assert "Traceback" not in err
    line = next(line for line in out.splitlines() if line.startswith("Stopped by"))
    assert signal.Signals(signum).name in line
    last = tmp_path / "runs" / "stopped" / "nn" / "last.pth"
    stopped_at = load_checkpoint(last)["iteration"]
    assert stopped_at >= 20 and f"checkpoint={last}" in line
    command = shlex.split(line.split("Resume: ")[1])
    assert command[:2] == ["python", "train.py"]
    resumed = train(tmp_path, *command[2:], f"max_iterations={stopped_at + 10}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(last)["iteration"] == stopped_at + 10


def test_after_kill_9_last_pth_is_the_newest_save(tmp_path: Path) -> None:
    run = start(
        tmp_path, *SMALL, "experiment=killed", "train.params.config.ddiffpg.save_interval=20"
    )
    nn = tmp_path / "runs" / "killed" / "nn"
    wait_for(nn / "PointMazeV1_iter120.pth", run)
    run.kill()
    run.communicate()
    newest = max(int(p.stem.split("iter")[1]) for p in nn.glob("*_iter*.pth"))
    assert load_checkpoint(nn / "last.pth")["iteration"] == newest >= 120
    again = train(tmp_path, *SMALL, "experiment=killed")
    assert again.returncode != 0 and f"checkpoint={nn / 'last.pth'}" in again.stderr
    # a SLURM requeue of the same run resumes from it by itself
    requeued = train(tmp_path, *SMALL, "experiment=killed", f"max_iterations={newest + 10}",
                     env={"SLURM_RESTART_COUNT": "1"})  # fmt: skip
    assert requeued.returncode == 0, requeued.stderr[-2000:]
    assert f"resuming from {nn / 'last.pth'}" in requeued.stdout
    assert load_checkpoint(nn / "last.pth")["iteration"] == newest + 10


def test_two_runs_started_with_one_name_write_to_two_folders(tmp_path: Path) -> None:
    # a shell loop or a job array starts runs in the same second: same clock-made name
    first = start(tmp_path, *SMALL, "experiment=twin", SAVE_20)
    runs = tmp_path / "runs"
    wait_for(runs / "twin" / "nn" / "PointMazeV1_iter20.pth", first)
    second = train(tmp_path, *SMALL, "experiment=twin", SAVE_20, "max_iterations=40")
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{Path('runs') / 'twin'} is in use by another process" in second.stdout
    assert load_checkpoint(runs / "twin_2" / "nn" / "last.pth")["iteration"] == 40
    assert load_checkpoint(runs / "twin" / "nn" / "last.pth")["iteration"] >= 20
    assert "max_iterations: 40" in (runs / "twin_2" / "config.yaml").read_text()
    assert "max_iterations: 40" not in (runs / "twin" / "config.yaml").read_text()


def test_checkpoint_of_another_algorithm_is_refused_in_one_paragraph(tmp_path: Path) -> None:
    td3 = (
        "task=PointMazeV1",
        "num_envs=4",
        "max_iterations=12",
        "train.params.config.td3.warm_up_steps=4",
    )
    done = train(tmp_path, "train=TD3Small", *td3, "experiment=td3")
    assert done.returncode == 0, done.stderr[-2000:]
    for other in ("DDiffPGSmall", "SACSmall"):
        resumed = train(
            tmp_path, f"train={other}", "task=PointMazeV1", "num_envs=4", "max_iterations=20",
            "checkpoint=runs/td3/nn/last.pth", f"experiment=from_td3_{other}",
        )  # fmt: skip
        assert resumed.returncode == 1
        assert "Traceback" not in resumed.stderr
        assert "config.algorithm: checkpoint 'td3'" in resumed.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("experiment=../outside", "stay inside runs/"),
        ("experiment=", "must be non-empty"),
        ("+learning_rate=0.1", "Unknown top-level key(s) 'learning_rate'"),
    ],
)
def test_run_names_and_keys_that_would_misplace_a_run(
    tmp_path: Path, override: str, message: str
) -> None:
    done = train(tmp_path, *SMALL, "max_iterations=2", override)
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outside").exists()
    assert (
        not (tmp_path / "runs" / "nn").exists() and not (tmp_path / "runs" / "config.yaml").exists()
    )


def test_play_writes_inside_the_played_run_and_budget_is_announced(tmp_path: Path) -> None:
    trained = train(tmp_path, *SMALL, "experiment=trained", "max_iterations=15", "num_envs=64")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (
        "the run stops at iteration 15" in trained.stdout and "max_iterations=15" in trained.stdout
    )
    assert "warning" not in trained.stdout  # 10 warm-up iterations of 15: fine
    run = tmp_path / "runs" / "trained"
    config = (run / "config.yaml").read_bytes()
    played = train(
        tmp_path, *SMALL, "test=True", "checkpoint=runs/trained/nn/last.pth", "experiment=trained"
    )
    assert played.returncode == 0, played.stderr[-2000:]
    assert (run / "config.yaml").read_bytes() == config  # the training run is untouched
    plays = list((run / "play").iterdir())
    assert len(plays) == 1 and (plays[0] / "episodes.npz").is_file()
    assert f"Play outputs go to {plays[0]}" in played.stdout
