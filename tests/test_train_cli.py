"""`python train.py ...` as a user runs it: SAC trains, checkpoints and plays; bad input fails."""

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # each test starts `python train.py` (5 to 40 s)


def train(cwd: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_sac_trains_checkpoints_and_plays(tmp_path: Path) -> None:
    args = ("task=PointMazeV1", "train=RLGamesSAC", "num_envs=16", "max_iterations=15")
    done = train(tmp_path, *args, "experiment=sac")
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "runs" / "sac"
    assert (run / "nn" / "last.pth").is_file()
    config = (run / "config.yaml").read_text()
    assert "name: PointMazeV1" in config and "num_envs: 16" in config
    events = EventAccumulator(str(run / "summaries")).Reload()
    assert "performance/step_fps" in events.Tags()["scalars"]

    played = train(
        tmp_path, *args, "test=True", "checkpoint=runs/sac/nn/last.pth", "experiment=sac_play"
    )
    assert played.returncode == 0, played.stderr[-2000:]
    assert "av reward" in played.stdout

    again = train(tmp_path, *args, "experiment=sac")
    assert again.returncode != 0
    assert "already holds checkpoints" in again.stderr
    assert (run / "nn" / "last.pth").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task=AntMazeV9", "Available options in 'task'"),
        ("num_envs=many", "could not be converted to Integer"),
        ("num_env=4", "Key 'num_env' not in 'RootConfig'"),
        ("task.env.layout=111/1R", "rows have different lengths"),
        ("checkpoint=nowhere.pth", "does not exist"),
        ("test=True", "needs checkpoint="),
        ("multi_gpu=True", "needs torchrun"),
    ],
)
def test_bad_input_fails_with_a_clear_message(tmp_path: Path, override: str, message: str) -> None:
    done = train(tmp_path, "task=PointMazeV1", override, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_ddiffpg_trains_resumes_and_plays_every_mode(tmp_path: Path) -> None:
    args = ("task=PointMazeV1", "train=DDiffPGSmall", "num_envs=8")
    small = (
        "train.params.config.ddiffpg.warm_up_steps=10",
        "train.params.config.ddiffpg.eval_interval=10",
        "train.params.config.ddiffpg.eval_envs=4",
        "train.params.config.ddiffpg.save_interval=10",
        "train.params.config.ddiffpg.log_interval=5",
    )
    done = train(tmp_path, *args, *small, "max_iterations=20", "experiment=dd")
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "runs" / "dd"
    assert {p.name for p in (run / "nn").glob("*.pth")} == {
        "last.pth",
        "PointMazeV1_iter10.pth",
        "PointMazeV1_iter20.pth",
    }
    events = EventAccumulator(str(run / "summaries")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/critic", "loss/actor", "modes/num_modes", "eval/success_z0"} <= tags
    assert "time/update_s" in tags and "perf/env_steps_per_s" in tags

    resumed = train(
        tmp_path,
        *args,
        *small,
        "max_iterations=30",
        "experiment=dd",
        "checkpoint=runs/dd/nn/last.pth",
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (run / "nn" / "PointMazeV1_iter30.pth").is_file()

    played = train(
        tmp_path,
        *args,
        "test=True",
        "mode=all",
        "checkpoint=runs/dd/nn/last.pth",
        "experiment=dd_play",
    )
    assert played.returncode == 0, played.stderr[-2000:]
    assert "mode 0 (z = 0, the policy picks): success" in played.stdout
    assert '"modes": {"0":' in played.stdout
