"""Run from a checkout: `python train.py task=AntMazeV1 train=DDiffPG` (see README)."""

from isaacgymenvs_ddiffpg.train import main

if __name__ == "__main__":
    main()
