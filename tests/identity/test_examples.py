"""examples/identity/README.md, step by step: the commands it shows produce the outputs it shows."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kubestrata.server.config import load_serve_config

REPO = Path(__file__).resolve().parents[2]
EX = REPO / "examples" / "identity"
README = (EX / "README.md").read_text()
ISSUER = "https://oidc.demo.example/clusters/demo"


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e["PYTHONPATH"] = str(REPO / "src")
    e.update(extra)
    return e


def kubestrata(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubestrata", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        **kw,
    )


def shown_after(command_start: str) -> list[str]:
    """The output lines the README shows after the command starting with ``command_start``."""
    lines = README.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("$ " + command_start))
    while lines[i].endswith("\\"):
        i += 1
    out = []
    for line in lines[i + 1 :]:
        if line.startswith("$ ") or line.startswith("```"):
            break
        out.append(line)
    return out


def test_step1_trust_lint_findings():
    r = kubestrata(
        "scan",
        "examples/identity/cluster",
        "--include",
        "KS-IDN-*",
        "-o",
        "json",
        "--fail-on",
        "low",
        env=env(),
    )
    assert r.returncode == 1, r.stderr
    got = [f"{f['ruleId']} {f['severity']}" for f in json.loads(r.stdout)["findings"]]
    assert got == shown_after("kubestrata scan examples/identity/cluster")


def test_step2_oidc_documents_equal_the_expected_ones(tmp_path):
    r = kubestrata(
        "identity", "oidc", "--issuer", ISSUER, "--signing-key", "examples/identity/sa-signing.pub",
        "--write", str(tmp_path), env=env(),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [p.replace(str(tmp_path), "/tmp/oidc") for p in r.stdout.split()] == shown_after(
        "kubestrata identity oidc"
    )
    for rel in (".well-known/openid-configuration", "keys"):
        assert (tmp_path / rel).read_text() == (EX / "expected" / "oidc" / rel).read_text()


@pytest.fixture(scope="module")
def agent(moto):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestrata", "identity", "agent", "--cluster-name", "demo",
         "--associations", "examples/identity/associations.yaml",
         "--signing-key", "examples/identity/sa-signing.pub", "--issuer", ISSUER,
         "--host", "127.0.0.1", "--port", str(port), "--allowed-host", "127.0.0.1",
         "--sts-endpoint", moto.url, "--region", "us-east-1"],
        cwd=REPO, env=env(AWS_ACCESS_KEY_ID="node", AWS_SECRET_ACCESS_KEY="node"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(proc.stdout.read()[-2000:])
        time.sleep(0.2)
    yield url, port
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    banner = shown_after("AWS_ACCESS_KEY_ID=node")[0].replace("8080", str(port))
    assert banner in out


def mint(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, str(EX / "mint_token.py"), *args],
        capture_output=True,
        text=True,
        env=env(),
        check=True,
    )
    return r.stdout.strip()


def test_step3_boto3_gets_credentials_through_the_agent(agent, moto, tmp_path):
    url, _ = agent
    (tmp_path / "token").write_text(mint("shop", "billing", "checkout-1"))
    script = re.search(r"python -c '(.+)'", README).group(1).replace("http://127.0.0.1:5000", moto.url)
    r = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(
            AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{url}/v1/credentials",
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(tmp_path / "token"),
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        ),
    )
    assert r.returncode == 0, r.stderr
    shown = shown_after("AWS_CONTAINER_CREDENTIALS_FULL_URI")[0]
    assert re.fullmatch(re.escape(shown).replace(re.escape("<uuid>"), "[0-9a-f-]{36}"), r.stdout.strip())


def test_step3_errors_as_shown(agent):
    url, _ = agent
    r = httpx.get(f"{url}/v1/credentials", headers={"Authorization": mint("shop", "nobody", "p")})
    body, code = shown_after("curl -s -w ' %{http_code}\\n' -H \"Authorization: $(python")
    assert r.text == body + "\n" and r.status_code == int(code)
    r = httpx.get(
        f"{url}/v1/credentials",
        headers={"Host": "169.254.170.2", "Authorization": mint("shop", "billing", "p")},
    )
    body, code = shown_after("curl -s -w ' %{http_code}\\n' -H \"Host: 169.254.170.2\"")
    assert r.text == body + "\n" and r.status_code == int(code)


def test_step4_config_loads_and_token_has_the_shown_shape():
    cfg = load_serve_config(EX / "kubestrata.yaml").serve.identity
    assert cfg.authenticate.cluster_id == "demo" and cfg.pod_identity.associations
    r = kubestrata(
        "identity", "token", "--cluster-id", "demo",
        env=env(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    shown = json.loads(shown_after("kubestrata identity token")[0])
    assert doc.keys() == shown.keys() and doc["status"].keys() == shown["status"].keys()
    assert doc["status"]["token"].startswith("k8s-aws-v1.")
