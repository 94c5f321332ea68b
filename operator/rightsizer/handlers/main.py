"""Kopf handlers of the rightsizer operator: ``kopf run -m rightsizer.handlers.main``.

Thin by design. Cluster objects are read through ``@kopf.index`` (nothing is written to
them by indexing), the many workloads and recommendation objects through the operator's
own watch caches (``caches.py``); one timer per RightSizePolicy runs the reconcile step
when it is due; what the step decides is written here: status, annotations, checkpoints,
Events.

The timer is an ``async def`` that hands the blocking work (Kubernetes and Prometheus
clients) to the reconcile pools (``pools.py``), never to Kopf's own thread pool, which the
indexes need. The status is written here too, not through Kopf's patch: a patch that
fails after Kopf's retries ends Kopf's timer for good (see ``write_policy_status``); ours
keeps an unsent status in memory and sends it at the next tick. The liveness probe is
async as well, so that no busy thread can delay it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from rightsizer import __version__, names
from rightsizer import heap as memory
from rightsizer.actuation import hpa as hpa_writes
from rightsizer.actuation import kubernetes as kube_writes
from rightsizer.actuation import pods as pod_writes
from rightsizer.actuation import resources
from rightsizer.controller import autoapply
from rightsizer.controller import observability as obs
from rightsizer.controller.liveness import STALE_INTERVALS, Liveness
from rightsizer.controller.reconcile import (
    Event,
    Ports,
    ReconcileInput,
    checkpoint_name,
    reconcile,
)
from rightsizer.controller.runtime import PolicyRuntime
from rightsizer.engine.policy import LimitRangeItem, parse_limit_range
from rightsizer.engine.settings import SettingsError, parse_duration_s
from rightsizer.handlers import recommendations as recommendation_objects
from rightsizer.handlers import webhook
from rightsizer.handlers.caches import Caches
from rightsizer.handlers.pools import ReconcilePools
from rightsizer.handlers.settings import settings_from_env, tick_s_from_env
from rightsizer.handlers.webhook import webhook_settings_from_env
from rightsizer.history import store
from rightsizer.model.hpa import HpaInfo, hpa_info
from rightsizer.model.inplace import UpdateMethod
from rightsizer.model.workloads import PolicyInfo, WorkloadInfo
from rightsizer.policy.spec import PolicyError, parse_policy_spec
from rightsizer.sources import kubernetes_api, metrics_server, prometheus_policy
from rightsizer.sources.endpoints import AllowList
from rightsizer.sources.errors import LIMIT_PROBLEMS
from rightsizer.sources.limits import SourceLimits
from rightsizer.status.auto_apply import object_entries, stored_entries, told_states
from rightsizer.status.build import Condition, iso, merge_conditions, status_after_pass
from rightsizer.status.policy import overview, status_patch
from rightsizer.status.recommendation import PolicyRef, shown_state

GROUP, VERSION, PLURAL = names.GROUP, names.VERSION, names.POLICY_PLURAL
TICK_S = tick_s_from_env()
#: Read when the handlers are registered: Kopf refuses admission handlers without a server.
WEBHOOK = webhook_settings_from_env()
DEFAULT_INTERVAL_S = 300.0
#: After a source error, try again this soon (or at the policy's interval, if shorter).
RETRY_AFTER_SOURCE_ERROR_S = 30.0
#: How often Kopf checks whether a deleted policy's running tick has ended.
TIMER_EXIT_POLL_S = 5.0
#: The fixed text of an unexpected failure (its detail goes to the operator's log only).
RECONCILE_FAILED = "the reconcile failed unexpectedly; the operator's log has the details"
#: The operator's own log, never posted as Events (Kopf posts its object loggers' warnings
#: and errors, message included, onto the policy, where its author reads them).
operator_log = logging.getLogger("rightsizer.operator")


@kopf.on.startup()
def startup(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    memory.limit_arenas(os.environ)  # before the caches' and pools' threads exist
    settings.persistence.finalizer = names.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rightsizer.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="rightsizer.dev", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    try:
        operator_settings = settings_from_env()
    except ValueError as exc:  # the installer's mistake: stop and say so
        raise kopf.PermanentError(str(exc)) from None
    settings.execution.max_workers = operator_settings.kopf_workers
    # A policy deleted while its tick runs keeps its finalizer until Kopf sees the timer
    # gone (the tick returns at once then, see ``tick``); Kopf looks again after this long
    # (60 s by default) when it does not see it gone at once.
    settings.background.cancellation_polling = TIMER_EXIT_POLL_S
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    memo.api = client.ApiClient()
    memo.runtimes = {}
    memo.unsent = {}
    memo.limits = operator_settings.limits
    memo.rollout_watch = operator_settings.rollout_watch
    recommendation_objects.start(memo, operator_settings)
    memo.caches = Caches.start(memo.api)
    memo.pools = ReconcilePools(
        operator_settings.reconcile_workers, operator_settings.slow_source_workers
    )
    # One reconcile may take its read deadline, plus a tick's wait and a margin for writes.
    allowance_s = operator_settings.limits.reconcile_deadline_s + TICK_S + 60
    memo.liveness = Liveness(allowance_s=allowance_s)
    memo.allowed_prometheus = operator_settings.allowed_prometheus
    endpoint = operator_settings.metrics
    if endpoint is not None:
        start_http_server(endpoint.port, addr=endpoint.address)
    webhook_line = "no admission webhook"
    if WEBHOOK is not None:
        webhook_line = webhook.start(settings, memo.api, WEBHOOK)
    allowed = ", ".join(e.url for e in memo.allowed_prometheus.endpoints) or "none"
    logger.info(
        f"rightsizer operator started (version {__version__}, metrics on {endpoint}, "
        f"{webhook_line}, allowed Prometheus endpoints: {allowed})"
    )


if WEBHOOK is not None:
    kopf.on.mutate(
        "", "v1", "pods", id=webhook.HANDLER_ID, operations=["CREATE"], side_effects=False,
        ignore_failures=True,
    )(webhook.size_pod)  # fmt: skip


# -- indexes: what reconciles read; nothing is written to these objects by indexing --------
# Workloads and recommendation objects, the kinds with many objects, are in the operator's
# own watch caches instead (``caches.py``), under the same names.
@kopf.index("", "v1", "limitranges")
def limitranges(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[str, list[LimitRangeItem]]:
    return {namespace or "": parse_limit_range(dict(body))}


@kopf.index("", "v1", "namespaces")
def namespaces(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    return {name: dict(labels)}


@kopf.index("", "v1", "resourcequotas")
def resourcequotas(
    namespace: str | None, name: str, status: kopf.Status, **_: Any
) -> dict[str, dict[str, Any]]:
    """Hard limits and usage as the quota controller last counted them."""
    return {
        namespace or "": {
            "name": name,
            "hard": {str(k): str(v) for k, v in (status.get("hard") or {}).items()},
            "used": {str(k): str(v) for k, v in (status.get("used") or {}).items()},
        }
    }


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers")
def hpas(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, HpaInfo]:
    """What Apply mode needs of each HPA: its target and cpu/memory metrics (a few fields
    per HPA, not the object)."""
    return {namespace or "": hpa_info(dict(body))}


@kopf.index(GROUP, VERSION, PLURAL)
def policies(
    body: kopf.Body, namespace: str | None, name: str, uid: str, meta: kopf.Meta, **_: Any
) -> dict[str, PolicyInfo]:
    ns = namespace or ""
    created = str(meta.get("creationTimestamp", ""))
    return {ns: PolicyInfo(ns, name, uid, created, dict(body.get("spec", {})))}


# -- the reconcile timer ------------------------------------------------------------------
def _interval_s(spec: kopf.Spec) -> float:
    try:
        return parse_duration_s(str(spec.get("reconcileInterval", "5m")))
    except SettingsError:
        return DEFAULT_INTERVAL_S


def _all(index: kopf.Index[str, Any], namespace: str) -> list[Any]:
    return list(index.get(namespace, []))


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_S, initial_delay=1.0, idle=None)
async def tick(
    body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
    namespace: str | None, name: str, uid: str, memo: kopf.Memo, logger: kopf.Logger,
    **indexes: Any,
) -> None:  # fmt: skip
    """Runs one tick in the policy's reconcile pool (never in Kopf's own workers).

    When the policy is deleted (or the operator stops) the tick returns at once, so Kopf
    releases the finalizer without waiting for it: a tick still queued never runs, and
    one already running ends by its own deadline, its writes to a deleted policy
    answered 404."""
    stopped: kopf.DaemonStopped = indexes.pop("stopped")  # a timer's kwarg, not an index
    caches: Caches = memo.caches
    if not caches.synced():  # not all listed yet: no reconcile reads a partial cluster
        return
    indexes.update(caches.stores)
    pools: ReconcilePools = memo.pools
    run = functools.partial(
        _tick, body, spec, status, meta, namespace or "", name, uid, memo, logger, indexes
    )
    # The context carries Kopf's Event queue to the thread (``kopf.event``).
    context = contextvars.copy_context()
    work = pools.for_policy(uid).submit(context.run, run)
    done = asyncio.wrap_future(work)
    done.add_done_callback(_retrieve)
    stop = asyncio.ensure_future(_until(stopped))
    try:
        await asyncio.wait({done, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not done.done() and not work.cancel():
            # Running still: what it leaves in memory for the deleted policy goes when it ends.
            work.add_done_callback(lambda _: _forget(memo, namespace or "", name, uid))
    if done.done() and not done.cancelled():
        done.result()


async def _until(stopped: kopf.DaemonStopped) -> None:
    await stopped.wait()


def _retrieve(future: asyncio.Future[None]) -> None:
    """Takes the outcome of a tick nobody waits for any more (its policy was deleted), so
    that asyncio does not report it as never retrieved; ``_tick`` logs its own failures."""
    if not future.cancelled():
        future.exception()


def _valid(spec: kopf.Spec) -> bool:
    try:
        parse_policy_spec(dict(spec))
    except PolicyError:
        return False
    return True


@dataclass(frozen=True)
class PolicyTick:
    """One tick of one policy: what Kopf gave the timer, read once."""

    body: kopf.Body
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    """The status the API server has."""
    known: Mapping[str, Any]
    """The status it has, or will have once what an earlier tick could not send is sent."""
    meta: kopf.Meta
    namespace: str
    name: str
    uid: str
    generation: int
    now_s: float
    logger: kopf.Logger


@dataclass(frozen=True)
class NamespaceView:
    """What the indexes hold about the policy's namespace."""

    workloads: list[WorkloadInfo]
    limit_ranges: list[LimitRangeItem]
    labels: dict[str, str]
    indexes: dict[str, Any]

    @classmethod
    def of(cls, indexes: dict[str, Any], namespace: str) -> NamespaceView:
        return cls(
            workloads=[
                w
                for kind in ("deployments", "statefulsets", "daemonsets")
                for w in _all(indexes[kind], namespace)
            ],
            limit_ranges=[
                item for items in _all(indexes["limitranges"], namespace) for item in items
            ],
            labels=next(iter(indexes["namespaces"].get(namespace, [])), {}),
            indexes=indexes,
        )

    def of_kind(self, index: str, namespace: str) -> list[Any]:
        return _all(self.indexes[index], namespace)


