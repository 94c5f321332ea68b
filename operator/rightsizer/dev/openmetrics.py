"""Samples → the series a real cluster exposes, as OpenMetrics text for promtool.

The kubelet's ``/metrics/resource``: ``container_cpu_usage_seconds_total`` (a counter
integrated from the sampled rates) and ``container_memory_working_set_bytes``;
kube-state-metrics: ``kube_pod_owner``, ``kube_replicaset_owner``,
``kube_pod_container_resource_requests``/``_limits``,
``kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}`` and
``kube_pod_container_status_restarts_total`` (every container, 0 until it restarts).
Names, label sets, units and types are those a kube-prometheus-stack Prometheus stores
when it scrapes kube-state-metrics v2.18 and the kubelet (``job="kubelet"`` with
``metrics_path``, ``node``, ``endpoint``, ``service``; kube-state-metrics' ``uid`` and
``node``; with ``honor_labels``, the exporter pod's own ``namespace``/``pod``/``container``
on series that have none): tests/integration/test_live_scrape.py compares them with what
the sandbox's Prometheus scrapes from the real exporters. Time is shifted by ``shift_s``
(so that a history can end "now"). Pure: ``render`` yields text; the caller writes it.

promtool's traps are handled here: timestamps in seconds, every series in time order,
families not interleaved, ``# EOF`` at the end; ``split_days`` yields one text per UTC day
so that promtool never maps a huge file.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd

from rightsizer.quantity import DAY_S

CADVISOR_JOB = "kubelet"
KSM_JOB = "kube-state-metrics"
#: The node every converted pod runs on (samples files do not say).
NODE = "node-1"
#: Target labels of kube-prometheus-stack's kubelet job (endpoint /metrics/resource).
KUBELET_TARGET = {"endpoint": "https-metrics", "instance": "10.0.0.1:10250", "job": CADVISOR_JOB,
                  "metrics_path": "/metrics/resource", "node": NODE,
                  "service": "kube-prometheus-stack-kubelet"}  # fmt: skip
#: Target labels of its kube-state-metrics job (honor_labels: the exporter pod's
#: namespace/pod/container show only on series that have none of their own).
KSM_TARGET = {"endpoint": "http", "instance": "10.244.0.10:8080", "job": KSM_JOB,
              "service": "kube-prometheus-stack-kube-state-metrics"}  # fmt: skip
KSM_POD = {"namespace": "monitoring", "pod": "kube-prometheus-stack-kube-state-metrics-0",
           "container": "kube-state-metrics"}  # fmt: skip


#: The alphabet Kubernetes uses for generated name suffixes.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def replicaset_name(namespace: str, deployment: str) -> str:
    """A stable, realistic ReplicaSet name for a Deployment (``web-5d8f7c9b6``)."""
    digest = hashlib.sha1(f"{namespace}/{deployment}".encode()).digest()
    return f"{deployment}-" + "".join(_SAFE[b % len(_SAFE)] for b in digest[:9])


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + body + "}"


def pod_uid(namespace: str, pod: str) -> str:
    """A stable UUID for a pod (kube-state-metrics labels pod series with ``uid``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{pod}"))


def ksm_labels(**labels: object) -> str:
    """A kube-state-metrics series as scraped: its own labels over the target's."""
    return _labels(**{**KSM_POD, **KSM_TARGET, **labels})


def ksm_container_labels(ns: str, pod: str, container: str, **labels: object) -> str:
    return ksm_labels(container=container, namespace=ns, pod=pod, uid=pod_uid(ns, pod), **labels)


def _lines(name: str, labels: str, values: np.ndarray, ts: np.ndarray) -> str:
    vals = pd.Series(values).map(repr).to_numpy(dtype=str)
    stamps = pd.Series(np.round(ts, 3)).map(repr).to_numpy(dtype=str)
    prefix = f"{name}{labels} "
    return "".join(prefix + v + " " + t + "\n" for v, t in zip(vals, stamps, strict=True))


def with_cpu_counter(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``cpu_counter``: CPU seconds used so far per pod/container, integrating each
    sampled rate over the interval it ends (the first over the median step)."""
    frame = frame.sort_values("timestamp", kind="stable").copy()
    steps = np.diff(np.sort(frame["timestamp"].unique()))
    median_step = float(np.median(steps)) if steps.size else 60.0
    frame["cpu_counter"] = np.nan
    cpu = frame[frame["cpu"].notna()]
    keys = ["namespace", "workload", "pod", "container"]
    dt = cpu.groupby(keys, sort=False)["timestamp"].diff().fillna(median_step)
    frame.loc[cpu.index, "cpu_counter"] = (
        (cpu["cpu"] * dt).groupby([cpu[k] for k in keys], sort=False).cumsum()
    )
    # A container's counter starts at 0: the point one interval before its first sample
    # lets rate() see the first sample too, as a real cAdvisor series would.
    first = ~cpu.duplicated(subset=keys, keep="first")
    frame["cpu_origin_s"] = np.nan
    frame.loc[cpu.index[first], "cpu_origin_s"] = (cpu["timestamp"] - dt)[first]
    return frame


def _thin(ts: np.ndarray, interval_s: float | None) -> np.ndarray:
    """Indexes of at most one point per interval (the first of each), plus the last."""
    if interval_s is None or ts.shape[0] < 2:
        return np.arange(ts.shape[0])
    bucket = np.floor(ts / interval_s)
    keep = np.concatenate([[True], bucket[1:] != bucket[:-1]])
    keep[-1] = True
    return np.flatnonzero(keep)


_Groups = list[tuple[tuple[str, str, str, str], pd.DataFrame]]


def render(
    frame: pd.DataFrame, shift_s: float, state_interval_s: float | None = None
) -> Iterator[str]:
    """OpenMetrics text for a samples frame that has ``cpu_counter``, ``# EOF`` last.

    ``state_interval_s`` writes kube-state-metrics' owner and resource series at most
    once per interval (as a KSM scrape would), which keeps big histories small.
    """
    frame = frame.sort_values("timestamp", kind="stable")
    groups: _Groups = list(frame.groupby(["namespace", "workload", "pod", "container"], sort=True))  # type: ignore[arg-type]
    yield from _cadvisor_cpu(groups, shift_s)
    yield from _cadvisor_memory(groups, shift_s)
    yield from _owners(frame, shift_s, state_interval_s)
    yield from _resources(groups, shift_s, state_interval_s)
    yield from _terminations(groups, shift_s, state_interval_s)
    yield "# EOF\n"


def cadvisor_labels(ns: str, pod: str, container: str) -> str:
    return _labels(**KUBELET_TARGET, container=container, namespace=ns, pod=pod)


def _cadvisor_cpu(groups: _Groups, shift_s: float) -> Iterator[str]:
    yield "# TYPE container_cpu_usage_seconds counter\n"
    for (ns, _wl, pod, container), g in groups:
        cpu = g[g["cpu_counter"].notna()]
        if cpu.empty:
            continue
        ts = cpu["timestamp"].to_numpy(dtype=float)
        counter = cpu["cpu_counter"].to_numpy(dtype=float)
        origin = cpu["cpu_origin_s"].iloc[0] if "cpu_origin_s" in cpu.columns else np.nan
        if np.isfinite(origin):
            ts = np.concatenate([[origin], ts])
            counter = np.concatenate([[0.0], counter])
        labels = cadvisor_labels(ns, pod, container)
        yield _lines("container_cpu_usage_seconds_total", labels, counter, ts + shift_s)


def _cadvisor_memory(groups: _Groups, shift_s: float) -> Iterator[str]:
    yield "# TYPE container_memory_working_set_bytes gauge\n"
    for (ns, _wl, pod, container), g in groups:
        mem = g[g["memory"].notna() & ~g["oom"]]
        if mem.empty:
            continue
        yield _lines(
            "container_memory_working_set_bytes",
            cadvisor_labels(ns, pod, container),
            mem["memory"].to_numpy(dtype=float),
            mem["timestamp"].to_numpy(dtype=float) + shift_s,
        )


def _owners(frame: pd.DataFrame, shift_s: float, state_interval_s: float | None) -> Iterator[str]:
    pods = frame.groupby(["namespace", "workload", "pod"], sort=True)["timestamp"]
    yield "# TYPE kube_pod_owner gauge\n"
    for (ns, wl, pod), pod_ts in pods:
        kind, name = str(wl).split("/", 1)
        owner_kind, owner_name = (
            ("ReplicaSet", replicaset_name(str(ns), name)) if kind == "Deployment" else (kind, name)
        )
        labels = ksm_labels(namespace=ns, owner_is_controller="true", owner_kind=owner_kind,
                      owner_name=owner_name, pod=pod, uid=pod_uid(str(ns), str(pod)))  # fmt: skip
        t = np.unique(pod_ts.to_numpy(dtype=float))
        t = t[_thin(t, state_interval_s)]
        yield _lines("kube_pod_owner", labels, np.ones(t.shape[0]), t + shift_s)

    yield "# TYPE kube_replicaset_owner gauge\n"
    workloads = frame.groupby(["namespace", "workload"], sort=True)["timestamp"]
    for (ns, wl), wl_ts in workloads:
        kind, name = str(wl).split("/", 1)
        if kind != "Deployment":
            continue
        labels = ksm_labels(namespace=ns, owner_is_controller="true", owner_kind="Deployment",
                      owner_name=name, replicaset=replicaset_name(str(ns), name))  # fmt: skip
        t = np.unique(wl_ts.to_numpy(dtype=float))
        t = t[_thin(t, state_interval_s)]
        yield _lines("kube_replicaset_owner", labels, np.ones(t.shape[0]), t + shift_s)


def _resources(groups: _Groups, shift_s: float, state_interval_s: float | None) -> Iterator[str]:
    for family, columns in (
        ("kube_pod_container_resource_requests", ("cpu_request", "memory_request")),
        ("kube_pod_container_resource_limits", ("cpu_limit", "memory_limit")),
    ):
        yield f"# TYPE {family} gauge\n"
        for (ns, _wl, pod, container), g in groups:
            for column, resource, unit in zip(
                columns, ("cpu", "memory"), ("core", "byte"), strict=True
            ):
                rows = g[g[column].notna()]
                if rows.empty:
                    continue
                rows = rows.iloc[_thin(rows["timestamp"].to_numpy(dtype=float), state_interval_s)]
                labels = ksm_container_labels(ns, pod, container, node=NODE, resource=resource,
                                        unit=unit)  # fmt: skip
                t = rows["timestamp"].to_numpy(dtype=float)
                yield _lines(family, labels, rows[column].to_numpy(dtype=float), t + shift_s)


def _terminations(
    groups: _Groups, shift_s: float, state_interval_s: float | None = None
) -> Iterator[str]:
    """The last termination's reason (from a container's first OOM kill on) and the
    restart count of every container (each OOM kill is one restart), as kube-state-metrics
    exposes them."""
    yield "# TYPE kube_pod_container_status_last_terminated_reason gauge\n"
    restarts: list[tuple[str, np.ndarray, np.ndarray]] = []
    for (ns, _wl, pod, container), g in groups:
        t = np.unique(g["timestamp"].to_numpy(dtype=float))
        restart_labels = ksm_container_labels(ns, pod, container)
        if not g["oom"].any():
            t = t[_thin(t, state_interval_s)]
            restarts.append((restart_labels, np.zeros(t.shape[0]), t + shift_s))
            continue
        oom_at = np.unique(g.loc[g["oom"].to_numpy(dtype=bool), "timestamp"].to_numpy(dtype=float))
        after = np.searchsorted(oom_at, t, side="right").astype(float)
        seen = after > 0
        labels = ksm_container_labels(ns, pod, container, reason="OOMKilled")
        yield _lines(
            "kube_pod_container_status_last_terminated_reason",
            labels,
            np.ones(int(seen.sum())),
            t[seen] + shift_s,
        )
        restarts.append((restart_labels, after, t + shift_s))
    yield "# TYPE kube_pod_container_status_restarts counter\n"
    for labels, counts, t in restarts:
        yield _lines("kube_pod_container_status_restarts_total", labels, counts, t)


def split_days(frame: pd.DataFrame, shift_s: float = 0.0) -> Iterator[pd.DataFrame]:
    """The frame cut into the UTC days its samples fall on once shifted by ``shift_s``, in
    order (one promtool input per day; no two parts share a day)."""
    day = np.floor((frame["timestamp"].to_numpy(dtype=float) + shift_s) / DAY_S)
    for d in np.unique(day):
        yield frame[day == d]
