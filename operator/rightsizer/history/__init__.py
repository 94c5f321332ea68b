"""Usage history that survives restarts: checkpoints of the engine's state (codec is pure)."""
