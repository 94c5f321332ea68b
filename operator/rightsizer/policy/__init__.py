"""RightSizePolicy: its spec parsed into the engine's terms, and workload selection (pure)."""
