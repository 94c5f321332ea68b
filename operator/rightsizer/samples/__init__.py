"""Samples: the one shape of usage data (``../shared/design/samples-format.md``).

Every source produces a *samples frame* (a pandas DataFrame with the columns below,
validated and normalised); the engine consumes chunks encoded from it.
"""
