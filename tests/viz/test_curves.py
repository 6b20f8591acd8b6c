"""Learning curves: success under z = 0 and each mode, modes found, against env steps; the history
survives a resumed run."""

from pathlib import Path

import numpy as np
from PIL import Image

from isaacgymenvs_ddiffpg.viz.atlas import mode_color
from isaacgymenvs_ddiffpg.viz.curves import (
    EvalRecord,
    LearningCurves,
    curves_figure,
    env_steps_label,
)

HISTORY = [
    EvalRecord(800, 0.0, {}, 0),
    EvalRecord(1600, 0.25, {1: 0.5}, 1),
    EvalRecord(2400, 0.5, {1: 0.75, 2: 0.0}, 2),
    EvalRecord(3200, 0.5, {1: 1.0}, 1),  # mode 2 merged away for one evaluation
    EvalRecord(4000, 0.75, {1: 1.0, 2: 0.5, 3: 0.25}, 3),
]


def test_a_record_reads_an_evaluation_table() -> None:
    table = {  # what the Trainer's evaluation logs
        "success_z0": 0.5,
        "success_goal_1": 0.25,
        "success_goal_2": 0.25,
        "episode_length": 41.0,
        "success_mode_1": 1.0,
        "success_mode_2": 0.5,
    }
    record = EvalRecord.from_table(table, 960, 2)
    assert record == EvalRecord(960, 0.5, {1: 1.0, 2: 0.5}, 2)
    assert EvalRecord.from_json(record.to_json()) == record


def test_each_mode_has_a_line_from_where_it_appears(tmp_path: Path) -> None:
    figure = curves_figure(HISTORY, "PointMazeV1")
    success, found = figure.axes
    lines = {line.get_label(): line for line in success.get_lines()}
    assert list(lines) == ["z = 0 (the policy picks)", "mode 1", "mode 2", "mode 3"]
    assert lines["z = 0 (the policy picks)"].get_xdata().tolist() == [800, 1600, 2400, 3200, 4000]
    assert lines["mode 1"].get_xdata().tolist() == [1600, 2400, 3200, 4000]  # starts late
    assert lines["mode 3"].get_xdata().tolist() == [4000]
    mode2 = np.asarray(lines["mode 2"].get_ydata(), dtype=float)
    assert lines["mode 2"].get_xdata().tolist() == [2400, 3200, 4000]
    assert mode2[0] == 0.0 and np.isnan(mode2[1]) and mode2[2] == 0.5  # a gap where it was gone
    assert lines["mode 2"].get_color() == mode_color(2)  # the atlas's colour of mode 2
    (modes_found,) = found.get_lines()
    assert modes_found.get_ydata().tolist() == [0, 1, 2, 1, 3]
    assert found.get_xlabel() == "env steps" and success.get_ylabel() == "success rate"
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == list(lines)


def test_append_rewrites_the_png_and_a_resumed_run_continues(tmp_path: Path) -> None:
    png = tmp_path / "modes" / "PointMazeV1_curves.png"
    curves = LearningCurves(png, "PointMazeV1: learning curves")
    for record in HISTORY[:3]:
        assert curves.append(record) == png
    first = np.asarray(Image.open(png).convert("RGB"))
    assert first.shape[0] > 300 and first.shape[1] > 500
    assert len(png.with_suffix(".jsonl").read_text().splitlines()) == 3
    # a run resumed from the checkpoint at 1600 env steps: the evaluation at 2400 is redone
    resumed = LearningCurves(png, "PointMazeV1: learning curves")
    assert resumed.history == HISTORY[:3]
    resumed.append(EvalRecord(2400, 1.0, {1: 1.0, 2: 1.0}, 2))
    assert [r.success_z0 for r in LearningCurves(png, "").history] == [0.0, 0.25, 1.0]
    assert not np.array_equal(np.asarray(Image.open(png).convert("RGB")), first)


def test_env_step_ticks_read_as_numbers_without_an_offset() -> None:
    assert [env_steps_label(x) for x in (0, 800, 40_000, 2_500_000)] == ["0", "800", "40k", "2.5M"]
    history = [EvalRecord(steps, 0.5, {}, 0) for steps in (500_000, 1_500_000, 2_500_000)]
    figure = curves_figure(history, "T")
    figure.canvas.draw()
    found = figure.axes[1]
    labels = [tick.get_text() for tick in found.get_xticklabels() if tick.get_text()]
    assert "1M" in labels and found.xaxis.get_offset_text().get_text() == ""
