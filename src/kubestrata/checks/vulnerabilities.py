"""Image contents tied to the workloads that run them (KS-IMG-004..010): vulnerabilities ranked by what
an attacker gains through the workload, images that run as root, secrets baked into image config.

Inputs (kubestrata.image.workloads): ``ImageScan`` documents in the input, scan.images.results
(imported Trivy/Grype/ECR/Inspector/SBOM results, also --image-results), and with scan.images.enabled
(--images) every workload image read once per digest and matched against the offline OSV database.
Without any of these the checks have nothing to judge and stay silent: images are opt-in. An image
that none of them covers is a coverage gap, never a clean image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kubestrata.checks.base import CheckContext, check, cluster_check
from kubestrata.findings import Evidence, Finding, GapReason, Layer, Severity
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, iter_containers, pod_template

APP = Layer.APPLICATION
REFS = {
    "nsa-cisa": ["Image scanning: scan images for vulnerabilities and misconfigurations"],
    "mitre": ["T1190 Exploit Public-Facing Application", "T1525 Implant Internal Image"],
    "cis-eks": ["5.1.1"],
}
MAX_WORKLOADS_NAMED = 10
SCAN_KIND = (
    "ImageScan"  # kubestrata.image.workloads.SCAN_KIND, named here so a scan without images imports nothing
)


def _data(ctx: CheckContext) -> Any:
    """The scan's ImageData, or None when images are not part of this scan."""

    def build() -> Any:
        cfg = ctx.config.images
        scan_objs = ctx.cluster.of_kind(SCAN_KIND)
        if not (cfg.enabled or cfg.results or scan_objs):
            return None  # images are opt-in: nothing imported for scans that do not ask
        from kubestrata.errors import InputError
        from kubestrata.image import workloads as wl

        docs, errors = wl.scan_documents(scan_objs)
        for e in errors:
            ctx.gap(e.split(":", 1)[0], GapReason.INVALID, e)
        db = None
        if cfg.enabled or cfg.results:
            from kubestrata.image.vulndb import DatabaseError, VulnDB, default_path

            try:
                db = VulnDB(cfg.db or default_path())
            except DatabaseError as e:
                if cfg.enabled or cfg.db:
                    ctx.gap("images: vulnerability database", GapReason.MISSING_INPUT, str(e))
        imported = []
        for path in cfg.results:
            from kubestrata.image.imports_match import load_results

            try:
                imported.extend(load_results([path], db))
            except InputError as e:
                ctx.gap(path, GapReason.INVALID, f"image results not read: {e}")
        inventorier = None
        if cfg.enabled:
            from kubestrata.image.seam import default_inventorier

            inventorier = ctx.memo("images.inventorier", default_inventorier)
        gaps: list[Any] = []
        data = wl.build(
            wl.image_uses(ctx.cluster),
            documents=docs,
            imported=imported,
            inventorier=inventorier,
            db=db,
            gaps=gaps,
        )
        for g in gaps:
            ctx.gap(g.subject, g.reason, g.detail)
        reported: set[int] = set()
        for rep in data.reports.values():
            if id(rep) in reported:
                continue
            reported.add(id(rep))
            for g in rep.gaps:
                ctx.gap(f"image {g.subject}", g.reason, g.detail)
        return data

    return ctx.memo("images.data", build)


def _gains(ctx: CheckContext) -> Any:
    from kubestrata.image.workloads import GainIndex

    return ctx.memo("images.gains", lambda: GainIndex(ctx))


def _uses(ctx: CheckContext) -> Any:
    from kubestrata.image.workloads import image_uses

    return ctx.memo("images.uses", lambda: image_uses(ctx.cluster))


def _groups(ctx: CheckContext, data: Any) -> list[tuple[Any, list[str], list[Any]]]:
    """(report, image references, uses) per distinct image: references that resolve to one report
    (a tag and a digest of the same image) are one image, so one fact is one finding."""
    groups: dict[int, tuple[Any, list[str], list[Any]]] = {}
    for image, uses in sorted(_uses(ctx).items()):
        rep = data.report_for(image)
        if rep is None:
            continue
        g = groups.setdefault(id(rep), (rep, [], []))
        g[1].append(image)
        g[2].extend(uses)
    return list(groups.values())