def _tick(
    body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, namespace: str,
    name: str, uid: str, memo: kopf.Memo, logger: kopf.Logger, indexes: dict[str, Any],
) -> None:  # fmt: skip
    unsent: dict[str, Any] | None = memo.unsent.get(uid)
    t = PolicyTick(
        body=body, spec=dict(spec), status=dict(status), known={**dict(status), **(unsent or {})},
        meta=meta, namespace=namespace, name=name, uid=uid,
        generation=int(meta.get("generation", 0)), now_s=time.time(), logger=logger,
    )  # fmt: skip
    runtime: PolicyRuntime | None = memo.runtimes.get(uid)
    interval = _interval_s(spec)
    liveness: Liveness = memo.liveness
    if _valid(spec):
        liveness.seen(uid, f"{namespace}/{name}", max(interval, TICK_S), time.monotonic())
    else:
        liveness.forget(uid)
    if runtime is not None and (not runtime.source_ok or runtime.catching_up):
        interval = min(interval, RETRY_AFTER_SOURCE_ERROR_S)
    due = not (
        runtime is not None
        and runtime.observed_generation == t.generation
        and t.now_s - runtime.last_reconcile_s < interval
    )
    apply_mode = (spec.get("update") or {}).get("mode") == "Apply"
    new_status: dict[str, Any] | None = None
    if due or apply_mode:
        new_status = _reconcile_and_apply(t, memo, indexes, due=due, apply_mode=apply_mode)
    if due:
        liveness.finished(uid, time.monotonic())
    if not meta.get("deletionTimestamp"):
        described = _sync_objects(t, memo, indexes, due=due, apply_mode=apply_mode)
        if described is not None:  # summary, top changes, how to list them all
            new_status = {**(new_status or {}), **described}
    _write_status(memo, t, new_status)
    if due:  # what the reconcile freed goes back to the system, not to the high-water mark
        memory.release()


