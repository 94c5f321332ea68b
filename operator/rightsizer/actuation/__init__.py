"""Writes to workloads: what to write is decided by pure functions; writers are thin."""
