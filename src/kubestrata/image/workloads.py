"""Images tied to the workloads that run them, and what an attacker gains through each workload.

``ImageData`` is built once per scan: every image the workloads use, each distinct image read once
(inventory through the seam and matched against the offline database, or taken from imported scanner
results and ``ImageScan`` documents in the input), and for each workload the attacker's gain:

- privileged or host access (privileged container, host namespaces, hostPath volumes; the fields Pod
  Security's baseline judges);
- reachable from outside: a LoadBalancer or NodePort Service (or an Ingress backend Service) selects
  it and no network policy blocks ingress from outside the cluster (kubestrata.netpol exposure);
- an IAM role: the ServiceAccount's IRSA annotation or an EKS Pod Identity association;
- a path to cluster-admin from its ServiceAccount (kubestrata.access attack graph).

Engines here never render; checks/vulnerabilities.py turns this into findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubestrata.findings import CoverageGap, GapReason, Severity
from kubestrata.image.model import ImageConfig, ImageInventory
from kubestrata.image.vulns import ImageReport, ImageVuln
from kubestrata.kube.images import parse_image
from kubestrata.kube.objects import KubeObject
from kubestrata.kube.podspec import WORKLOAD_KINDS, pod_template

if TYPE_CHECKING:
    from kubestrata.checks.base import CheckContext
    from kubestrata.image.seam import Inventorier
    from kubestrata.image.vulndb import VulnDB

SCAN_KIND = "ImageScan"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


@dataclass(frozen=True)
class Use:
    """One container running an image."""

    obj: KubeObject
    container: str
    path: str  # field path of the container (spec.template.spec.containers[0])
    pod_spec: dict[str, Any]
    container_spec: dict[str, Any]


@dataclass
class Gain:
    """What an attacker who runs code in the workload gets."""

    privileged: list[str] = field(default_factory=list)  # "privileged container app", "hostPID", ...
    exposed: str = ""  # how it is reachable from outside ("" when it is not)
    iam_role: str = ""
    cluster_admin: str = ""  # the path's first step, when its ServiceAccount reaches cluster-admin

    @property
    def score(self) -> int:
        return (
            2 * bool(self.exposed)
            + bool(self.privileged)
            + bool(self.iam_role)
            + 2 * bool(self.cluster_admin)
        )

    def words(self) -> list[str]:
        out = []
        if self.exposed:
            out.append(f"reachable from outside ({self.exposed})")
        if self.privileged:
            out.append("privileged/host access (" + ", ".join(self.privileged) + ")")
        if self.iam_role:
            out.append(f"IAM role {self.iam_role}")
        if self.cluster_admin:
            out.append(f"its ServiceAccount reaches cluster-admin ({self.cluster_admin})")
        return out


def rank(base: Severity, gains: Iterable[Gain]) -> Severity:
    """The finding's severity: the vulnerability's, one level up when a workload running it is reachable
    from outside, one more when that workload also has privileged/host access, an IAM role or a path
    to cluster-admin (what exploiting it hands over). Low and info stay as they are: a low bug is not
    made urgent by where it runs."""
    if base.rank < Severity.MEDIUM.rank:
        return base
    best = 0
    for g in gains:
        steps = (1 if g.exposed else 0) + (
            1 if g.exposed and (g.privileged or g.iam_role or g.cluster_admin) else 0
        )
        if not g.exposed and (g.privileged or g.cluster_admin):
            steps = 1
        best = max(best, steps)
    order = list(Severity)
    return order[min(order.index(base) + best, len(order) - 1)]


# -- images used by workloads ------------------------------------------------------------------------


def image_uses(cluster: Any) -> dict[str, list[Use]]:
    """image reference -> the containers running it (controllers, not the pods they own)."""
    from kubestrata.errors import InputError
    from kubestrata.kube.podspec import iter_containers

    out: dict[str, list[Use]] = {}
    for obj in cluster.of_kind(*sorted(WORKLOAD_KINDS)):
        if cluster.controller_in_input(obj):
            continue
        try:
            tpl = pod_template(obj)
            if tpl is None:
                continue
            for c in iter_containers(tpl.spec, tpl.spec_path):
                image = c.container.get("image")
                if isinstance(image, str) and image:
                    out.setdefault(image, []).append(Use(obj, c.name, c.path, tpl.spec, c.container))
        except InputError:
            continue  # the scan reports the invalid pod spec
    return out


def _has_registry(reference: str) -> bool:
    first, sep, _ = reference.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def keys_of(reference: str, digest: str = "", *, report: bool = False) -> list[str]:
    """Lookup keys of an image: its digest, the reference as given, the canonical registry/repo:tag
    (docker.io/library/nginx:1.25 for nginx:1.25), and the registry-less repo:tag. A report is filed
    under the registry-less key only when its own reference names no registry (ECR and Inspector
    results name the repository alone), so images of two registries never share a report."""
    keys = []
    ref = parse_image(reference)
    if digest:
        keys.append(digest)
    if ref.digest:
        keys.append(ref.digest)
    keys.append(reference)
    if ref.tag:
        keys.append(f"{ref.registry}/{ref.repository}:{ref.tag}")
        if not report or not _has_registry(reference):
            keys.append(f"repo:{ref.repository.removeprefix('library/')}:{ref.tag}")
    return keys


# -- the reports of every image ------------------------------------------------------------------------


@dataclass
class ImageData:
    reports: dict[str, ImageReport] = field(default_factory=dict)  # by every key of keys_of
    configs: dict[str, ImageConfig] = field(default_factory=dict)
    inventoried: int = 0  # inventorier calls
    matched: int = 0  # distinct digests matched against the database

    def add(self, report: ImageReport, config: ImageConfig | None = None) -> None:
        for k in keys_of(report.reference, report.digest, report=True):
            prev = self.reports.get(k)
            if prev is None:
                self.reports[k] = report
            elif prev is not report:
                known = {(v.id, v.package, v.version) for v in prev.vulns}
                prev.vulns.extend(v for v in report.vulns if (v.id, v.package, v.version) not in known)
                prev.gaps.extend(g for g in report.gaps if g not in prev.gaps)
            if config is not None:
                self.configs.setdefault(k, config)

    def report_for(self, image: str) -> ImageReport | None:
        for k in keys_of(image):
            if k in self.reports:
                return self.reports[k]
        return None

    def config_for(self, image: str) -> ImageConfig | None:
        for k in keys_of(image):
            if k in self.configs:
                return self.configs[k]
        return None


def scan_documents(
    objs: Iterable[KubeObject],
) -> tuple[list[tuple[ImageReport, ImageConfig | None]], list[str]]:
    """``ImageScan`` documents (kubestrata.io/v1alpha1) in the input: an image's vulnerabilities and
    config as ``kubestrata image scan -o json`` prints them. Bad ones are named, not guessed."""
    out: list[tuple[ImageReport, ImageConfig | None]] = []
    errors: list[str] = []
    for o in objs:
        spec = o.raw.get("spec")
        where = f"{o.kind}/{o.name} ({o.source})"
        if not isinstance(spec, dict) or not isinstance(spec.get("image"), str):
            errors.append(f"{where}: spec.image is required")
            continue
        rep = ImageReport(spec["image"], str(spec.get("digest") or ""), source=str(o.source))
        try:
            for i, v in enumerate(spec.get("vulnerabilities") or []):
                if not isinstance(v, dict) or not v.get("id"):
                    raise ValueError(f"spec.vulnerabilities[{i}]: id is required")
                rep.vulns.append(
                    ImageVuln(
                        id=str(v["id"]),
                        package=str(v.get("package") or ""),
                        version=str(v.get("version") or ""),
                        ecosystem=str(v.get("ecosystem") or ""),
                        severity=Severity.parse(str(v.get("severity") or "medium")),
                        fixed=tuple(str(x) for x in v.get("fixed") or []),
                        aliases=tuple(str(x) for x in v.get("aliases") or []),
                        score=float(v["score"]) if v.get("score") is not None else None,
                        severity_source=str(v.get("severitySource") or "ImageScan document"),
                        summary=str(v.get("summary") or ""),
                        purl=str(v.get("purl") or ""),
                        source=str(v.get("source") or "ImageScan"),
                    )
                )
            cfg = None
            c = spec.get("config")
            if isinstance(c, dict):
                env = c.get("env") or {}
                if isinstance(env, list):  # the image config's own KEY=VALUE list
                    env = {k: v for k, _, v in (str(e).partition("=") for e in env)}
                cfg = ImageConfig(user=str(c.get("user") or ""), env={str(k): str(v) for k, v in env.items()})
        except (ValueError, TypeError) as e:
            errors.append(f"{where}: {e}")
            continue
        out.append((rep, cfg))
    return out, errors


def build(
    uses: dict[str, list[Use]],
    *,
    documents: Iterable[tuple[ImageReport, ImageConfig | None]] = (),
    imported: Iterable[ImageReport] = (),
    inventorier: Inventorier | None = None,
    db: VulnDB | None = None,
    gaps: list[CoverageGap] | None = None,
) -> ImageData:
    """Every workload image's report: from documents and imports first, else read (once per distinct
    reference) and matched (once per digest). Images nothing covers are gaps, never clean."""
    from kubestrata.image.matching import match

    data = ImageData()
    gaps = gaps if gaps is not None else []
    for rep, cfg in documents:
        data.add(rep, cfg)
    for rep in imported:
        data.add(rep)
    by_digest: dict[str, ImageReport] = {}
    for image in sorted(uses):
        if data.report_for(image) is not None:
            continue
        if inventorier is None or db is None:
            gaps.append(
                CoverageGap(
                    image,
                    GapReason.MISSING_INPUT,
                    "image not scanned: "
                    + (
                        "image reading is not available"
                        if inventorier is None
                        else "no vulnerability database"
                    )
                    + "; give --image-results (Trivy, Grype, ECR, Inspector, SBOM) or build the database",
                )
            )
            continue
        try:
            inv: ImageInventory = inventorier(image)
        except Exception as e:  # an unreachable registry, a broken archive: that image only
            gaps.append(CoverageGap(image, GapReason.ERROR, f"image not read: {e}"))
            continue
        data.inventoried += 1
        inv_digest = inv.digest or image
        report = by_digest.get(inv_digest)
        if report is None:
            report = match(inv, db)
            data.matched += 1
            by_digest[inv_digest] = report
        data.add(report, inv.config)
        for k in keys_of(image):
            data.reports.setdefault(k, report)
            data.configs.setdefault(k, inv.config)
    return data


# -- what a workload hands over -------------------------------------------------------------------------


def _privileged(use: Use) -> list[str]:
    spec, out = use.pod_spec, []
    for k in HOST_NAMESPACES:
        if spec.get(k) is True:
            out.append(k)
    if any(isinstance(v, dict) and "hostPath" in v for v in spec.get("volumes") or []):
        out.append("hostPath volume")
    from kubestrata.kube.podspec import iter_containers

    try:
        for c in iter_containers(spec):
            if (c.security_context or {}).get("privileged") is True:
                out.append(f"privileged container {c.name}")
    except Exception:  # an invalid spec is the scan's finding, not ours
        pass
    return out


def _selects(selector: Any, labels: dict[str, str]) -> bool:
    return (
        isinstance(selector, dict) and bool(selector) and all(labels.get(k) == v for k, v in selector.items())
    )


class GainIndex:
    """Gain per workload, computed lazily from the scan's shared engine data."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._cache: dict[int, Gain] = {}
        self._exposed_services: dict[str, list[tuple[dict[str, Any], str]]] | None = None
        self._admin: set[str] | None = None
        self._outside: dict[tuple[str, str, str], bool] | None = None

    def _services(self) -> dict[str, list[tuple[dict[str, Any], str]]]:
        """namespace -> (selector, how) of the Services reachable from outside the cluster."""
        if self._exposed_services is None:
            cl = self.ctx.cluster
            backends: set[tuple[str, str]] = set()
            for ing in cl.of_kind("Ingress"):
                for path in _ingress_backends(ing.raw.get("spec")):
                    backends.add((ing.namespace, path))
            out: dict[str, list[tuple[dict[str, Any], str]]] = {}
            for svc in cl.of_kind("Service"):
                spec = svc.raw.get("spec")
                if not isinstance(spec, dict):
                    spec = {}
                selector = spec.get("selector")
                if not isinstance(selector, dict) or not selector:
                    continue
                ns, typ = svc.namespace, spec.get("type")
                if typ in ("LoadBalancer", "NodePort"):
                    out.setdefault(ns, []).append((selector, f"Service {ns}/{svc.name} type {typ}"))
                elif (ns, svc.name) in backends:
                    out.setdefault(ns, []).append((selector, f"Ingress backend Service {ns}/{svc.name}"))
            self._exposed_services = out
        return self._exposed_services

    def _outside_allowed(self, obj: KubeObject) -> bool:
        """Network policies let connections from outside the cluster reach ``obj``'s pods."""
        if self._outside is None:
            try:
                from kubestrata.checks.network import _network
                from kubestrata.netpol.analysis import exposure

                net = _network(self.ctx)
                self._outside = {
                    (e.endpoint.namespace, e.endpoint.kind, e.endpoint.name): bool(e.ingress_outside)
                    for e in self.ctx.memo("images.exposure", lambda: exposure(net))
                }
            except Exception as e:  # the netpol engine refused the input: say so, assume reachable
                self.ctx.gap(
                    "images: network exposure", GapReason.ERROR, f"not evaluated ({e}); assumed reachable"
                )
                self._outside = {}
        return self._outside.get((obj.namespace, obj.kind, obj.name), True)

    def _admin_sas(self) -> set[str]:
        if self._admin is None:
            try:
                from kubestrata.checks.accesssupport import attack_graph

                nxt = attack_graph(self.ctx).shortest_to("cluster-admin")
                self._admin = {n for n in nxt if n.startswith("sa:")}
            except Exception as e:
                self.ctx.gap("images: cluster-admin paths", GapReason.ERROR, f"not evaluated: {e}")
                self._admin = set()
        return self._admin

    def gain(self, use: Use) -> Gain:
        key = id(use.obj)
        if key in self._cache:
            return self._cache[key]
        obj, spec = use.obj, use.pod_spec
        g = Gain(privileged=_privileged(use))
        tpl = pod_template(obj)
        labels = tpl.labels if tpl else {}
        ns = obj.namespace
        for selector, how in self._services().get(ns, ()):
            if _selects(selector, labels):
                if self._outside_allowed(obj):
                    g.exposed = how
                break
        if not g.exposed and spec.get("hostNetwork") is True and _has_ports(spec):
            g.exposed = "hostNetwork ports on the node"
        sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        sa_obj = self.ctx.cluster.get("ServiceAccount", ns, sa)
        if sa_obj is not None:
            role = (sa_obj.metadata.get("annotations") or {}).get(IRSA_ANNOTATION)
            if isinstance(role, str) and role:
                g.iam_role = f"{role} (IRSA)"
        if not g.iam_role:
            g.iam_role = self._pod_identity(ns, sa)
        if f"sa:{ns}/{sa}" in self._admin_sas():
            g.cluster_admin = f"ServiceAccount {ns}/{sa}"
        self._cache[key] = g
        return g

    def _pod_identity(self, ns: str, sa: str) -> str:
        from kubestrata.eks.model import SNAPSHOT_KIND
        from kubestrata.eks.objects import from_objects

        eks, _ = self.ctx.memo("eks.snapshot", lambda: from_objects(self.ctx.cluster.of_kind(SNAPSHOT_KIND)))
        for p in (eks.pod_identity if eks else []) or []:
            if p.namespace == ns and p.service_account == sa:
                return f"{p.role_arn} (Pod Identity)"
        for o in self.ctx.cluster.of_kind("PodIdentityAssociation"):
            spec = o.raw.get("spec") or {}
            if (
                o.namespace == ns
                and isinstance(spec, dict)
                and spec.get("serviceAccount") == sa
                and spec.get("roleArn")
            ):
                return f"{spec['roleArn']} (Pod Identity)"
        return ""


def _has_ports(spec: dict[str, Any]) -> bool:
    return any(isinstance(c, dict) and c.get("ports") for c in spec.get("containers") or [])


def _ingress_backends(spec: Any) -> Iterable[str]:
    if not isinstance(spec, dict):
        return
    default = ((spec.get("defaultBackend") or {}).get("service") or {}).get("name")
    if default:
        yield str(default)
    for rule in spec.get("rules") or []:
        for p in ((rule or {}).get("http") or {}).get("paths") or []:
            name = (((p or {}).get("backend") or {}).get("service") or {}).get("name")
            if name:
                yield str(name)