def _workloads(uses: list[Any], gains: Any) -> tuple[list[Any], list[Any], str]:
    ranked = sorted(uses, key=lambda u: (-gains.gain(u).score, str(u.obj.ref), u.container))
    use_gains = [gains.gain(u) for u in ranked]
    named = [
        f"{u.obj.kind} {u.obj.namespace + '/' if u.obj.namespace else ''}{u.obj.name} (container {u.container}"
        + ("; " + "; ".join(g.words()) if g.words() else "")
        + ")"
        for u, g in zip(ranked[:MAX_WORKLOADS_NAMED], use_gains, strict=False)
    ]
    more = len(ranked) - MAX_WORKLOADS_NAMED
    return ranked, use_gains, ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _vuln_findings(ctx: CheckContext, meta: Any, want_critical_fix: bool) -> Iterator[Finding]:
    data = _data(ctx)
    if data is None:
        return
    from kubestrata.image.workloads import rank

    floor = Severity(ctx.config.images.min_severity)
    gains = _gains(ctx)
    for rep, images, uses in _groups(ctx, data):
        wanted = [
            v
            for v in rep.vulns
            if (v.severity is Severity.CRITICAL and v.fix_available) == want_critical_fix
            and v.severity.rank >= floor.rank
        ]
        if not wanted:
            continue
        ranked, use_gains, named = _workloads(uses, gains)
        first = ranked[0]
        label = " = ".join(images)
        others = [
            Evidence(f"{u.path}.image", f"{u.obj.kind} {u.obj.namespace}/{u.obj.name}", None)
            for u in ranked[1:MAX_WORKLOADS_NAMED]
        ]
        for v in wanted:
            sev = rank(v.severity, use_gains)
            fix = f"fixed in {' or '.join(v.fixed)}" if v.fixed else "no fixed version known"
            raised = (
                f"; raised from {v.severity.value} by what the workload exposes"
                if sev is not v.severity
                else ""
            )
            yield meta.finding(
                first.obj,
                f"{v.id} in {v.package} {v.version} ({v.severity.value}"
                + (f", CVSS {v.score:.1f}" if v.score is not None else "")
                + f", {fix}; {v.source}) in image {label}{raised}; runs in {named}",
                severity=sev,
                container=first.container,
                evidence=[
                    Evidence(
                        f"{first.path}.image[{v.id}:{v.package}]",
                        {
                            "image": images[0],
                            "digest": rep.digest or None,
                            "package": v.package,
                            "version": v.version,
                            "aliases": list(v.aliases),
                            "severitySource": v.severity_source,
                        },
                        {"fixed": list(v.fixed)} if v.fixed else "a version without the vulnerability",
                    ),
                    *others,
                ],
                fix_note="rebuild the image on a patched base or bump the package" if v.fixed else None,
            )


@cluster_check(
    "KS-IMG-006",
    "Critical vulnerability with a fix available in a running image",
    severity=Severity.CRITICAL,
    layer=APP,
    rationale="A critical vulnerability (CVSS 9.0+ or the advisory's own critical rating) that has a fixed "
    "version is the cheapest serious risk to remove: the fix exists, only a rebuild is missing. The "
    "finding names every workload running the image and what exploiting it hands over.",
    remediation="Rebuild the image with the fixed package version (or a patched base image) and roll the "
    "workloads named in the finding.",
    references=REFS,
)
def critical_with_fix(ctx: CheckContext) -> Iterator[Finding]:
    yield from _vuln_findings(ctx, critical_with_fix.meta, True)


@cluster_check(
    "KS-IMG-010",
    "Vulnerable package in a running image",
    severity=Severity.MEDIUM,
    layer=APP,
    rationale="A known vulnerability in an image is as serious as what an attacker gets by exploiting it "
    "where it runs: the severity is the advisory's, raised one level when a workload running the image "
    "is reachable from outside the cluster, and one more when that workload also runs privileged or "
    "with host access, carries an IAM role, or its ServiceAccount has a path to cluster-admin.",
    remediation="Update the package or the base image; until then reduce what the workload hands over "
    "(network policy, no privilege, narrower IAM role and RBAC).",
    references=REFS,
)
def vulnerable_image(ctx: CheckContext) -> Iterator[Finding]:
    yield from _vuln_findings(ctx, vulnerable_image.meta, False)


# -- image config ------------------------------------------------------------------------------------

_ROOT_USERS = {"", "0", "root", "0:0", "root:root", "root:0", "0:root"}


def _non_root_override(pod_sc: dict[str, Any], c_sc: dict[str, Any]) -> bool:
    for sc in (c_sc, pod_sc):  # the container's setting wins over the pod's
        user = sc.get("runAsUser")
        if isinstance(user, int) and not isinstance(user, bool):
            return user != 0
        if sc.get("runAsNonRoot") is True:
            return True
    return False


