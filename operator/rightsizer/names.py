"""The operator's public names, in one place: its API, the annotations and labels it reads
and writes, its condition types, Event reasons and hold reasons.

People and tools match on these (``kubectl get events --field-selector reason=…``,
alerts, GitOps ignore rules), so they change only with a new API version.
"""

from __future__ import annotations

from enum import StrEnum

# -- the API ------------------------------------------------------------------------------
GROUP = "rightsizer.dev"
VERSION = "v1alpha1"
POLICY_KIND = "RightSizePolicy"
POLICY_PLURAL = "rightsizepolicies"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/finalizer"
#: One per selected workload, in its namespace, owned by the policy that sizes it.
RECOMMENDATION_KIND = "RightSizeRecommendation"
RECOMMENDATION_PLURAL = "rightsizerecommendations"
#: Server-side apply's field manager for the resources Apply mode writes.
FIELD_MANAGER = "rightsizer"

# -- annotations and labels ---------------------------------------------------------------
#: On a workload (Annotate mode): the recommendation, JSON, and a one-line summary.
RECOMMENDATION_ANNOTATION = f"{GROUP}/recommendation"
SUMMARY_ANNOTATION = f"{GROUP}/summary"
#: On a workload (Apply mode): our last write, with the values before it.
RECORD_ANNOTATION = f"{GROUP}/last-applied"
#: On a workload (Apply mode, in-place methods): the requests and limits its pods are sized
#: to without touching the template, JSON (``docs/design.md``, "In-place resize"). The
#: in-place path writes it before resizing pods; the admission webhook gives new pods the
#: same values.
POD_RESOURCES_ANNOTATION = f"{GROUP}/pod-resources"
#: On a pod: what the admission webhook changed at its creation (as VPA's ``vpaUpdates``).
ADMISSION_ANNOTATION = f"{GROUP}/admission"
#: On a workload, set by its owners: ``"true"`` keeps Apply mode away.
EXCLUDE_ANNOTATION = f"{GROUP}/exclude"
#: On a namespace: ``enabled`` opts it in to Apply mode.
AUTO_APPLY_LABEL = f"{GROUP}/auto-apply"
AUTO_APPLY_ENABLED = "enabled"
#: On RightSizeRecommendations: the policy, and the workload's kind and name (label values
#: longer than 63 characters are cut and end in a short hash: ``status/recommendation.py``).
POLICY_LABEL = f"{GROUP}/policy"
WORKLOAD_KIND_LABEL = f"{GROUP}/workload-kind"
WORKLOAD_NAME_LABEL = f"{GROUP}/workload-name"
#: On checkpoint ConfigMaps: how many parts, and the digest of the whole.
CHECKPOINT_PARTS_ANNOTATION = f"{GROUP}/checkpoint-parts"
CHECKPOINT_DIGEST_ANNOTATION = f"{GROUP}/checkpoint-sha256"
#: The only type of Secret a policy's ``authSecretRef`` may name.
PROMETHEUS_AUTH_SECRET_TYPE = f"{GROUP}/prometheus-auth"


class ConditionType(StrEnum):
    """``status.conditions[].type`` of a RightSizePolicy."""

    READY = "Ready"
    RECOMMENDATIONS_AVAILABLE = "RecommendationsAvailable"
    SOURCE_UNAVAILABLE = "SourceUnavailable"
    INSUFFICIENT_DATA = "InsufficientData"
    CONFLICT = "Conflict"
    AUTO_APPLY_BLOCKED = "AutoApplyBlocked"
    IN_PLACE_RESIZE = "InPlaceResize"
    """Apply mode with an in-place method: whether the cluster serves ``pods/resize``
    (False: what the method falls back to, in the message)."""


class RecommendationState(StrEnum):
    """``status.state`` of a RightSizeRecommendation (the State column; Held adds its
    reason: ``Held (Cooldown)``)."""

    RECOMMENDED = "Recommended"
    ANNOTATED = "Annotated"
    APPLIED = "Applied"
    HELD = "Held"
    INSUFFICIENT_DATA = "InsufficientData"


class RecommendationConditionType(StrEnum):
    """``status.conditions[].type`` of a RightSizeRecommendation."""

    RECOMMENDATION_AVAILABLE = "RecommendationAvailable"


class EventReason(StrEnum):
    """Reasons of the Events the operator posts (besides one per hold reason)."""

    SOURCE_UNAVAILABLE = "SourceUnavailable"
    SOURCE_REFUSED = "SourceRefused"
    SOURCE_RECOVERED = "SourceRecovered"
    CONFLICT = "Conflict"
    RECOMMENDATION_ANNOTATED = "RecommendationAnnotated"
    INVALID_SPEC = "InvalidSpec"
    CHECKPOINT_NOT_SAVED = "CheckpointNotSaved"
    RECONCILE_FAILED = "ReconcileFailed"
    RESOURCES_APPLIED = "ResourcesApplied"
    ROLLOUT_FAILED = "RolloutFailed"
    PODS_RESIZED = "PodsResized"
    """Running pods of the workload resized in place (their names in the message)."""
    RESIZE_FAILED = "ResizeFailed"
    """A container OOM-killed after an in-place resize: the previous values are back."""
    HPA_TARGET_MOVED = "HpaTargetMoved"
    """On an HPA: its utilization target moved with the requests of the workload it scales
    (``hpaResources: Compensate``), or moved back with them."""


class HoldReason(StrEnum):
    """Why Apply mode leaves a workload as it is (a RightSizeRecommendation's
    ``status.autoApply.reason``, an Event each, ``rightsizer_skips_total{reason}``)."""

    EXCLUDED = "Excluded"
    GITOPS_MANAGED = "GitOpsManaged"
    HELD_AFTER_FAILED_ROLLOUT = "HeldAfterFailedRollout"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    COOLDOWN = "Cooldown"
    INSUFFICIENT_DATA = "InsufficientData"
    BELOW_MINIMUM_CHANGE = "BelowMinimumChange"
    LIMIT_RANGE_VIOLATION = "LimitRangeViolation"
    QUOTA_EXCEEDED = "QuotaExceeded"
    ROLLOUT_LIMIT = "RolloutLimit"
    APPLY_REJECTED = "ApplyRejected"
    REVERT_FAILED = "RevertFailed"
    SOURCE_UNAVAILABLE = "SourceUnavailable"
    IN_PLACE_UNAVAILABLE = "InPlaceUnavailable"
    """Method ``InPlace`` where the cluster does not serve ``pods/resize``."""
    RESIZE_INFEASIBLE = "ResizeInfeasible"
    """The kubelet answered ``PodResizePending`` ``Infeasible`` (or ``Deferred`` longer
    than the policy's bound), and the method allows no rollout (or the guardrails do not)."""
    RESIZE_ERROR = "ResizeError"
    """The kubelet answered ``PodResizeInProgress`` ``Error``."""
    QOS_CLASS_WOULD_CHANGE = "QoSClassWouldChange"
    """An in-place resize would change a pod's QoS class: not made."""
    RESIZING = "Resizing"
    """An in-place resize of ours is still going on (pods asked, not all in force)."""
    HPA_TARGET_OUT_OF_BOUNDS = "HpaTargetOutOfBounds"
    """``hpaResources: Compensate``: the HPA target that would keep its scale point falls
    outside ``hpaUtilizationBounds`` (or cannot be computed): that resource is held."""
    HPA_CHANGED = "HpaChanged"
    """The HPA's target moved while we were writing it: decided again at the next pass."""
