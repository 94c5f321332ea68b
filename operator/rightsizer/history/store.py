"""Checkpoints in a ConfigMap owned by the policy (adapter: Kubernetes API I/O only).

The ConfigMap carries an owner reference to its RightSizePolicy, so deleting the policy
lets Kubernetes' garbage collector remove it.
"""

from __future__ import annotations

import base64

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

KEY = "checkpoints.json.gz"


def load(api: ApiClient, namespace: str, name: str) -> bytes | None:
    try:
        cm = client.CoreV1Api(api).read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = (cm.binary_data or {}).get(KEY)
    return base64.b64decode(data) if data else None


def save(
    api: ApiClient, namespace: str, name: str, blob: bytes, owner_name: str, owner_uid: str
) -> None:
    core = client.CoreV1Api(api)
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={"app.kubernetes.io/managed-by": "rightsizer"},
            owner_references=[
                client.V1OwnerReference(
                    api_version="rightsizer.dev/v1alpha1",
                    kind="RightSizePolicy",
                    name=owner_name,
                    uid=owner_uid,
                    controller=True,
                    block_owner_deletion=False,
                )
            ],
        ),
        binary_data={KEY: base64.b64encode(blob).decode()},
    )
    try:
        core.replace_namespaced_config_map(name, namespace, body)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_config_map(namespace, body)
