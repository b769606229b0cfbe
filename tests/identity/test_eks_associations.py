"""Associations from the EKS API through boto3 (list, paginated, then describe each): moto has no Pod
Identity API, so a loopback stand-in answers the two REST calls in the EKS wire format."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from kubestrata.errors import KubestrataError
from kubestrata.identity.associations import load_eks

ACCOUNT = "111122223333"
FULL = {
    f"a-{i}": {
        "clusterName": "demo",
        "namespace": "shop",
        "serviceAccount": f"sa-{i}",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/r-{i}",
        "associationArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/demo/a-{i}",
        "associationId": f"a-{i}",
        "tags": {},
        "createdAt": 1767225600.0,
        "modifiedAt": 1767225600.0,
        "disableSessionTags": i == 2,
        **(
            {"targetRoleArn": f"arn:aws:iam::444455556666:role/t-{i}", "externalId": "ext-1"}
            if i == 1
            else {}
        ),
    }
    for i in range(3)
}


@pytest.fixture(scope="module")
def eks_api():
    seen: list[str] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            u = urlsplit(self.path)
            parts = u.path.strip("/").split("/")
            if parts[:3] != ["clusters", "demo", "pod-identity-associations"]:
                body, code = {"message": "No cluster found for name: " + parts[1]}, 404
                self.send_response(code)
                self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
            elif len(parts) == 3:  # list: one summary per page, summaries carry no roleArn
                q = parse_qs(u.query)
                start = int(q.get("nextToken", ["0"])[0])
                ids = sorted(FULL)
                a = FULL[ids[start]]
                keep = ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId")
                body = {"associations": [{k: a[k] for k in keep}]}
                if start + 1 < len(ids):
                    body["nextToken"] = str(start + 1)
                self.send_response(200)
            else:
                body = {"association": FULL[parts[3]]}
                self.send_response(200)
            data = json.dumps(body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()


def session():
    return boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")


def test_list_then_describe_every_association(eks_api):
    url, seen = eks_api
    got = load_eks("demo", endpoint_url=url, session=session())
    assert len(got) == 3
    a1 = got.get("shop", "sa-1")
    assert (
        a1.role_arn.endswith("role/r-1")
        and a1.target_role_arn.endswith("role/t-1")
        and a1.external_id == "ext-1"
    )
    assert got.get("shop", "sa-2").disable_session_tags is True
    assert sum("nextToken" in p for p in seen) == 2  # paginated


def test_unknown_cluster_is_one_line(eks_api):
    url, _ = eks_api
    with pytest.raises(KubestrataError, match="EKS list/describe-pod-identity-association for nope"):
        load_eks("nope", endpoint_url=url, session=session())
