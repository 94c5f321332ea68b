"""Developer tools: synthetic usage, sandbox helpers. Not used by the operator."""
