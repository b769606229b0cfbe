"""The image config blob (OCI ``application/vnd.oci.image.config.v1+json`` or Docker's) as an
``ImageConfig``, and what in it is a risk, as data (``ConfigIssue``) for the scan's checks:

- ``root-user``: USER empty, ``root``, ``0`` or ``0:<gid>``
- ``non-numeric-user``: USER is a name (``app``): kubelet cannot check ``runAsNonRoot`` against a
  name and refuses to start such a container unless the pod sets ``runAsUser``
- ``secret-env``: an ENV whose name or value looks like a secret (the value is never kept in the
  issue: ``evidence`` is masked)
- ``pipe-to-shell``: a history step that downloads and pipes into a shell (``curl ... | sh``)
- ``copied-key``: a history ADD/COPY of a private key or keystore (``id_rsa``, ``*.pem``, ``*.key``)
- ``secret-in-history``: a history step whose command line holds a secret-looking value (masked)
- ``exposed-port``: each EXPOSE'd port (informational: the scan relates it to Services)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubestrata.image.model import ImageConfig

_SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)($|_)"
    r"|^AWS_SECRET_ACCESS_KEY$|^AWS_SESSION_TOKEN$|SECRET|PASSWORD",
    re.IGNORECASE,
)
# names that match the pattern but hold no secret value
_NOT_SECRET_NAME = re.compile(r"(_FILE|_PATH|_DIR|_URL|_HOST|_PORT|_USER(NAME)?|_ID)$", re.IGNORECASE)
_SECRET_VALUE = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"),
    "private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "GitLab token": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Stripe key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
}
_PIPE_TO_SHELL = re.compile(
    r"\b(curl|wget|fetch)\b[^|;&]*\|\s*(sudo\s+)?(-?\w+=\S+\s+)*(ba|da|z|k|a)?sh\b"
    r"|\b(ba|z)?sh\s+(-c\s+)?[\"']?\$\(\s*(curl|wget)\b"
    r"|\b(ba|z)?sh\s+<\(\s*(curl|wget)\b",
    re.IGNORECASE,
)
_COPY_STEP = re.compile(r"^\s*(/bin/sh -c )?#\(nop\)\s*(ADD|COPY)\b|^\s*(ADD|COPY)\b", re.IGNORECASE)
_KEY_FILE = re.compile(
    r"(^|[/\s:])(id_(rsa|dsa|ecdsa|ed25519)|[\w.-]+\.(pem|key|p12|pfx|jks|keystore)|\.npmrc|\.netrc|\.pypirc"
    r"|credentials|\.git-credentials)(\s|$|\")",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    kind: str  # root-user | non-numeric-user | secret-env | pipe-to-shell | copied-key | secret-in-history | exposed-port
    field: (
        str  # where: "config.User", "config.Env[AWS_SECRET_ACCESS_KEY]", "history[3]", "config.ExposedPorts"
    )
    detail: str  # says why; never holds a secret value
    evidence: str = (
        ""  # the offending text, secrets masked (history lines are attacker-controlled: escape on output)
    )

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "field": self.field, "detail": self.detail, "evidence": self.evidence}


def parse_config(doc: Any) -> ImageConfig:
    """ImageConfig from a parsed config blob; missing or mistyped fields are left empty."""
    if not isinstance(doc, dict):
        return ImageConfig()
    raw = doc.get("config")
    cfg: dict[str, Any] = raw if isinstance(raw, dict) else {}
    env: dict[str, str] = {}
    for item in _strings(cfg.get("Env")):
        name, _, value = item.partition("=")
        env[name] = value
    history = [str(h.get("created_by", "")) for h in doc.get("history") or [] if isinstance(h, dict)]
    ports = cfg.get("ExposedPorts")
    labels = cfg.get("Labels")
    return ImageConfig(
        user=str(cfg.get("User") or ""),
        env=env,
        exposed_ports=sorted(str(p) for p in ports) if isinstance(ports, dict) else [],
        history=history,
        entrypoint=_strings(cfg.get("Entrypoint")),
        cmd=_strings(cfg.get("Cmd")),
        os=str(doc.get("os") or ""),
        architecture=str(doc.get("architecture") or ""),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    )


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def runs_as_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")


def secret_kind(name: str, value: str) -> str | None:
    """Why an ENV looks like a secret ("name" or the value pattern's label), or None."""
    for label, pattern in _SECRET_VALUE.items():
        if pattern.search(value):
            return label
    if _SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name) and _could_be_secret(value):
        return "name"
    return None


def _could_be_secret(value: str) -> bool:
    # a flag, a placeholder or a path under a secret-sounding name holds no secret
    v = value.strip()
    return (
        len(v) >= 4
        and v.lower() not in ("true", "false", "none", "null", "changeme")
        and not v.startswith(("/", "$", "file:", "http://", "https://"))
    )


def mask(value: str) -> str:
    """A secret shown as its length only: never a prefix, which for short secrets is most of them."""
    return f"<{len(value)} characters masked>" if value else ""


def mask_secrets(text: str) -> str:
    """The text with every secret-looking value pattern replaced (for history lines and env)."""
    for pattern in _SECRET_VALUE.values():
        text = pattern.sub(lambda m: mask(m.group()), text)
    return text


def masked_env(config: ImageConfig) -> dict[str, str]:
    """ENV for display: values that look like secrets are masked."""
    return {k: mask(v) if secret_kind(k, v) else v for k, v in config.env.items()}


def config_issues(config: ImageConfig) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    if runs_as_root(config.user):
        shown = config.user or "(unset)"
        out.append(
            ConfigIssue("root-user", "config.User", f"the image runs as root (USER {shown})", config.user)
        )
    elif not config.user.split(":", 1)[0].strip().isdigit():
        out.append(
            ConfigIssue(
                "non-numeric-user",
                "config.User",
                "USER is a name, not a UID: with runAsNonRoot the kubelet cannot verify it and will not "
                "start the container unless the pod sets runAsUser",
                config.user,
            )
        )
    for name, value in config.env.items():
        why = secret_kind(name, value)
        if why:
            detail = (
                f"ENV {name} looks like a secret by its name"
                if why == "name"
                else f"ENV {name} holds what looks like a {why}"
            )
            out.append(ConfigIssue("secret-env", f"config.Env[{name}]", detail, f"{name}={mask(value)}"))
    for i, step in enumerate(config.history):
        if _PIPE_TO_SHELL.search(step):
            out.append(
                ConfigIssue(
                    "pipe-to-shell",
                    f"history[{i}]",
                    "a build step downloads a script and runs it unverified",
                    mask_secrets(step[:300]),
                )
            )
        if _COPY_STEP.search(step) and _KEY_FILE.search(step):
            out.append(
                ConfigIssue(
                    "copied-key",
                    f"history[{i}]",
                    "a build step copies a private key or credentials file into the image",
                    mask_secrets(step[:300]),
                )
            )
        elif any(p.search(step) for p in _SECRET_VALUE.values()):
            out.append(
                ConfigIssue(
                    "secret-in-history",
                    f"history[{i}]",
                    "a build step's command line holds what looks like a secret",
                    mask_secrets(step[:300]),
                )
            )
    for port in config.exposed_ports:
        out.append(ConfigIssue("exposed-port", "config.ExposedPorts", f"the image exposes {port}", port))
    return out