def _sync_objects(
    t: PolicyTick, memo: kopf.Memo, indexes: dict[str, Any], *, due: bool, apply_mode: bool
) -> dict[str, Any] | None:
    """Bring the policy's recommendation objects in line when a reconcile ran, Annotate or
    Apply mode acted, or an owned workload's resources changed (ours or a person's write
    shows at the next tick, not at the next reconcile); returns the status's overview of
    them (None: not looked at now)."""
    runtime: PolicyRuntime | None = memo.runtimes.get(t.uid)
    if runtime is None or runtime.observed_generation < 0:
        return None
    owned = set(runtime.owned)
    workloads = recommendation_objects.owned_workloads(indexes, t.namespace, owned)
    resources = {w.ref: w.containers for w in workloads}
    acted = runtime.synced is None or runtime.synced != resources or runtime.acted
    if not (due or acted):
        return None
    runtime.acted = False
    have = recommendation_objects.existing(indexes, t.namespace)
    entries = object_entries(
        stored_entries(have, t.uid), runtime.last_actions,
        runtime.shown_states if apply_mode else None,
    )  # fmt: skip
    policy = PolicyRef(t.namespace, t.name, t.uid)
    objects = recommendation_objects.sync(memo, indexes, policy, t.spec, entries, t.now_s)
    return None if objects is None else overview(t.namespace, t.name, objects)


