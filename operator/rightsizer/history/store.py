"""Checkpoints in ConfigMaps owned by the policy (adapter: Kubernetes API I/O only).

Each ConfigMap carries an owner reference to its RightSizePolicy, so deleting the policy
lets Kubernetes' garbage collector remove it. The operator never touches a ConfigMap it
did not create: one is created only when absent, updated only when it carries this
policy's owner reference (uid match) and only at the ``resourceVersion`` just read. A
ConfigMap of the same name that is not ours is left alone and reported (``SaveResult``);
nor is its content ever read as a checkpoint.

Large checkpoints are split over several ConfigMaps (``parts.py``).
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rightsizer.history import parts
from rightsizer.names import CHECKPOINT_DIGEST_ANNOTATION as DIGEST_ANNOTATION
from rightsizer.names import CHECKPOINT_PARTS_ANNOTATION as PARTS_ANNOTATION

KEY = "checkpoints.json.gz"
OWNER_API_VERSION, OWNER_KIND = "rightsizer.dev/v1alpha1", "RightSizePolicy"


class SaveResult(enum.Enum):
    SAVED = "Saved"
    NOT_OWNED = "NotOwned"
    """A ConfigMap of that name exists and is not ours: left untouched."""
    CONFLICT = "Conflict"
    """It changed (or appeared) between our read and our write: try again next time."""
    TOO_LARGE = "TooLarge"

    def problem(self, name: str, size_bytes: int) -> str | None:
        """A fixed message for the policy's Event and the log (None: nothing to report)."""
        if self is SaveResult.NOT_OWNED:
            return (
                f"checkpoint not saved: ConfigMap {name} (or one of its parts) exists and is "
                "not owned by this policy; it was left untouched. Rename or remove it."
            )
        if self is SaveResult.TOO_LARGE:
            limit = parts.PART_BYTES * parts.MAX_PARTS
            return f"checkpoint not saved: {size_bytes} bytes is more than the {limit} allowed"
        return None


def _owned(cm: Any, owner_uid: str) -> bool:
    refs = (cm.metadata.owner_references if cm.metadata else None) or []
    return any(r.uid == owner_uid and r.kind == OWNER_KIND for r in refs)


def _read(core: client.CoreV1Api, namespace: str, name: str) -> Any | None:
    try:
        return core.read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _data(cm: Any) -> bytes:
    raw = (cm.binary_data or {}).get(KEY)
    return base64.b64decode(raw) if raw else b""


def load(api: ApiClient, namespace: str, name: str, owner_uid: str) -> bytes | None:
    """The policy's checkpoint; None when absent, not ours, or its parts do not agree."""
    core = client.CoreV1Api(api)
    head = _read(core, namespace, name)
    if head is None or not _owned(head, owner_uid):
        return None
    annotations = head.metadata.annotations or {}
    try:
        count = int(annotations.get(PARTS_ANNOTATION, "1"))
    except ValueError:
        return None
    if not 1 <= count <= parts.MAX_PARTS:
        return None
    pieces = [_data(head)]
    for i in range(1, count):
        cm = _read(core, namespace, parts.part_name(name, i))
        if cm is None or not _owned(cm, owner_uid):
            return None
        pieces.append(_data(cm))
    blob = parts.join(pieces, annotations.get(DIGEST_ANNOTATION))
    return blob or None


@dataclass(frozen=True)
class _PolicyConfigMaps:
    """The ConfigMaps of one policy's checkpoint, in its namespace, owned by it."""

    core: client.CoreV1Api
    namespace: str
    owner_name: str
    owner_uid: str

    def read(self, name: str) -> Any | None:
        return _read(self.core, self.namespace, name)

    def owned(self, cm: Any) -> bool:
        return _owned(cm, self.owner_uid)

    def body(
        self, existing: Any | None, name: str, piece: bytes, annotations: dict[str, str]
    ) -> client.V1ConfigMap:
        """Our ConfigMap; an existing one's other labels and annotations are kept."""
        meta = existing.metadata if existing is not None else None
        labels = dict((meta.labels if meta else None) or {})
        labels["app.kubernetes.io/managed-by"] = "rightsizer"
        merged = dict((meta.annotations if meta else None) or {})
        merged.pop(PARTS_ANNOTATION, None)
        merged.pop(DIGEST_ANNOTATION, None)
        merged.update(annotations)
        owner = client.V1OwnerReference(
            api_version=OWNER_API_VERSION, kind=OWNER_KIND, name=self.owner_name,
            uid=self.owner_uid, controller=True, block_owner_deletion=False,
        )  # fmt: skip
        return client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=self.namespace,
                labels=labels,
                annotations=merged or None,
                resource_version=meta.resource_version if meta else None,
                owner_references=[owner],
            ),
            binary_data={KEY: base64.b64encode(piece).decode()},
        )

    def write(
        self, existing: Any | None, name: str, piece: bytes, annotations: dict[str, str]
    ) -> SaveResult:
        """Create when absent; else update ours at the resourceVersion read (never blind)."""
        if existing is not None and not self.owned(existing):
            return SaveResult.NOT_OWNED
        body = self.body(existing, name, piece, annotations)
        try:
            if existing is None:
                self.core.create_namespaced_config_map(self.namespace, body)
            else:
                self.core.replace_namespaced_config_map(name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # created meanwhile, or changed since our read
                return SaveResult.CONFLICT
            raise
        return SaveResult.SAVED


def save(
    api: ApiClient, namespace: str, name: str, blob: bytes, owner_name: str, owner_uid: str
) -> SaveResult:
    """Write the checkpoint: extra parts first, the head (part 0, with the part count and
    digest) last, then empty the parts a larger checkpoint had used."""
    pieces = parts.split(blob)
    if len(pieces) > parts.MAX_PARTS:
        return SaveResult.TOO_LARGE
    maps = _PolicyConfigMaps(client.CoreV1Api(api), namespace, owner_name, owner_uid)
    head = maps.read(name)
    if head is not None and not maps.owned(head):
        return SaveResult.NOT_OWNED
    try:
        before = int(((head.metadata.annotations or {}) if head else {}).get(PARTS_ANNOTATION, 1))
    except ValueError:
        before = 1
    for i, piece in enumerate(pieces[1:], start=1):
        part = parts.part_name(name, i)
        result = maps.write(maps.read(part), part, piece, {})
        if result is not SaveResult.SAVED:
            return result
    head_annotations = {
        PARTS_ANNOTATION: str(len(pieces)),
        DIGEST_ANNOTATION: parts.digest(blob),
    }
    result = maps.write(head, name, pieces[0], head_annotations)
    if result is not SaveResult.SAVED:
        return result
    # The operator may not delete (RBAC): parts no longer counted are emptied instead.
    for i in range(len(pieces), min(before, parts.MAX_PARTS)):
        part = parts.part_name(name, i)
        stale = maps.read(part)
        if stale is not None and maps.owned(stale):
            maps.write(stale, part, b"", {})
    return SaveResult.SAVED
