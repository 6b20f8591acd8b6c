"""The agents (DDiffPG and its baselines), what they learn with, the training loop, playback."""
