"""Command line: thin shells over the engine and the adapters."""
