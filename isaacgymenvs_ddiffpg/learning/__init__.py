"""Learning: the DDiffPG agent and its parts, and the rl-games glue."""
