"""The Pod Identity pod mutation: what the EKS Pod Identity webhook injects into pods whose service account
has an association (aws/amazon-eks-pod-identity-webhook pkg/containercredentials):

- in every container and init container, unless it already sets them:
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials`` and
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token``,
  and a read-only mount of the token volume at that directory;
- the projected volume ``eks-pod-identity-token``: a service-account token for audience
  ``pods.eks.amazonaws.com``, 86400 s, at path ``eks-pod-identity-token``.

Registered on ``kubestrata serve``'s /mutate through the admission handler registry.
"""

from __future__ import annotations

from typing import Any

from kubestrata.admission.registry import AdmissionContext, AdmissionRegistry, Outcome
from kubestrata.identity.agent import AUDIENCE, CREDENTIALS_URI, TOKEN_DIR, TOKEN_FILE
from kubestrata.identity.associations import Associations

VOLUME = "eks-pod-identity-token"
TOKEN_PATH = "eks-pod-identity-token"
EXPIRATION_SECONDS = 86400
ENV_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
ENV_TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"


def pod_patch(pod: dict[str, Any], *, uri: str = CREDENTIALS_URI) -> list[dict[str, Any]]:
    """The JSON patch that gives a pod spec the Pod Identity environment; [] when it has it already."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return []
    ops: list[dict[str, Any]] = []
    volumes = spec.get("volumes")
    has_volume = isinstance(volumes, list) and any(
        isinstance(v, dict) and v.get("name") == VOLUME for v in volumes
    )
    if not has_volume:
        vol = {
            "name": VOLUME,
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": AUDIENCE,
                            "expirationSeconds": EXPIRATION_SECONDS,
                            "path": TOKEN_PATH,
                        }
                    }
                ]
            },
        }
        if isinstance(volumes, list):
            ops.append({"op": "add", "path": "/spec/volumes/-", "value": vol})
        else:
            ops.append({"op": "add", "path": "/spec/volumes", "value": [vol]})
    for field in ("initContainers", "containers"):
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        for i, c in enumerate(containers):
            if not isinstance(c, dict):
                continue
            base = f"/spec/{field}/{i}"
            env = c.get("env")
            names = {e.get("name") for e in env if isinstance(e, dict)} if isinstance(env, list) else set()
            if ENV_URI in names or ENV_TOKEN in names:
                continue  # the container chose its own credentials: leave it alone
            new_env = [{"name": ENV_URI, "value": uri}, {"name": ENV_TOKEN, "value": TOKEN_FILE}]
            if isinstance(env, list):
                ops += [{"op": "add", "path": f"{base}/env/-", "value": e} for e in new_env]
            else:
                ops.append({"op": "add", "path": f"{base}/env", "value": new_env})
            mounts = c.get("volumeMounts")
            mount = {"name": VOLUME, "mountPath": TOKEN_DIR, "readOnly": True}
            if isinstance(mounts, list):
                if not any(isinstance(m, dict) and m.get("name") == VOLUME for m in mounts):
                    ops.append({"op": "add", "path": f"{base}/volumeMounts/-", "value": mount})
            else:
                ops.append({"op": "add", "path": f"{base}/volumeMounts", "value": [mount]})
    return ops


def add_pod_identity(
    registry: AdmissionRegistry, associations: Associations, *, uri: str = CREDENTIALS_URI
) -> None:
    """Inject the Pod Identity environment into new pods whose service account has an association."""

    @registry.mutating("pod-identity", engine="identity", operations=("CREATE",), kinds=("Pod",))
    def pod_identity(ctx: AdmissionContext, out: Outcome) -> None:
        req = ctx.request
        pod = req.object
        if req.sub_resource or not isinstance(pod, dict):
            return
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        namespace = req.namespace or str((pod.get("metadata") or {}).get("namespace") or "")
        sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        assoc = associations.get(namespace, sa)
        if assoc is None:
            return
        ops = pod_patch(pod, uri=uri)
        if ops:
            out.patch("pod-identity", ops)
            out.annotate("identity.kubestrata.io/pod-identity-role", assoc.target_role_arn or assoc.role_arn)
