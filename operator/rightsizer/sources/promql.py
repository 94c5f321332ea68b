"""PromQL for usage history: one small function per query (pure text building).

Every query selects one namespace and aggregates ``by (namespace, pod, container)``, so
the number of queries grows with namespaces × metrics, never with pods, and ``max by``
de-duplicates series that several jobs scrape. cAdvisor's pod-level and pause series
(``container=""`` and ``container="POD"``) are excluded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rightsizer.policy.matchers import validate_matchers

__all__ = ["validate_matchers"]

BY = "by (namespace, pod, container)"
_LABEL_VALUE = re.compile(r"[^\\\"\n]*")


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(namespace: str, extra: str = "", *, containers: bool = True) -> str:
    matchers = [f"namespace={quote(namespace)}"]
    if containers:
        matchers += ['container!=""', 'container!="POD"']
    if extra:
        matchers.append(extra)
    return "{" + ",".join(matchers) + "}"


def duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def step_window(step_s: float) -> str:
    """One step back, 1 ms short: range selectors are closed on the left before
    Prometheus 3 and open after it; this window holds the same samples in both."""
    return f"{round(step_s * 1000) - 1}ms"


def cpu_usage(
    namespace: str, rate_window_s: float, extra: str = "", *, two_samples: bool = False
) -> str:
    """CPU cores per container: the rate between the last two counter samples, like the
    point-in-time rates upstream VPA gets from metrics-server (``rate`` would average over
    the window and flatten the distribution the percentiles are read from).

    ``two_samples``: only where the window holds two samples or more. Prometheus' ``irate``
    needs two anyway; VictoriaMetrics' takes the sample before the window when it holds
    one, so one step after a series ends it would repeat the last rate (docs/backends.md).
    """
    sel = selector(namespace, extra)
    window = duration(rate_window_s)
    rate = f"irate(container_cpu_usage_seconds_total{sel}[{window}])"
    if two_samples:
        rate += f" and count_over_time(container_cpu_usage_seconds_total{sel}[{window}]) > 1"
    return f"max {BY} ({rate})"


def memory_usage(namespace: str, step_s: float, extra: str = "") -> str:
    """Peak working set per step: the max of every raw sample since the previous step, so
    spikes between evaluation points are not lost."""
    sel = selector(namespace, extra)
    window = step_window(step_s)
    return f"max {BY} (max_over_time(container_memory_working_set_bytes{sel}[{window}]))"


def oom_kills(namespace: str, step_s: float, extra: str = "") -> str:
    """Restarts in the last step of containers whose last termination was an OOM kill.

    The restart count now minus one step ago: a restart is seen in the step where
    kube-state-metrics' count rose, whichever scrapes fall on either side of the step's
    start (``changes()`` over one step would miss a rise between the last scrape of the
    previous step and the first of this one, and with one sample per step see none)."""
    sel = selector(namespace, extra)
    oom_sel = selector(namespace, 'reason="OOMKilled"' + ("," + extra if extra else ""))
    restarts = f"kube_pod_container_status_restarts_total{sel}"
    return (
        f"(max {BY} ({restarts}) - max {BY} ({restarts} offset {duration(step_s)}) > 0)"
        f" * on (namespace, pod, container) group_left()"
        f" (max {BY} (kube_pod_container_status_last_terminated_reason{oom_sel}) > 0)"
    )


def resources(kind: str, namespace: str, extra: str = "") -> str:
    """Current requests or limits (``kind`` = requests|limits) per container and resource."""
    sel = selector(namespace, 'resource=~"cpu|memory"' + ("," + extra if extra else ""))
    return f"max by (namespace, pod, container, resource) (kube_pod_container_resource_{kind}{sel})"


def pod_owners(namespace: str, window_s: float, extra: str = "") -> str:
    """Every pod's controller over the whole history (pods of deleted ReplicaSets too)."""
    sel = selector(namespace, 'owner_is_controller="true"' + ("," + extra if extra else ""),
                   containers=False)  # fmt: skip
    return (
        f"max by (namespace, pod, owner_kind, owner_name) "
        f"(max_over_time(kube_pod_owner{sel}[{duration(window_s)}]))"
    )


def replicaset_owners(namespace: str, window_s: float, extra: str = "") -> str:
    sel = selector(namespace, 'owner_is_controller="true"' + ("," + extra if extra else ""),
                   containers=False)  # fmt: skip
    return (
        f"max by (namespace, replicaset, owner_kind, owner_name) "
        f"(max_over_time(kube_replicaset_owner{sel}[{duration(window_s)}]))"
    )


#: What the usage queries read (CPU, memory, the OOM queries' restart counts).
USAGE_METRICS = (
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_status_restarts_total",
)


def usage_series(namespace: str, extra: str = "") -> str:
    """One series selector for every series the usage queries of a namespace read."""
    names = "|".join(re.escape(name) for name in USAGE_METRICS)
    return selector(namespace, f"__name__=~{quote(names)}" + ("," + extra if extra else ""))


def pod_set(pods: Iterable[str]) -> str:
    """A matcher for exactly these pods: a regex of escaped alternatives, which Prometheus
    and VictoriaMetrics turn into a set lookup."""
    return f"pod=~{quote('|'.join(re.escape(pod) for pod in sorted(pods)))}"


def namespaces(window_s: float, extra: str = "") -> str:
    """Namespaces that had containers during the window."""
    sel = "{" + ",".join(['container!=""', 'container!="POD"', *([extra] if extra else [])]) + "}"
    return f"count by (namespace) (max_over_time(container_memory_working_set_bytes{sel}[{duration(window_s)}]))"  # noqa: E501
