"""`kubestrata serve` and `kubestrata certs`: the HTTPS webhook server."""

from __future__ import annotations

from pathlib import Path

import typer

from kubestrata.cli.common import err_console, handle_errors
from kubestrata.errors import KubestrataError


@handle_errors
def serve(
    tls_cert: Path = typer.Option(
        None, "--tls-cert", help="PEM serving certificate (reloaded when it changes)."
    ),
    tls_key: Path = typer.Option(
        None, "--tls-key", metavar="FILE", help="PEM private key (reloaded when it changes)."
    ),
    policies: list[Path] = typer.Option(
        None,
        "--policies",
        metavar="DIR",
        help="Directory of .cedar files and Policy YAML; repeat for ordered tiers.",
    ),
    port: int = typer.Option(None, "--port", help="HTTPS port (default 8443)."),
    host: str = typer.Option(None, "--host", help="Listen address (default 0.0.0.0)."),
    namespaces: Path = typer.Option(
        None, "--namespaces", help="YAML of Namespace objects whose labels select the PSS level."
    ),
    config: Path = typer.Option(
        None, "--config", "-c", help="kubestrata config file (its serve: section).", metavar="PATH"
    ),
    policies_from_cluster: bool = typer.Option(
        None,
        "--policies-from-cluster",
        help="Also watch cedar.k8s.aws/v1alpha1 Policy objects in the cluster (a tier after --policies).",
    ),
    kubeconfig: Path = typer.Option(
        None, "--kubeconfig", help="kubeconfig file (for --policies-from-cluster).", metavar="PATH"
    ),
    context: str = typer.Option(
        None, "--context", help="kubeconfig context (for --policies-from-cluster).", metavar="NAME"
    ),
) -> None:
    """Serve /authorize (SubjectAccessReview), /admit, /mutate (AdmissionReview), /audit, /healthz,
    /readyz and /metrics over HTTPS.

    Example: kubestrata serve --tls-cert tls/tls.crt --tls-key tls/tls.key --policies deploy/policies"""
    from kubestrata.server.app import create_app
    from kubestrata.server.assemble import build_state
    from kubestrata.server.config import load_serve_config
    from kubestrata.server.logs import setup_logging
    from kubestrata.server.run import build_server, run
    from kubestrata.server.tls import ReloadingTLS

    cfg = load_serve_config(config)
    sc = cfg.serve
    if tls_cert is not None:
        sc.tls.cert = tls_cert
    if tls_key is not None:
        sc.tls.key = tls_key
    if policies:
        sc.policies.dirs = list(policies)
    if port is not None:
        sc.port = port
    if host is not None:
        sc.host = host
    if namespaces is not None:
        sc.admission.namespaces.file = namespaces
    if policies_from_cluster is not None:
        sc.policies.cluster.enabled = policies_from_cluster
    if kubeconfig is not None:
        sc.policies.cluster.kubeconfig = kubeconfig
    if context is not None:
        sc.policies.cluster.context = context
    if sc.tls.cert is None or sc.tls.key is None:
        raise KubestrataError(
            "HTTPS only: give --tls-cert and --tls-key (or serve.tls in the config); "
            "`kubestrata certs --dns-name NAME --out DIR` makes a pair"
        )
    for d in sc.policies.dirs:
        if not d.exists():
            raise KubestrataError(f"--policies {d}: no such file or directory")
    setup_logging(sc.logging.level)
    state = build_state(cfg)
    tls = ReloadingTLS(
        sc.tls.cert,
        sc.tls.key,
        on_reload=lambda ok: state.metrics.tls_reloads.labels("applied" if ok else "rejected").inc(),
    )
    state.tls = tls
    state.background.append(lambda: tls.watch(sc.tls.reload_interval))
    server = build_server(
        create_app(state),
        tls,
        host=sc.host,
        port=sc.port,
        header_timeout=sc.limits.header_timeout,
        keep_alive=sc.limits.keep_alive,
        max_concurrency=sc.limits.max_concurrency,
        shutdown_timeout=sc.shutdown_timeout,
    )
    run(server)


@handle_errors
def certs(
    dns_name: list[str] = typer.Option(
        ..., "--dns-name", help="Name the API server uses (Service DNS name or IP); repeat for more."
    ),
    out: Path = typer.Option(..., "--out", help="Directory for ca.crt, ca.key, tls.crt, tls.key."),
    days: int = typer.Option(365, "--days", min=1, help="Serving certificate lifetime."),
    new_ca: bool = typer.Option(False, "--new-ca", help="Make a new CA even if DIR has one."),
) -> None:
    """Make a CA (kept if DIR already has one) and a serving certificate; print the caBundle.

    Example: kubestrata certs --dns-name kubestrata.kubestrata-system.svc --out ./tls"""
    from kubestrata.server.certs import generate_certs

    paths = generate_certs(out, dns_name, days=days, reuse_ca=not new_ca)
    err_console.print(f"wrote {paths.ca_cert}, {paths.ca_key}, {paths.cert}, {paths.key}")
    err_console.print("caBundle (for webhook configurations and the authorization kubeconfig):")
    typer.echo(paths.ca_bundle)


def register(app: typer.Typer) -> None:
    """Add the server's top-level commands to the main app."""
    app.command("serve")(serve)
    app.command("certs")(certs)
