from __future__ import annotations

import copy
from typing import Any

RESTRICTED_CONTAINER_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod(
    spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None, **meta: Any
) -> dict[str, Any]:
    """A minimal restricted-compliant pod (as upstream's base fixture), with spec keys overridden."""
    base: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": meta.get("name", "p"), "namespace": meta.get("namespace", "default")},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [
                {"name": "init", "image": "i", "securityContext": copy.deepcopy(RESTRICTED_CONTAINER_SC)}
            ],
            "containers": [
                {"name": "app", "image": "a", "securityContext": copy.deepcopy(RESTRICTED_CONTAINER_SC)}
            ],
        },
    }
    if annotations:
        base["metadata"]["annotations"] = annotations
    for k, v in (spec or {}).items():
        if v is None:
            base["spec"].pop(k, None)
        else:
            base["spec"][k] = v
    return base
