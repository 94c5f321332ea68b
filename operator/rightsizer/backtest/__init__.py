"""Backtesting: replay recorded usage, apply each strategy's recommendations as they would
have been applied, and count what they would have saved and what they would have broken.

Layout, in data-flow order:

* ``trace`` — a samples frame as time-ordered arrays, with the original requests and
  limits per row and how long each sample stands for;
* ``grid`` — the steps at which recommendations are recomputed;
* ``windowed`` — a trailing-window view of the ``percentile`` strategy's state;
* ``ledger`` — per-container accounting over one interval (OOMs, time above request or
  limit, requested and used resource-hours, rollouts);
* ``replay`` — the walk through time that ties them together;
* ``summary`` — totals per strategy and their rendering as a table, JSON or Markdown;
* ``plots`` — PNG charts (the only module here that writes files).

Everything but ``plots`` is pure: no I/O, no clock reads; progress is reported through
a callback.
"""