def _reconcile_and_apply(
    t: PolicyTick, memo: kopf.Memo, indexes: dict[str, Any], *, due: bool, apply_mode: bool
) -> dict[str, Any] | None:
    """The new status (None: nothing to change). Every failure ends in the status
    (``Ready=False``) and an Event, never in a log line alone."""
    try:
        view = NamespaceView.of(indexes, t.namespace)
        new_status: dict[str, Any] | None = None
        if due:
            new_status = _reconcile(t, memo, view)
        runtime: PolicyRuntime | None = memo.runtimes.get(t.uid)
        if due and runtime is not None:
            memo.pools.note(t.uid, hit_limit=runtime.source_problem in LIMIT_PROBLEMS)
        if apply_mode and runtime is not None and runtime.rows:
            new_status = _auto_apply(t, memo, view, runtime, new_status)
        return new_status
    except Exception:
        # The detail stays in the operator's own log: Kopf would post an exception's text
        # as an Event, where the policy's author reads it.
        operator_log.exception(f"reconcile of {t.namespace}/{t.name} failed")
        runtime = memo.runtimes.get(t.uid)
        if runtime is not None:
            runtime.source_ok = False  # try again soon, not at the full interval
        return _failed_status(t)


def _failed_status(t: PolicyTick) -> dict[str, Any]:
    """``Ready=False ReconcileFailed``, with an Event when Ready was not already so."""
    previous = list(t.known.get("conditions") or [])
    ready, failed = names.ConditionType.READY, names.EventReason.RECONCILE_FAILED
    before: Mapping[str, Any] = next((c for c in previous if c.get("type") == ready), {})
    if before.get("status") != "False" or before.get("reason") != failed:
        kopf.event(t.body, type="Warning", reason=failed, message=RECONCILE_FAILED)
    conditions = merge_conditions(
        previous, [Condition(ready, False, failed, RECONCILE_FAILED)], t.now_s, t.generation
    )
    return {"observedGeneration": t.generation, "conditions": conditions}


