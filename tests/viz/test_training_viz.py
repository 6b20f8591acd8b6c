"""The training hooks: each evaluation appends to the learning curves and draws the atlas; the
eval video says what it films."""

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from isaacgymenvs_ddiffpg.learning.agents import make_agent
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.viz.training import TrainingViz
from isaacgymenvs_ddiffpg.viz.video import VideoConfig
from tests.learning.test_trainer import EASY, tiny_config


def test_each_evaluation_extends_the_curves_next_to_the_atlas(tmp_path: Path) -> None:
    eval_env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=1))
    spec = EnvSpec.from_env_info(eval_env.get_env_info(), num_envs=4)
    algo = make_agent(tiny_config(), spec, "cpu", seed=0)
    video = VideoConfig(capture=True, freq=30, width=64, height=48)
    hooks = TrainingViz(tmp_path, "PointMazeV1", video)
    recorder = hooks.recorder(eval_env, 30)
    assert recorder is not None and recorder.label == "z = 0 (the policy picks), iteration 30"

    writer = SummaryWriter(str(tmp_path / "summaries"))
    hooks.publish(algo, eval_env, {"success_z0": 0.25}, 30, writer, 240)
    hooks.publish(algo, eval_env, {"success_z0": 0.5}, 40, writer, 320)
    # a run resumed in the same folder continues the history
    TrainingViz(tmp_path, "PointMazeV1", video).publish(
        algo, eval_env, {"success_z0": 1.0}, 50, writer, 400
    )
    writer.close()
    modes = tmp_path / "modes"
    assert sorted(p.name for p in modes.iterdir()) == [
        "PointMazeV1_curves.jsonl",
        "PointMazeV1_curves.png",
        "PointMazeV1_iter30.png",
        "PointMazeV1_iter40.png",
        "PointMazeV1_iter50.png",
    ]
    records = [json.loads(line) for line in (modes / "PointMazeV1_curves.jsonl").open()]
    assert [(r["env_steps"], r["success_z0"], r["num_modes"]) for r in records] == [
        (240, 0.25, 0),
        (320, 0.5, 0),
        (400, 1.0, 0),
    ]
