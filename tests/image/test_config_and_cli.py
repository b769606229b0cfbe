"""Image config issues (root, secrets masked, curl|sh, copied keys, ports) and `kubestrata image
inventory` end to end: table and JSON, escaping of hostile strings, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kubestrata.cli.main import app
from kubestrata.image.config import config_issues, parse_config, runs_as_root
from kubestrata.image.model import ImageConfig
from tests.image import images
from tests.image.conftest import PASSWORD, USER, Registry
from tests.image.imagebuild import DEBIAN_OS_RELEASE, F, Image, Pusher, layer, write_layout

runner = CliRunner()
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN RSA PRIVATE KEY-----MIIEowIBAAKCAQEA"


def test_root_user_rules() -> None:
    assert [runs_as_root(u) for u in ("", "root", "0", "0:0", "root:wheel")] == [True] * 5
    assert [runs_as_root(u) for u in ("1000", "nobody", "65532:65532", "app")] == [False] * 4


def test_config_issues_and_masking() -> None:
    cfg = parse_config(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": "0",
                "Env": [
                    "PATH=/usr/local/bin:/usr/bin",
                    f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
                    "DB_PASSWORD=hunter2",
                    "PASSWORD_FILE=/run/secrets/db",  # a path, not a secret
                    "PWD=/app",
                    "AUTH_ENABLED=true",
                    "GITHUB_TOKEN=$GITHUB_TOKEN",  # a placeholder
                    "SOME_VALUE=AKIAIOSFODNN7EXAMPLE",  # an access key id by its value
                    f"TLS_KEY={PEM}",
                ],
                "ExposedPorts": {"443/tcp": {}, "8080/tcp": {}},
            },
            "history": [
                {"created_by": "/bin/sh -c #(nop) ADD file:1234 in / "},
                {"created_by": "RUN /bin/sh -c curl -fsSL https://get.example.com | bash"},
                {"created_by": "RUN /bin/sh -c wget -qO- https://x.example/i.sh | sudo sh"},
                {"created_by": "COPY id_rsa /root/.ssh/id_rsa # buildkit"},
                {"created_by": "/bin/sh -c #(nop) COPY file:abc in /etc/tls/server.pem "},
                {"created_by": "RUN /bin/sh -c curl -o /tmp/x https://example.com/x && sh /tmp/x.sh"},
                {
                    "created_by": "RUN /bin/sh -c git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r"
                },
            ],
        }
    )
    issues = config_issues(cfg)
    got = [(i.kind, i.field) for i in issues]
    assert got == [
        ("root-user", "config.User"),
        ("secret-env", "config.Env[AWS_SECRET_ACCESS_KEY]"),
        ("secret-env", "config.Env[DB_PASSWORD]"),
        ("secret-env", "config.Env[SOME_VALUE]"),
        ("secret-env", "config.Env[TLS_KEY]"),
        ("pipe-to-shell", "history[1]"),
        ("pipe-to-shell", "history[2]"),
        ("copied-key", "history[3]"),
        ("copied-key", "history[4]"),
        ("secret-in-history", "history[6]"),
        ("exposed-port", "config.ExposedPorts"),
        ("exposed-port", "config.ExposedPorts"),
    ]
    text = json.dumps([i.to_dict() for i in issues])
    for secret in (AWS_SECRET, "hunter2", "AKIAIOSFODNN7EXAMPLE", "MIIEowIBAAKCAQEA", "ghp_abcdefghij"):
        assert secret not in text
    assert "AWS_SECRET_ACCESS_KEY=<40 characters masked>" in text
    assert "access key id" in next(i.detail for i in issues if i.field == "config.Env[SOME_VALUE]")


def test_non_root_image_has_no_root_issue() -> None:
    assert config_issues(ImageConfig(user="1000")) == []


def test_cli_inventory_table_and_json(tmp_path: Path) -> None:
    img = images.full_image()
    write_layout(tmp_path / "lay", {"v1": img})
    r = runner.invoke(app, ["image", "inventory", f"oci:{tmp_path / 'lay'}:v1"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert (
        f"{len(images.FULL_EXPECTED)} packages" in r.stdout
        and "libssl3" in r.stdout
        and "openssl" in r.stdout
    )
    assert "pipe-to-shell" in r.stdout and "root-user" in r.stdout
    assert "ghp_" not in r.stdout  # GITHUB_TOKEN is masked

    r = runner.invoke(app, ["image", "inventory", f"oci:{tmp_path / 'lay'}:v1", "-o", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["digest"] == img.digest and doc["os"]["ID"] == "debian"
    assert {
        (p["ecosystem"], p["name"], p["version"], p["path"]) for p in doc["packages"]
    } == images.FULL_EXPECTED
    assert doc["config"]["env"]["GITHUB_TOKEN"] == "<40 characters masked>"
    assert {i["kind"] for i in doc["configIssues"]} == {
        "root-user",
        "secret-env",
        "pipe-to-shell",
        "exposed-port",
    }
    assert "ghp_" not in r.stdout


def test_cli_escapes_hostile_strings(tmp_path: Path) -> None:
    hostile = "evil\x1b[31mRED\x1b]8;;http://x\x07\u202e"
    status = f"Package: {hostile}\nVersion: 1.0\x1b[2J\nArchitecture: amd64\n".encode()
    img = Image(
        [layer([F("etc/os-release", DEBIAN_OS_RELEASE), F("var/lib/dpkg/status", status)])],
        config={"User": "app", "Env": [f"{hostile}=1"]},
        history=[f"RUN curl https://x | sh {hostile}"],
    )
    write_layout(tmp_path / "lay", {"h": img})
    for fmt in ("table", "json"):
        r = runner.invoke(
            app, ["image", "inventory", f"oci:{tmp_path / 'lay'}:h", "-o", fmt], env={"COLUMNS": "200"}
        )
        assert r.exit_code == 0, r.output
        assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "\x07" not in r.stdout
    assert (
        "evil\\x1b[31mRED" in runner.invoke(app, ["image", "inventory", f"oci:{tmp_path / 'lay'}:h"]).stdout
    )


def test_cli_unreadable_image_exits_2_with_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["image", "inventory", f"oci:{tmp_path / 'nothing-here'}"])
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: oci:") and "no such directory" in lines[0]


def test_cli_strict_fails_on_gaps(tmp_path: Path) -> None:
    write_layout(tmp_path / "lay", {"w": images.wiped_image()})
    r = runner.invoke(app, ["image", "inventory", f"oci:{tmp_path / 'lay'}:w"])
    assert r.exit_code == 0 and "missing-input" in r.stdout
    r = runner.invoke(app, ["image", "inventory", f"oci:{tmp_path / 'lay'}:w", "--strict"])
    assert r.exit_code == 2 and "could not be read" in r.stderr


def test_cli_registry_credentials_from_stdin(token_registry: Registry) -> None:
    Pusher(token_registry.url, USER, PASSWORD).image("private/cli", "1", images.alpine_image())
    ref = f"{token_registry.host}/private/cli:1"
    r = runner.invoke(
        app,
        [
            "image",
            "inventory",
            ref,
            "--insecure-registry",
            "--username",
            USER,
            "--password-stdin",
            "-o",
            "json",
        ],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    assert {p["name"] for p in json.loads(r.stdout)["packages"]} == {"musl", "libcrypto3"}
    r = runner.invoke(
        app,
        ["image", "inventory", ref, "--insecure-registry", "--username", USER],
        env={"KUBESTRATA_REGISTRY_PASSWORD": PASSWORD},
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["image", "inventory", ref, "--insecure-registry"])
    assert r.exit_code == 2 and "unauthorised" in r.stderr


def test_cli_uses_docker_login_credentials(basic_registry: Registry, tmp_path: Path, monkeypatch) -> None:
    import base64

    Pusher(basic_registry.url, USER, PASSWORD).image("dockercfg/app", "1", images.alpine_image())
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {f"http://{basic_registry.host}/v2/": {"auth": auth}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    r = runner.invoke(
        app,
        ["image", "inventory", f"{basic_registry.host}/dockercfg/app:1", "--insecure-registry", "-o", "json"],
    )
    assert r.exit_code == 0, r.output
    assert {p["name"] for p in json.loads(r.stdout)["packages"]} == {"musl", "libcrypto3"}


def test_named_user_is_its_own_issue() -> None:
    assert [i.kind for i in config_issues(ImageConfig(user="app"))] == ["non-numeric-user"]
    assert [i.kind for i in config_issues(ImageConfig(user="app:1000"))] == ["non-numeric-user"]
    assert config_issues(ImageConfig(user="1000:1000")) == []