@check(
    "KS-IMG-004",
    "Image runs as root and the pod does not override it",
    severity=Severity.MEDIUM,
    layer=APP,
    kinds=WORKLOAD_KINDS,
    rationale="The image's config sets no USER (or USER root) and neither the pod nor the container sets "
    "runAsUser or runAsNonRoot: the process runs as UID 0, so a container escape or a writable host "
    "mount starts from root.",
    remediation="Set securityContext.runAsNonRoot: true and a runAsUser (for example 10001) on the pod or "
    "container, or build the image with a non-root USER.",
    references={"cis-eks": ["4.2.6"], "nsa-cisa": ["Non-root containers"], "mitre": ["T1611 Escape to Host"]},
)
def runs_as_root(obj: KubeObject, ctx: CheckContext) -> Iterator[Finding]:
    data = _data(ctx)
    tpl = pod_template(obj)
    if data is None or tpl is None:
        return
    pod_sc = tpl.spec.get("securityContext")
    if not isinstance(pod_sc, dict):
        pod_sc = {}
    if tpl.spec.get("hostUsers") is False:
        return  # a user namespace: UID 0 is not root on the node
    for c in iter_containers(tpl.spec, tpl.spec_path):
        image = c.container.get("image")
        if not isinstance(image, str):
            continue
        cfg = data.config_for(image)
        if cfg is None or cfg.user.strip() not in _ROOT_USERS:
            continue
        if _non_root_override(pod_sc, c.security_context or {}):
            continue
        yield runs_as_root.meta.finding(
            obj,
            f"container {c.name!r} runs image {image} whose config sets "
            + (f"USER {cfg.user}" if cfg.user else "no USER")
            + " (root), and neither the pod nor the container sets runAsNonRoot or runAsUser",
            container=c.name,
            evidence=[Evidence(f"{c.path}.securityContext.runAsNonRoot", None, True)],
            fix=[
                {
                    "op": "add",
                    "path": "/"
                    + c.path.replace(".", "/").replace("[", "/").replace("]", "")
                    + "/securityContext",
                    "value": {"runAsNonRoot": True, "runAsUser": 10001},
                }
            ]
            if not c.security_context
            else None,
            fix_note="the image must work as a non-root user",
        )


SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|AUTH)", re.IGNORECASE
)
SECRET_VALUE = [
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
    (re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"), "a Slack token"),
]
_NOT_SECRET = re.compile(r"^(|true|false|yes|no|none|null|0|1|\$\{.*\}|/.*|.*_FILE)$", re.IGNORECASE)


def secret_env(env: dict[str, str]) -> list[tuple[str, str]]:
    """(variable, why) for image ENV entries that look like secrets. Values are never returned."""
    out = []
    for k, v in sorted(env.items()):
        why = next((what for rx, what in SECRET_VALUE if rx.search(v)), "")
        if not why and SECRET_NAME.search(k) and not k.upper().endswith("_FILE") and not _NOT_SECRET.match(v):
            why = "a secret-looking name with a literal value"
        if why:
            out.append((k, why))
    return out


@cluster_check(
    "KS-IMG-005",
    "Secret in image config",
    severity=Severity.HIGH,
    layer=APP,
    rationale="ENV values are part of the image config: anyone who can pull the image (or read the "
    "pod's spec through the runtime) reads them, and they stay in every copy and layer cache of the "
    "image. A credential there is a leaked credential.",
    remediation="Remove the value from the Dockerfile (ENV/ARG), rotate the credential, and inject it at "
    "run time from a Secret, the Secrets Store CSI driver or the workload's IAM role.",
    references={
        "nsa-cisa": ["Secrets: do not store credentials in images"],
        "mitre": ["T1552.001 Credentials In Files"],
        "cis-eks": ["5.4.x"],
    },
)
def secrets_in_config(ctx: CheckContext) -> Iterator[Finding]:
    data = _data(ctx)
    if data is None:
        return
    for _rep, images, uses in _groups(ctx, data):
        cfg = next((c for c in (data.config_for(i) for i in images) if c is not None), None)
        if cfg is None:
            continue
        hits = secret_env(cfg.env)
        if not hits:
            continue
        first = uses[0]
        names = ", ".join(
            f"{u.obj.kind} {u.obj.namespace}/{u.obj.name}" for u in uses[:MAX_WORKLOADS_NAMED]
        ) + (f" and {len(uses) - MAX_WORKLOADS_NAMED} more" if len(uses) > MAX_WORKLOADS_NAMED else "")
        yield secrets_in_config.meta.finding(
            first.obj,
            f"image {' = '.join(images)} sets {', '.join(f'{k} ({why})' for k, why in hits)} in its config ENV; "
            f"it runs in {names}",
            container=first.container,
            evidence=[
                Evidence(
                    f"{first.path}.image[config.Env.{k}]", f"<redacted: {why}>", "no credential in the image"
                )
                for k, why in hits
            ],
        )
