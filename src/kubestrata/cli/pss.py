"""`kubestrata pss`: Pod Security Admission's decisions offline (check) and what would break (what-if)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer

from kubestrata.cli import options
from kubestrata.cli.common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    error_line,
    exit_with,
    handle_errors,
    write_output,
)
from kubestrata.cli.deprecations import warn
from kubestrata.cli.inputs import Input, ManifestStream, load_input, require_complete
from kubestrata.cli.progress import stage
from kubestrata.config import load_config
from kubestrata.errors import KubestrataError
from kubestrata.kube.cluster import Cluster
from kubestrata.kube.podspec import WORKLOAD_KINDS
from kubestrata.pss.api import LATEST, Level, LevelVersion, NamespacePolicy, Policy, parse_version_strict
from kubestrata.pss.checks import CHECKS
from kubestrata.pss.config import PodSecurityConfig, load_pod_security_configuration
from kubestrata.pss.evaluate import Memo, ObjectResult, evaluate_object
from kubestrata.pss.registry import bulk, checks_for, effective_minor
from kubestrata.pss.whatif import rollout, version_bump, what_if_label
from kubestrata.report import pss as report

app = typer.Typer(
    rich_markup_mode=None,
    help="Pod Security Standards: PSA's exact decisions and messages at any level and version, offline.",
    no_args_is_help=True,
)


class Fmt(StrEnum):
    TABLE = "table"
    JSON = "json"


def _json(doc: Any) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def _load(
    paths: list[str] | None,
    cluster: bool,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    timeout: float,
    quiet: bool = False,
) -> Input:
    return load_input(
        paths, cluster=cluster, context=context, kubeconfig=kubeconfig, namespace=namespace,
        timeout=timeout, quiet=quiet,
    )  # fmt: skip


def _config(config_file: str | None, pss_configuration: str | None) -> PodSecurityConfig:
    """The PodSecurityConfiguration: --pss-configuration, else the kubestrata config's
    scan.pss_configuration. A PodSecurityConfiguration given to -c (its meaning before 0.2) is still
    read, with a deprecation line."""
    if pss_configuration:
        return load_pod_security_configuration(pss_configuration)
    if config_file and _is_pod_security_configuration(config_file):
        warn("--config PodSecurityConfiguration", "--pss-configuration", "pss")
        return load_pod_security_configuration(config_file)
    cfg = load_config(config_file)
    if cfg.scan.pss_configuration:
        return load_pod_security_configuration(cfg.scan.pss_configuration)
    return PodSecurityConfig()


def _is_pod_security_configuration(path: str) -> bool:
    try:
        head = Path(path).read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "PodSecurityConfiguration" in head or "AdmissionConfiguration" in head


# shared options
PATHS = typer.Argument(None, help="Manifest files or directories; - reads stdin.", metavar="PATH")
CLUSTER = options.cluster("Read pods and workloads from the live cluster (kubeconfig).")
CONTEXT = options.context()
KUBECONFIG = options.kubeconfig()
TIMEOUT = options.timeout()
CONFIG = options.config()
PSS_CONFIGURATION = typer.Option(
    None,
    "--pss-configuration",
    metavar="PATH",
    help="PodSecurityConfiguration file: defaults and exemptions, as the API server has them "
    "(default: scan.pss_configuration of the kubestrata config).",
)
OUTPUT = options.output(Fmt.TABLE, "table or json.")
OUTPUT_FILE = options.output_file()
QUIET = options.quiet()
STRICT = options.strict()


def _policy_version(help: str, default: str | None = None) -> Any:  # a typer.Option
    return typer.Option(default, "--policy-version", help=help, metavar="VERSION")


@app.command("check")
@handle_errors
def check(
    paths: list[str] = PATHS,
    level: str = typer.Option(
        None,
        "--level",
        "-l",
        help="Evaluate every object at this level (privileged, baseline, restricted, or level:version). "
        "Without it each object gets its namespace's policy from the Namespace labels in the input.",
    ),
    version: str = _policy_version("Policy version with --level: latest or v1.N."),
    namespace: str = options.namespace("Only this namespace."),
    username: str = typer.Option(None, "--username", help="Requesting user, for the usernames exemption."),
    fixes: bool = typer.Option(
        False,
        "--fixes",
        help="Also give each denied object's combined fix patch (verified by re-evaluation; computed "
        "once per distinct pod template). Each violation's own fix is always given.",
    ),
    config_file: str = CONFIG,
    pss_configuration: str = PSS_CONFIGURATION,
    output: Fmt = OUTPUT,
    output_file: str = OUTPUT_FILE,
    cluster: bool = CLUSTER,
    context: str = CONTEXT,
    kubeconfig: str = KUBECONFIG,
    timeout: float = TIMEOUT,
    strict: bool = STRICT,
    quiet: bool = QUIET,
) -> None:
    """Evaluate pods and workload controllers as Pod Security Admission would. Exit 1 when a pod is
    denied or a controller's pods would be, 2 on an invalid pod spec (or, with --strict, an unreadable
    document).

    Example: kubestrata pss check examples/demo-cluster --level restricted"""
    cfg = _config(config_file, pss_configuration)
    forced: LevelVersion | None = None
    if level is not None:
        forced = LevelVersion.parse(level)
        if version is not None:
            forced = LevelVersion(forced.level, parse_version_strict(version))
    elif version is not None:
        raise KubestrataError("--policy-version needs --level")
    with bulk():  # loading and evaluating allocate only acyclic objects: no GC passes over them
        tally = _Tally()
        if forced is not None and not cluster:
            # one level for every object: no namespace labels to gather first, so judge and write
            # the input one file at a time instead of holding all of it
            # the checks never read status: JSON List files are read without building it
            stream = ManifestStream(paths, namespace=namespace, quiet=quiet, skim=True)
            with stage("evaluating pods", quiet=quiet):
                results = tally.count(_check_stream(stream, forced, cfg, username))
                if output is Fmt.JSON and output_file and output_file != "-":
                    _write_batches(report.json_batches(results, fixes), output_file)
                else:
                    _write_pieces(
                        report.json_list(results, fixes)
                        if output is Fmt.JSON
                        else report.check_table_pieces(results, fixes),
                        output_file,
                    )
            coverage = stream.coverage
        else:
            inp = _load(paths, cluster, context, kubeconfig, namespace, timeout, quiet)
            with stage("evaluating pods", quiet=quiet):
                held = _check_all(inp.cluster, forced, cfg, username)
            pieces = (
                report.json_list(tally.count(held), fixes)
                if output is Fmt.JSON
                else report.check_table_pieces(tally.count(held), fixes)
            )
            _write_pieces(pieces, output_file)
            coverage = inp.coverage
            # free the snapshot while the collector is off: re-enabled over it, its first pass would
            # walk every object of the input once more
            del inp, held
        for line in tally.invalid:
            error_line(line)
        n_invalid = len(tally.invalid)
        denied = tally.denied
    if n_invalid:
        exit_with(EXIT_ERROR, f"{n_invalid} object{'s' if n_invalid != 1 else ''} with an invalid pod spec")
    require_complete(coverage, strict)
    if denied:
        exit_with(
            EXIT_FINDINGS, f"{denied} object{'s' if denied != 1 else ''} denied (or with pods that would be)"
        )
    raise typer.Exit(EXIT_OK)


class _Tally:
    """What the exit status needs, counted as the results go by to the renderer."""

    def __init__(self) -> None:
        self.invalid: list[str] = []
        self.denied = 0

    def count(self, results: Iterable[ObjectResult]) -> Iterator[ObjectResult]:
        for r in results:
            if r.error is not None:
                self.invalid.append(f"{r.obj.source}: {r.obj.kind} {r.obj.name}: invalid pod spec: {r.error}")
            if not r.pods_allowed:
                self.denied += 1
            yield r


def _check_stream(
    stream: ManifestStream, forced: LevelVersion, cfg: PodSecurityConfig, username: str | None
) -> Iterator[ObjectResult]:
    memo = Memo()
    policy = NamespacePolicy(Policy(forced, forced, forced))
    for objs in stream:
        for obj in objs:
            if obj.kind in WORKLOAD_KINDS:
                r = evaluate_object(obj, policy, exemptions=cfg.exemptions, username=username, memo=memo)
                if r is not None:
                    yield r


def _write_pieces(pieces: Iterable[str], output_file: str | None) -> None:
    """Write the pieces as they come; the file is opened at the first piece, so an input that turns
    out to be unusable (an error raised before any output) leaves no file behind."""
    if output_file and output_file != "-":
        fh = None
        try:
            for piece in pieces:
                if fh is None:
                    fh = open(output_file, "w", encoding="utf-8")  # noqa: SIM115 - closed below
                fh.write(piece)
        except OSError as e:
            raise KubestrataError(f"cannot write {output_file}: {e.strerror or e}") from None
        finally:
            if fh is not None:
                fh.close()
        return
    for piece in pieces:
        write_output(piece, None)


def _write_batches(batches: Iterable[list[bytes]], output_file: str) -> None:
    """_write_pieces for a file, from batches of UTF-8 pieces handed to the system as they are
    (os.writev: a replica's shared entry is never copied into a batch string nor encoded)."""
    fd = -1
    try:
        for batch in batches:
            if fd < 0:
                fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            _writev_all(fd, batch)
    except OSError as e:
        raise KubestrataError(f"cannot write {output_file}: {e.strerror or e}") from None
    finally:
        if fd >= 0:
            os.close(fd)


_IOV_MAX = 1024  # POSIX's minimum for IOV_MAX is 16, Linux and the BSDs have 1024


def _writev_all(fd: int, pieces: list[bytes]) -> None:
    if not hasattr(os, "writev"):  # pragma: no cover - Windows
        os.write(fd, b"".join(pieces))  # a short write is not possible on a regular file there
        return
    views: list[Any] = list(pieces)
    while views:
        chunk = views[:_IOV_MAX]
        n = os.writev(fd, chunk)
        if n == sum(map(len, chunk)):  # the usual case: all of it
            views = views[_IOV_MAX:]
            continue
        i = 0
        while i < len(views) and n >= len(views[i]):  # drop what was written, keep a part's rest
            n -= len(views[i])
            i += 1
        views = views[i:]
        if n:
            views[0] = memoryview(views[0])[n:]


def _check_all(
    snap: Cluster, forced: LevelVersion | None, cfg: PodSecurityConfig, username: str | None
) -> list[ObjectResult]:
    results: list[ObjectResult] = []
    policies: dict[str, NamespacePolicy] = {}
    memo = Memo()  # replicas of one pod template are evaluated once
    forced_policy = NamespacePolicy(Policy(forced, forced, forced)) if forced is not None else None
    pol: NamespacePolicy | None
    for obj in snap.real_objects():
        if obj.kind not in WORKLOAD_KINDS:
            continue
        if forced_policy is not None:
            pol = forced_policy
        else:
            pol = policies.get(obj.namespace)
            if pol is None:
                pol = policies[obj.namespace] = NamespacePolicy.from_labels(
                    snap.namespace_labels(obj.namespace), cfg.defaults
                )
        r = evaluate_object(obj, pol, exemptions=cfg.exemptions, username=username, memo=memo)
        if r is not None:
            results.append(r)
    return results


@app.command("checks")
@handle_errors
def list_checks(
    level: str = typer.Option(
        "restricted", "--level", "-l", help="baseline or restricted (or level:version)."
    ),
    version: str = _policy_version("latest or v1.N (default latest)."),
    output: Fmt = OUTPUT,
) -> None:
    """The checks PSA runs at a level and version, in message order, with the variant chosen.

    Example: kubestrata pss checks --level baseline --policy-version v1.30"""
    lv = LevelVersion.parse(level)
    if version is not None:
        lv = LevelVersion(lv.level, parse_version_strict(version))
    minor = effective_minor(lv.version)
    rows = []
    for cid, _fn in checks_for(lv.level, lv.version):
        cdef = next(c for c in CHECKS if c.id == cid)
        var = [v for v in cdef.variants if v.minimum_minor <= minor][-1]
        rows.append(
            {
                "check": cid,
                "level": cdef.level.value,
                "variant": f"v1.{var.minimum_minor}",
                "since": f"v1.{cdef.variants[0].minimum_minor}",
                "overrides": list(var.overrides),
            }
        )
    if output is Fmt.JSON:
        write_output(_json({"policy": str(lv), "evaluatedAs": f"v1.{minor}", "checks": rows}), None)
        return
    lines = [f"{lv} runs the v1.{minor} checks:"]
    for r in rows:
        extra = f"  (overrides {', '.join(r['overrides'])})" if r["overrides"] else ""
        lines.append(
            f"  {r['check']:<28} {r['level']:<10} variant {r['variant']:<6} since {r['since']}{extra}"
        )
    write_output("\n".join(lines) + "\n", None)


@app.command("what-if")
@handle_errors
def what_if(
    paths: list[str] = PATHS,
    namespace: str = options.namespace("The namespace to label."),
    all_namespaces: bool = options.all_namespaces(),
    enforce: str = typer.Option(
        None,
        "--enforce",
        help="Proposed enforce label: restricted, baseline or level:v1.N (e.g. restricted:v1.30).",
    ),
    version: str = _policy_version("Policy version for the rollout view.", "latest"),
    bump_from: str = typer.Option(None, "--from", help="Version-bump preview: the current version (v1.N)."),
    bump_to: str = typer.Option(None, "--to", help="Version-bump preview: the new version (v1.N or latest)."),
    level: str = typer.Option(
        None,
        "--level",
        "-l",
        help="Level for the version-bump preview (default: each namespace's enforce level).",
    ),
    fixes: bool = typer.Option(
        False, "--fixes", help="Include fix patches for one denied pod per owner (json)."
    ),
    config_file: str = CONFIG,
    pss_configuration: str = PSS_CONFIGURATION,
    output: Fmt = OUTPUT,
    output_file: str = OUTPUT_FILE,
    cluster: bool = CLUSTER,
    context: str = CONTEXT,
    kubeconfig: str = KUBECONFIG,
    timeout: float = TIMEOUT,
    quiet: bool = QUIET,
) -> None:
    """What breaks before you label: --namespace NS --enforce L[:V] (or -A --enforce ...) lists the
    pods and workloads that would be denied, grouped by owner; -A alone gives the rollout view
    (denials per namespace at baseline and restricted); --from/--to previews a version bump.
    Exit 1 when the proposed change would deny something.

    Examples: kubestrata pss what-if -A examples/demo-cluster;
    kubestrata pss what-if examples/demo-cluster -n shop --enforce restricted"""
    cfg = _config(config_file, pss_configuration)
    if (bump_from is None) != (bump_to is None):
        raise KubestrataError("--from and --to go together")
    if namespace and all_namespaces:
        raise KubestrataError("give --namespace or --all-namespaces, not both")
    scope = None if all_namespaces else namespace
    if bump_from is not None:
        old, new = parse_version_strict(bump_from), parse_version_strict(bump_to or "")
        lvl = LevelVersion.parse(level).level if level else None
        snap = _load(paths, cluster, context, kubeconfig, scope, timeout, quiet).cluster
        changes = version_bump(snap, old, new, lvl, cfg, scope)
        if output is Fmt.JSON:
            text = _json({"from": str(old), "to": str(new), "changes": [c.to_dict() for c in changes]})
        else:
            text = report.bump(changes, str(old), str(new))
        write_output(text, output_file)
        newly = sum(1 for c in changes if c.newly_denied)
        if newly:
            exit_with(EXIT_FINDINGS, f"{newly} object{'s' if newly != 1 else ''} newly denied at {new}")
        raise typer.Exit(EXIT_OK)
    if enforce is not None:
        if not namespace and not all_namespaces:
            raise KubestrataError("--enforce needs --namespace NS or --all-namespaces")
        lv = LevelVersion.parse(enforce)
        snap = _load(paths, cluster, context, kubeconfig, scope, timeout, quiet).cluster
        reports = what_if_label(snap, lv, scope, cfg, fixes)
        if output is Fmt.JSON:
            doc: Any = [
                r.to_dict() | ({"fixes": {f"{g.kind}/{g.name}": g.fixes for g in r.groups}} if fixes else {})
                for r in reports
            ]
            text = _json(doc)
        else:
            text = report.what_if(reports)
        write_output(text, output_file)
        hit = [r.namespace for r in reports if r.pods_denied or r.controllers_denied]
        if hit:
            exit_with(
                EXIT_FINDINGS,
                f"enforce={lv} would deny pods or templates in {len(hit)} namespace(s): {', '.join(hit[:5])}",
            )
        raise typer.Exit(EXIT_OK)
    if not all_namespaces and not namespace:
        raise KubestrataError("give --namespace NS --enforce LEVEL, --all-namespaces, or --from/--to")
    ver = parse_version_strict(version) if version else LATEST
    snap = _load(paths, cluster, context, kubeconfig, scope, timeout, quiet).cluster
    rows = rollout(snap, ver, cfg, scope)
    if output is Fmt.JSON:
        text = _json({"version": str(ver), "namespaces": [r.to_dict() for r in rows]})
    else:
        text = report.rollout(rows, str(ver))
    write_output(text, output_file)
    raise typer.Exit(EXIT_OK)


__all__ = ["app", "Level"]
