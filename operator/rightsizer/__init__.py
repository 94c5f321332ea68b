"""rightsizer: learn what containers really use, and size their requests and limits to it.

The package follows the data flow: ``sources`` (adapters that read usage) → ``samples``
(the one canonical shape of usage data) → ``engine`` (pure recommendation maths) →
``guardrails`` / ``actuation`` (operator side) — with ``cli`` and the Kopf handlers as
thin shells on top.
"""

__version__ = "0.1.0"
