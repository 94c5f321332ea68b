"""Guardrails: pure decisions about whether and how a recommendation may be applied."""
