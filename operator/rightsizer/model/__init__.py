"""Records shared by every layer above the engine: workloads and policies as read from the
cluster, and the per-container assessment of a recommendation (pure, no I/O)."""