def _write_status(memo: kopf.Memo, t: PolicyTick, new_status: Mapping[str, Any] | None) -> None:
    """Send the new status, with what an earlier tick could not send, when a person would
    see a difference or the heartbeat is due (``status/policy.py``); keep it unsent on any
    failure (an API outage), to try again at the next tick."""
    merged: dict[str, Any] = {**(memo.unsent.pop(t.uid, None) or {}), **(new_status or {})}
    pending = status_patch(t.status, merged, t.now_s) if merged else None
    if pending is None:
        return
    try:
        kube_writes.write_policy_status(memo.api, t.namespace, t.name, pending)
    except ApiException as exc:
        if exc.status == 404:  # the policy is gone
            return
        memo.unsent[t.uid] = pending
        operator_log.warning(
            f"status of {t.namespace}/{t.name} not written (HTTP {exc.status}); "
            "trying again at the next tick"
        )
    except Exception as exc:
        memo.unsent[t.uid] = pending
        operator_log.warning(
            f"status of {t.namespace}/{t.name} not written ({type(exc).__name__}); "
            "trying again at the next tick"
        )


def _reconcile(t: PolicyTick, memo: kopf.Memo, view: NamespaceView) -> dict[str, Any]:
    """Read usage, recommend, annotate, checkpoint; returns the new status."""
    api: client.ApiClient = memo.api
    runtime: PolicyRuntime | None = memo.runtimes.get(t.uid)
    policy = PolicyInfo(
        t.namespace, t.name, t.uid, str(t.meta.get("creationTimestamp", "")), dict(t.spec)
    )
    t0 = time.monotonic()
    given = ReconcileInput(
        policy=policy, generation=t.generation, previous_status=dict(t.known),
        workloads=view.workloads, limit_ranges=view.limit_ranges,
        others=view.of_kind("policies", t.namespace), now_s=t.now_s,
    )  # fmt: skip
    outcome, runtime = reconcile(given, runtime, _ports(memo, t.uid))
    if runtime is not None:
        memo.runtimes[t.uid] = runtime
        runtime.last_actions.update(outcome.last_actions)
        runtime.acted = runtime.acted or bool(outcome.last_actions)
    obs.RECONCILE_SECONDS.labels(t.namespace).observe(time.monotonic() - t0)
    obs.RECONCILES.labels(t.namespace, t.name).inc()
    if outcome.source_error:
        obs.SOURCE_ERRORS.labels("prometheus").inc()
    for workload, wanted in outcome.annotations:
        kube_writes.annotate(api, workload, wanted)
        obs.WRITES.labels("annotation").inc()
    if outcome.checkpoint is not None:
        _save_checkpoint(t, api, runtime, outcome.checkpoint)
    for event in outcome.events:
        _post(event, t.body)
    obs.publish(t.namespace, t.name, outcome.rows)
    t.logger.info(
        f"reconciled: {len(outcome.rows)} containers, read {outcome.window_read_s:.0f} s of history"
        + (f", source error: {outcome.source_error}" if outcome.source_error else "")
    )
    if outcome.invalid:
        t.logger.warning(f"invalid policy: {outcome.invalid}")
    return outcome.status


def _ports(memo: kopf.Memo, uid: str) -> Ports:
    """The reconcile's reads, all ending by the reconcile's deadline whatever servers do."""
    api: client.ApiClient = memo.api
    allowed: AllowList = memo.allowed_prometheus
    limits: SourceLimits = memo.limits
    read_deadline = time.monotonic() + limits.reconcile_deadline_s
    return Ports(
        prometheus=lambda src, ns: obs.timed_reader(
            "prometheus",
            prometheus_policy.open_history(api, src, ns, allowed, limits, read_deadline),
        ),
        metrics_poll=lambda ns: obs.timed("metrics-server", lambda: metrics_server.poll(api, ns)),
        load_checkpoint=lambda ns, cm: store.load(api, ns, cm, uid),
        live_pods=lambda ns: kubernetes_api.pod_names(api, ns),
    )


