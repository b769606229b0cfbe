"""`kubestrata netpol`: who can talk to whom, why, what is exposed and what a change opens."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from kubestrata.cli import options
from kubestrata.cli.common import EXIT_FINDINGS, EXIT_OK, exit_with, handle_errors, warning_line, write_output
from kubestrata.cli.inputs import load_input
from kubestrata.cli.progress import stage
from kubestrata.errors import KubestrataError

if TYPE_CHECKING:
    from kubestrata.netpol.engine import Network, Options

app = typer.Typer(
    rich_markup_mode=None,
    help="Network reachability from NetworkPolicy, Admin/Baseline/Cluster network policies and AWS "
    "SecurityGroupPolicy: list, eval, explain, diff, coverage.",
    no_args_is_help=True,
)


class ListFormat(StrEnum):
    # table: np-guard's text grammar (SRC => DST : CONN), one connection a line
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MD = "md"
    DOT = "dot"


class DiffFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MD = "md"


class Compat(StrEnum):
    NONE = "none"
    NP_GUARD = "np-guard"


class HostNetwork(StrEnum):
    NODE = "node"
    POD = "pod"


PATHS = typer.Argument(None, help="Manifest files or directories; - reads stdin.", metavar="PATH")
CLUSTER = options.cluster()
CONTEXT = options.context()
KUBECONFIG = options.kubeconfig()
TIMEOUT = options.timeout()
COMPAT = typer.Option(
    Compat.NONE,
    "--compat",
    help="np-guard: np-guard/netpol-analyzer semantics (ipBlock never matches pods, IPv4 only, "
    "hostNetwork pods as pods).",
)
IPB = typer.Option(
    None,
    "--ipblock-matches-pods/--ipblock-external-only",
    help="Whether ipBlock peers match pod addresses (default: yes, as upstream e2e; np-guard: no).",
)
HOSTNET = typer.Option(
    None, "--hostnetwork", help="hostNetwork pods: node (node traffic, never selected; default) or pod."
)
AWS_STRICT = typer.Option(
    False, "--aws-strict", help="VPC CNI strict mode: pods no NetworkPolicy selects deny all traffic."
)
SG_FILE = typer.Option(
    None,
    "--security-groups",
    help="JSON of `aws ec2 describe-security-groups`: evaluate the rules of the groups that "
    "SecurityGroupPolicies give pods, as a second gate after network policies.",
)
INIT_PORTS = typer.Option(False, "--include-init-ports", help="Resolve named ports in init containers too.")
OUTPUT_FILE = options.output_file()
QUIET = options.quiet()
TABLE_OR_JSON = options.output(options.TableOrJson.TABLE, "table or json.")


def _engine_format(output: StrEnum) -> str:
    return "txt" if output.value == "table" else output.value


def _options(
    compat: Compat, ipb: bool | None, hostnet: HostNetwork | None, aws_strict: bool, init_ports: bool
) -> Options:
    from kubestrata.netpol.engine import Options

    base = Options.np_guard() if compat is Compat.NP_GUARD else Options()
    return Options(
        ipblock_matches_pods=base.ipblock_matches_pods if ipb is None else ipb,
        hostnetwork=base.hostnetwork if hostnet is None else hostnet.value,
        aws_strict=aws_strict,
        include_init_ports=init_ports,
        ipv6=base.ipv6,
        same_priority=base.same_priority,
        resolve_owners=base.resolve_owners,
    )


def _network(
    paths: list[str] | None,
    cluster: bool,
    context: str | None,
    kubeconfig: str | None,
    timeout: float,
    opts: Options,
    quiet: bool,
    sg_file: str | None = None,
) -> Network:
    from kubestrata.netpol.engine import Network
    from kubestrata.netpol.securitygroups import load_security_groups

    groups = load_security_groups(sg_file) if sg_file else None

    snap = load_input(
        paths, cluster=cluster, context=context, kubeconfig=kubeconfig, timeout=timeout, quiet=quiet
    ).cluster
    with stage(f"computing reachability for {len(snap)} objects", quiet=quiet):
        net = Network(snap, opts, security_groups=groups)
    if not quiet:
        for g in net.gaps:
            warning_line(f"{g.detail} (left out of the analysis)")
        for w in net.warnings:
            warning_line(w)
    return net


@app.command("list")
@handle_errors
def list_cmd(
    paths: list[str] = PATHS,
    cluster: bool = CLUSTER,
    context: str = CONTEXT,
    kubeconfig: str = KUBECONFIG,
    timeout: float = TIMEOUT,
    output: ListFormat = options.output(
        ListFormat.TABLE, "table (SRC => DST : CONN lines), json, csv, md or dot."
    ),
    output_file: str = OUTPUT_FILE,
    compat: Compat = COMPAT,
    ipb: bool = IPB,
    hostnet: HostNetwork = HOSTNET,
    aws_strict: bool = AWS_STRICT,
    init_ports: bool = INIT_PORTS,
    sg_file: str = SG_FILE,
    quiet: bool = QUIET,
    max_pairs: int = typer.Option(
        None,
        "--max-pairs",
        min=0,
        metavar="N",
        help="Stop after N connections (the output stays well-formed; a note on stderr says so).",
    ),
) -> None:
    """Every allowed connection between workloads and external address ranges.

    Example: kubestrata netpol list examples/netpol/demo -o json"""
    import gc
    import itertools

    from kubestrata.netpol.connlist import iter_connections
    from kubestrata.report.netpol import iter_render_connections as render_iter

    gc.disable()  # millions of acyclic objects while loading: collections would only re-walk them
    net = _network(
        paths,
        cluster,
        context,
        kubeconfig,
        timeout,
        _options(compat, ipb, hostnet, aws_strict, init_ports),
        quiet,
        sg_file,
    )
    conns = iter_connections(net)
    if max_pairs is None:
        _stream(render_iter(conns, _engine_format(output), net), output_file)
        return
    _stream(render_iter(itertools.islice(conns, max_pairs), _engine_format(output), net), output_file)
    if next(conns, None) is not None and not quiet:
        warning_line(f"output stopped at {max_pairs} connections (--max-pairs)")


def _stream(pieces: Iterable[str], output_file: str | None) -> None:
    """Write text pieces as they come (the pairwise list is never held whole)."""
    from kubestrata.cli.common import printable

    if output_file and output_file != "-":
        try:
            with open(output_file, "w", encoding="utf-8") as fh:
                for piece in pieces:
                    fh.write(piece)
        except OSError as e:
            raise KubestrataError(f"cannot write {output_file}: {e.strerror or e}") from None
    else:
        for piece in pieces:
            sys.stdout.write(printable(piece, keep_lines=True))
        sys.stdout.flush()


SRC = typer.Option(None, "--source", "-s", help="Source workload or pod: ns/name, name or ns/name[Kind].")
DST = typer.Option(None, "--destination", "-d", help="Destination workload or pod.")
SRC_IP = typer.Option(None, "--source-ip", help="Source IP address (instead of --source).")
DST_IP = typer.Option(None, "--destination-ip", help="Destination IP address (instead of --destination).")


@app.command("eval")
@handle_errors
def eval_cmd(
    paths: list[str] = PATHS,
    source: str = SRC,
    destination: str = DST,
    source_ip: str = SRC_IP,
    destination_ip: str = DST_IP,
    port: int = typer.Option(
        None, "--destination-port", "-p", help="Destination port number (default: any).", metavar="PORT"
    ),
    protocol: str = typer.Option("TCP", "--protocol", help="TCP, UDP or SCTP."),
    cluster: bool = CLUSTER,
    context: str = CONTEXT,
    kubeconfig: str = KUBECONFIG,
    timeout: float = TIMEOUT,
    compat: Compat = COMPAT,
    ipb: bool = IPB,
    hostnet: HostNetwork = HOSTNET,
    aws_strict: bool = AWS_STRICT,
    init_ports: bool = INIT_PORTS,
    sg_file: str = SG_FILE,
    output: options.TableOrJson = TABLE_OR_JSON,
    fail: bool = typer.Option(False, "--fail", help="Exit 1 when the connection is denied."),
    quiet: bool = QUIET,
) -> None:
    """Is one connection allowed? Prints ``SRC => DST over tcp/80: true``.

    Example: kubestrata netpol eval examples/netpol/demo -s shop/web -d payments/api -p 7443"""
    from kubestrata.netpol.analysis import eval_connection, resolve_side

    if protocol.upper() not in ("TCP", "UDP", "SCTP"):
        raise KubestrataError(f"--protocol must be TCP, UDP or SCTP, got {protocol!r}")
    if port is not None and not 1 <= port <= 65535:
        raise KubestrataError(f"--destination-port must be in 1-65535, got {port}")
    net = _network(
        paths,
        cluster,
        context,
        kubeconfig,
        timeout,
        _options(compat, ipb, hostnet, aws_strict, init_ports),
        quiet,
        sg_file,
    )
    s, d = resolve_side(net, source, source_ip), resolve_side(net, destination, destination_ip)
    ok, ports = eval_connection(net, s, d, protocol, port)
    over = f"{protocol.lower()}/{port}" if port is not None else protocol.lower()
    if output is options.TableOrJson.JSON:
        doc = {
            "source": s.label,
            "destination": d.label,
            "protocol": protocol.upper(),
            "port": port,
            "allowed": ok,
            "allowedPorts": ports.to_json(),
        }
        write_output(json.dumps(doc) + "\n", None)
    else:
        write_output(f"{s.label} => {d.label} over {over}: {str(ok).lower()}\n", None)
    if fail and not ok:
        exit_with(EXIT_FINDINGS, f"{s.label} => {d.label} over {over} is denied (--fail)")
    raise typer.Exit(EXIT_OK)


@app.command("explain")
@handle_errors
def explain_cmd(
    paths: list[str] = PATHS,
    source: str = SRC,
    destination: str = DST,
    source_ip: str = SRC_IP,
    destination_ip: str = DST_IP,
    cluster: bool = CLUSTER,
    context: str = CONTEXT,
    kubeconfig: str = KUBECONFIG,
    timeout: float = TIMEOUT,
    compat: Compat = COMPAT,
    ipb: bool = IPB,
    hostnet: HostNetwork = HOSTNET,
    aws_strict: bool = AWS_STRICT,
    init_ports: bool = INIT_PORTS,
    sg_file: str = SG_FILE,
    quiet: bool = QUIET,
) -> None:
    """Why a connection is allowed or denied: which policies select each side and which rule decides,
    tier by tier (admin, NetworkPolicy, baseline, default).

    Example: kubestrata netpol explain examples/netpol/demo -s monitoring/prometheus -d payments/api"""
    from kubestrata.netpol.analysis import explain, resolve_side
    from kubestrata.report.netpol import render_explanation

    net = _network(
        paths,
        cluster,
        context,
        kubeconfig,
        timeout,
        _options(compat, ipb, hostnet, aws_strict, init_ports),
        quiet,
        sg_file,
    )
    s, d = resolve_side(net, source, source_ip), resolve_side(net, destination, destination_ip)
    if s.endpoint is None and d.endpoint is None:
        raise KubestrataError("at least one side must be a workload or pod")
    write_output(render_explanation(explain(net, s, d)), None)


@app.command("diff")
@handle_errors
def diff_cmd(
    dir1: str = typer.Argument(..., help="Manifests before the change."),
    dir2: str = typer.Argument(..., help="Manifests after the change."),
    output: DiffFormat = options.output(DiffFormat.TABLE, "table, json, csv or md."),
    output_file: str = OUTPUT_FILE,
    compat: Compat = COMPAT,
    ipb: bool = IPB,
    hostnet: HostNetwork = HOSTNET,
    aws_strict: bool = AWS_STRICT,
    init_ports: bool = INIT_PORTS,
    sg_file: str = SG_FILE,
    fail: bool = typer.Option(False, "--fail", help="Exit 1 when connectivity changed."),
    quiet: bool = QUIET,
) -> None:
    """What a change opens or closes: connections added, removed or changed between two manifest sets.

    Example: kubestrata netpol diff examples/netpol/demo examples/netpol/demo-change --fail"""
    from kubestrata.netpol.analysis import diff
    from kubestrata.netpol.connlist import connections
    from kubestrata.report.netpol import render_diff

    opts = _options(compat, ipb, hostnet, aws_strict, init_ports)
    a = connections(_network([dir1], False, None, None, 0, opts, quiet, sg_file))
    b = connections(_network([dir2], False, None, None, 0, opts, quiet, sg_file))
    entries = diff(a, b)
    write_output(render_diff(entries, _engine_format(output)), output_file)
    if fail and entries:
        exit_with(EXIT_FINDINGS, f"{len(entries)} connection(s) changed (--fail)")
    raise typer.Exit(EXIT_OK)


@app.command("coverage")
@handle_errors
def coverage_cmd(
    paths: list[str] = PATHS,
    cluster: bool = CLUSTER,
    context: str = CONTEXT,
    kubeconfig: str = KUBECONFIG,
    timeout: float = TIMEOUT,
    compat: Compat = COMPAT,
    ipb: bool = IPB,
    hostnet: HostNetwork = HOSTNET,
    aws_strict: bool = AWS_STRICT,
    init_ports: bool = INIT_PORTS,
    sg_file: str = SG_FILE,
    output: options.TableOrJson = TABLE_OR_JSON,
    output_file: str = OUTPUT_FILE,
    quiet: bool = QUIET,
) -> None:
    """Workloads no policy isolates, namespaces without default-deny, exposure to every namespace and
    to outside addresses, and policies left out as invalid.

    Example: kubestrata netpol coverage examples/netpol/demo -o json"""
    from kubestrata.netpol.analysis import coverage, exposure
    from kubestrata.report.netpol import render_coverage

    net = _network(
        paths,
        cluster,
        context,
        kubeconfig,
        timeout,
        _options(compat, ipb, hostnet, aws_strict, init_ports),
        True,
        sg_file,
    )
    rep = coverage(net)
    exp = exposure(net)
    fmt = "json" if output is options.TableOrJson.JSON else "table"
    write_output(render_coverage(rep, exp, fmt), output_file)
