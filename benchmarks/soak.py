"""Soak: long training runs with periodic saves; memory, open files and checkpoints; prints JSON.

    python benchmarks/soak.py --minutes 60 60          # PointMazeV1, then AntMazeV1 at 256 envs
    python benchmarks/soak.py --minutes 5 5 --out /tmp/soak

Each run is `python train.py` (DDiffPGSmall, one physics and one torch thread) stopped by
SIGTERM after its minutes (so the final-checkpoint path is soaked too). Every `--every`
seconds the run's resident memory (VmRSS) and open file descriptors are read from /proc. At the
end every checkpoint the run wrote is loaded. Printed per run: the samples, their first and last
values and the largest rise after the first quarter (memory that keeps growing would show
there), and the checkpoints that failed to load (none expected). `--out` also gets a PNG of both
curves.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint
from isaacgymenvs_ddiffpg.utils.errors import CheckpointError

REPO = Path(__file__).resolve().parent.parent
SAVE = "train.params.config.ddiffpg.save_interval"
BUDGET = "train.params.config.ddiffpg.max_env_steps=1000000000"  # the clock ends the run
RUNS = {
    "PointMazeV1": ["task=PointMazeV1", "num_envs=32", f"{SAVE}=2000", BUDGET],
    "AntMazeV1": ["task=AntMazeV1", "num_envs=256", f"{SAVE}=500", BUDGET],
}


def read_proc(pid: int) -> tuple[float, int]:
    """(resident memory in MiB, open file descriptors) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss_kib / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def soak(task: str, minutes: float, every: float, out: Path) -> dict[str, object]:
    experiment = f"soak_{task}_{int(time.time())}"
    command = [
        sys.executable, str(REPO / "train.py"), *RUNS[task], "train=DDiffPGSmall",
        "num_threads=1", "+train.params.torch_threads=1", f"experiment={experiment}",
    ]  # fmt: skip
    log = (out / f"{experiment}.log").open("w")
    process = subprocess.Popen(command, cwd=out, stdout=log, stderr=subprocess.STDOUT)
    start, samples = time.monotonic(), []
    while time.monotonic() - start < 60 * minutes and process.poll() is None:
        try:
            rss, fds = read_proc(process.pid)
        except (FileNotFoundError, StopIteration):
            break
        samples.append({"s": round(time.monotonic() - start, 1), "rss_mib": rss, "fds": fds})
        time.sleep(every)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=600)
    log.close()
    checkpoints = sorted((out / "runs" / experiment / "nn").glob("*.pth"))
    unreadable = []
    for path in checkpoints:
        try:
            load_checkpoint(path)
        except CheckpointError as err:
            unreadable.append(f"{path.name}: {err}")
    rss = [s["rss_mib"] for s in samples]
    fds = [s["fds"] for s in samples]
    settled = max(len(samples) // 4, 1)
    return {
        "task": task,
        "minutes": minutes,
        "exit_code": code,
        "checkpoints": len(checkpoints),
        "unreadable": unreadable,
        "rss_mib_first_last": [rss[0], rss[-1]] if rss else None,
        "rss_mib_rise_after_first_quarter": max(rss[settled:]) - rss[settled] if rss else None,
        "fds_first_last": [fds[0], fds[-1]] if fds else None,
        "fds_rise_after_first_quarter": max(fds[settled:]) - fds[settled] if fds else None,
        "samples": samples,
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, files) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, constrained_layout=True)
    offset = 0.0
    for result in results:
        t = [offset + s["s"] / 60 for s in result["samples"]]
        mem.plot(t, [s["rss_mib"] for s in result["samples"]], label=result["task"])
        files.plot(t, [s["fds"] for s in result["samples"]], label=result["task"])
        offset = t[-1] if t else offset
    mem.set_ylabel("resident memory (MiB)")
    files.set_ylabel("open file descriptors")
    files.set_xlabel("minutes")
    mem.legend()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--minutes", nargs="+", type=float, default=[60.0, 60.0])
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=Path("soak"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = [
        soak(task, minutes, args.every, args.out.resolve())
        for task, minutes in zip(args.tasks, args.minutes, strict=True)
    ]
    plot(results, args.out / "soak.png")
    print(json.dumps({"benchmark": "soak", "runs": results}))


if __name__ == "__main__":
    main()
