"""Mint a pod-bound service-account token the way the kube-apiserver does (projected, audience
pods.eks.amazonaws.com), signed with this example's demo key. For the walkthrough only: in a cluster the
kubelet writes this token into the pod.

    python examples/identity/mint_token.py NAMESPACE SERVICEACCOUNT POD > token
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

from kubestrata.identity import jwt

ISSUER = "https://oidc.demo.example/clusters/demo"


def main() -> None:
    namespace, service_account, pod = sys.argv[1:4]
    key = jwt.load_private_key((Path(__file__).parent / "sa-signing.key").read_bytes())
    now = int(time.time())
    claims = {
        "aud": ["pods.eks.amazonaws.com"],
        "exp": now + 86400,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": pod, "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
        },
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
    }
    print(jwt.sign(claims, key))


if __name__ == "__main__":
    main()