def _save_checkpoint(
    t: PolicyTick, api: client.ApiClient, runtime: PolicyRuntime | None,
    checkpoint: bytes,
) -> None:  # fmt: skip
    """Save it; a problem is logged, and posted as an Event when it is new."""
    cm = checkpoint_name(t.name)
    saved = store.save(api, t.namespace, cm, checkpoint, t.name, t.uid)
    problem = saved.problem(cm, len(checkpoint))
    if problem is not None:
        t.logger.warning(problem)
        if runtime is not None and runtime.checkpoint_problem != saved.value:
            kopf.event(
                t.body, type="Warning", reason=names.EventReason.CHECKPOINT_NOT_SAVED,
                message=problem,
            )  # fmt: skip
    if runtime is not None and saved is not store.SaveResult.CONFLICT:
        runtime.checkpoint_problem = saved.value if problem else None


def _post(event: Event, policy: kopf.Body) -> None:
    """Queue an Event (on its target, else on the policy) for Kopf to post at once."""
    target = cast(kopf.Body, dict(event.target)) if event.target else policy
    kopf.event(target, type=event.type, reason=event.reason, message=event.message[:1000])


def _events(api: client.ApiClient, namespace: str, reason: str) -> list[dict[str, Any]] | None:
    """The namespace's Events with ``reason``; None when they cannot be listed now."""
    try:
        return list(resources.events_of(api, namespace, reason))
    except Exception as exc:
        operator_log.warning(f"Events of {namespace} not listed ({type(exc).__name__})")
        return None


def _auto_apply(
    t: PolicyTick, memo: kopf.Memo, view: NamespaceView, runtime: PolicyRuntime,
    new_status: dict[str, Any] | None,
) -> dict[str, Any] | None:  # fmt: skip
    """Apply mode's pass; returns the status to write (None: nothing changed)."""
    try:
        update = parse_policy_spec(dict(t.spec)).update
    except PolicyError:
        return new_status
    settings = update.settings
    api: client.ApiClient = memo.api
    stored = stored_entries(recommendation_objects.existing(view.indexes, t.namespace), t.uid)
    previous_states = told_states(stored, runtime.apply_states)
    owned = set(runtime.owned)
    result = autoapply.apply_pass(
        autoapply.ApplyInput(
            policy=f"{t.namespace}/{t.name}", generation=t.generation, settings=settings,
            rows=runtime.rows, workloads=[w for w in view.workloads if w.ref in owned],
            namespace_labels=view.labels, hpas=view.of_kind("hpas", t.namespace),
            quotas=view.of_kind("resourcequotas", t.namespace), limit_ranges=view.limit_ranges,
            previous_states=previous_states, now_s=t.now_s, source_ok=runtime.source_ok,
            watch=memo.rollout_watch, replay_events=not runtime.events_replayed,
            method=update.method, in_place=update.in_place,
            resize_served=update.method != UpdateMethod.ROLLOUT and _resize_served(memo),
        ),
        ports=autoapply.ApplyPorts(
            write=lambda plan, redecide: resources.write(api, plan, redecide),
            pods=lambda ns: resources.pods_of(api, ns),
            event=lambda event: _post(event, t.body),
            events=lambda ns, reason: _events(api, ns, reason),
            annotate=lambda w, annotations, rv: kube_writes.annotate_checked(
                api, w, annotations, rv
            ),
            resize=lambda pod, resize: pod_writes.resize_pod(
                api, pod.namespace, pod.name, resize
            ),
            opted_in=lambda ns: kube_writes.namespace_opted_in(api, ns),
            hpa_read=lambda ns, name: hpa_info(hpa_writes.read_hpa(api, ns, name)),
            hpa_move=lambda hpa, changes, dry_run: hpa_writes.move_targets(
                api, hpa, changes, iso(t.now_s), dry_run
            ),
        ),
        pod_checks=runtime.pod_checks,
    )  # fmt: skip
    runtime.events_replayed = runtime.events_replayed or result.replayed
    runtime.apply_states.update(result.states)
    shown = runtime.shown_states or {}
    if {r: shown_state(e) for r, e in result.states.items()} != {
        r: shown_state(e) for r, e in shown.items()
    } or any(
        runtime.last_actions.get(ref) != action for ref, action in result.last_actions.items()
    ):
        runtime.acted = True
    runtime.shown_states = dict(result.states)
    runtime.last_actions.update(result.last_actions)
    for entry in result.states.values():
        if entry.get("state") == "Held":
            obs.SKIPS.labels(str(entry.get("reason"))).inc()
    obs.WRITES.labels("resources").inc(result.writes)
    if result.writes:
        t.logger.info(f"auto-apply: {result.writes} writes, {result.api_requests} API requests")
    if result.replayed_events:
        t.logger.info(f"auto-apply: posted {result.replayed_events} Events a restart had lost")
    if result.pods_resized:
        t.logger.info(f"auto-apply: {result.pods_resized} pods resized in place")
    conditions = [result.condition, *result.conditions]
    return status_after_pass(new_status, t.known, conditions, (t.now_s, t.generation))


#: How long the answer to "does the cluster serve pods/resize?" is kept.
RESIZE_DISCOVERY_TTL_S = 600.0


def _resize_served(memo: kopf.Memo) -> bool:
    """Whether the API server serves ``pods/resize``, asked at most every
    ``RESIZE_DISCOVERY_TTL_S`` (a failed discovery keeps the last answer, else False)."""
    known: tuple[float, bool] | None = getattr(memo, "resize_served", None)
    now = time.monotonic()
    if known is not None and now - known[0] < RESIZE_DISCOVERY_TTL_S:
        return known[1]
    try:
        served = pod_writes.serves_resize(memo.api)
    except Exception as exc:
        operator_log.warning(f"pods/resize discovery failed ({type(exc).__name__})")
        served = known[1] if known is not None else False
        memo.resize_served = (now - RESIZE_DISCOVERY_TTL_S + 30.0, served)  # again in 30 s
        return served
    memo.resize_served = (now, served)
    return served


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(namespace: str | None, name: str, uid: str, memo: kopf.Memo, **_: Any) -> None:
    _forget(memo, namespace or "", name, uid)


def _forget(memo: kopf.Memo, namespace: str, name: str, uid: str) -> None:
    memo.runtimes.pop(uid, None)
    memo.unsent.pop(uid, None)
    memo.liveness.forget(uid)
    memo.pools.forget(uid)
    obs.forget(namespace, name)


@kopf.on.cleanup()
def stop_pools(memo: kopf.Memo, **_: Any) -> None:
    pools: ReconcilePools | None = getattr(memo, "pools", None)
    if pools is not None:
        pools.shutdown()
    caches: Caches | None = getattr(memo, "caches", None)
    if caches is not None:
        caches.stop()


@kopf.on.probe(id="policies")
async def probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """Fails (HTTP 500 from ``/healthz``) when a valid policy is overdue; never hangs: it
    runs on the event loop, reads memory only, and any error of its own is final (Kopf
    would retry a probe's other errors after a minute, keeping ``/healthz`` waiting)."""
    try:
        runtimes: dict[str, PolicyRuntime | None] = getattr(memo, "runtimes", {})
        reconciled = [r.last_reconcile_s for r in list(runtimes.values()) if r is not None]
        liveness: Liveness | None = getattr(memo, "liveness", None)
        stale = liveness.stale(time.monotonic()) if liveness is not None else []
    except Exception as exc:
        raise kopf.PermanentError(f"the probe failed: {type(exc).__name__}") from None
    if stale:
        raise kopf.PermanentError(
            f"{len(stale)} policies have not reconciled for {STALE_INTERVALS:g} × their interval: "
            + ", ".join(stale[:10])
        )
    return {"policies": len(reconciled), "lastReconcile": max(reconciled, default=0.0)}
