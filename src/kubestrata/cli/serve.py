"""`kubestrata serve` and `kubestrata certs`: the HTTPS webhook server."""

from __future__ import annotations

from pathlib import Path

import typer

from kubestrata.cli import options
from kubestrata.cli.common import err_console, handle_errors
from kubestrata.errors import KubestrataError

serve_app = typer.Typer(rich_markup_mode=None, no_args_is_help=False)


@handle_errors
def serve(
    ctx: typer.Context,
    tls_cert: Path = typer.Option(
        None, "--tls-cert", metavar="FILE", help="PEM serving certificate (reloaded when it changes)."
    ),
    tls_key: Path = typer.Option(
        None, "--tls-key", metavar="FILE", help="PEM private key (reloaded when it changes)."
    ),
    client_ca: Path = typer.Option(
        None,
        "--client-ca",
        metavar="FILE",
        help="CA of the callers' client certificates: every webhook route then requires one (mTLS).",
    ),
    client_name: list[str] = typer.Option(
        None,
        "--client-name",
        metavar="NAME",
        help="Allowed client certificate CN or SAN (repeat); default any the client CA signed.",
    ),
    insecure_no_client_auth: bool = typer.Option(
        None,
        "--insecure-no-client-auth",
        help="Serve without client certificates (anyone reaching the port gets decisions; /audit off).",
    ),
    policies: list[Path] = typer.Option(
        None,
        "--policies",
        metavar="DIR",
        help="Directory of .cedar files and Policy YAML; repeat for ordered tiers.",
    ),
    port: int = typer.Option(None, "--port", help="HTTPS port (default 8443)."),
    host: str = typer.Option(None, "--host", help="Listen address (default 0.0.0.0)."),
    ops_port: int = typer.Option(
        None, "--ops-port", help="Plain-HTTP port of /healthz, /readyz, /metrics (default 8080)."
    ),
    ops_host: str = typer.Option(
        None, "--ops-host", help="Listen address of the operations port (default 127.0.0.1)."
    ),
    deny_on_error: bool = typer.Option(
        None,
        "--deny-on-error",
        help="/authorize: a forbid that errors denies (instead of no opinion); see docs/serve.md.",
    ),
    namespaces: Path = typer.Option(
        None, "--namespaces", help="YAML of Namespace objects whose labels select the PSS level."
    ),
    config: Path = options.config(),
    policies_from_cluster: bool = typer.Option(
        None,
        "--policies-from-cluster",
        help="Also watch cedar.k8s.aws/v1alpha1 Policy objects in the cluster (a tier after --policies).",
    ),
    kubeconfig: Path = options.kubeconfig("kubeconfig file (with --policies-from-cluster)."),
    context: str = options.context("kubeconfig context (with --policies-from-cluster)."),
) -> None:
    """Serve /authorize (SubjectAccessReview), /admit, /mutate (AdmissionReview) and /audit over
    HTTPS with client certificates, and /healthz, /readyz, /metrics on a plain-HTTP ops port.
    `serve manifests` generates the webhooks' cluster configuration.

    Example: kubestrata serve --tls-cert certs/tls.crt --tls-key certs/tls.key --client-ca certs/ca.crt
    --policies deploy/policies"""
    if ctx.invoked_subcommand is not None:
        return
    from kubestrata.server.app import create_app
    from kubestrata.server.assemble import build_state
    from kubestrata.server.config import load_serve_config, require_caller_auth
    from kubestrata.server.logs import setup_logging
    from kubestrata.server.run import build_server, run
    from kubestrata.server.tls import ReloadingTLS

    cfg = load_serve_config(config)
    sc = cfg.serve
    if tls_cert is not None:
        sc.tls.cert = tls_cert
    if tls_key is not None:
        sc.tls.key = tls_key
    if client_ca is not None:
        sc.tls.client_ca = client_ca
    if client_name:
        sc.tls.client_names = list(client_name)
    if insecure_no_client_auth is not None:
        sc.tls.insecure_no_client_auth = insecure_no_client_auth
    if policies:
        sc.policies.dirs = list(policies)
    if port is not None:
        sc.port = port
    if host is not None:
        sc.host = host
    if ops_port is not None:
        sc.ops.port = ops_port
    if ops_host is not None:
        sc.ops.host = ops_host
    if deny_on_error is not None:
        sc.policies.deny_on_error = deny_on_error
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
    require_caller_auth(sc)
    for d in sc.policies.dirs:
        if not d.exists():
            raise KubestrataError(f"--policies {d}: no such file or directory")
    setup_logging(sc.logging.level)
    state = build_state(cfg)
    tls = ReloadingTLS(
        sc.tls.cert,
        sc.tls.key,
        client_ca=sc.tls.client_ca,
        on_reload=lambda ok: state.metrics.tls_reloads.labels("applied" if ok else "rejected").inc(),
    )
    state.tls = tls
    state.background.append(lambda: tls.watch(sc.tls.reload_interval))
    server = build_server(
        create_app(state),
        tls,
        state=state,
        host=sc.host,
        port=sc.port,
        header_timeout=sc.limits.header_timeout,
        keep_alive=sc.limits.keep_alive,
        shutdown_timeout=sc.shutdown_timeout,
        max_connections=sc.limits.max_connections,
        reserve=sc.limits.reserve,
        handshake_timeout=sc.tls.handshake_timeout,
        client_names=sc.tls.client_names,
        drain_seconds=sc.drain_seconds,
        ops_host=sc.ops.host,
        ops_port=sc.ops.port,
    )
    run(server)


@handle_errors
def certs(
    dns_name: list[str] = typer.Option(
        ..., "--dns-name", help="Name the API server uses (Service DNS name or IP); repeat for more."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Directory for ca.crt, ca.key, tls.crt, tls.key, client.crt, client.key."
    ),
    days: int = typer.Option(365, "--days", min=1, help="Certificate lifetime."),
    new_ca: bool = typer.Option(False, "--new-ca", help="Make a new CA even if DIR has one."),
    client_name: str = typer.Option(
        "kube-apiserver",
        "--client-name",
        metavar="NAME",
        help="CN of the client certificate the API server presents (serve --client-name NAME).",
    ),
) -> None:
    """Make a CA (kept if DIR already has one), a serving certificate and a client certificate for
    the API server; print the caBundle.

    Example: kubestrata certs --dns-name kubestrata.kubestrata-system.svc --out ./certs"""
    from kubestrata.server.certs import generate_certs

    paths = generate_certs(out, dns_name, days=days, reuse_ca=not new_ca, client_name=client_name)
    err_console.print(
        f"wrote {paths.ca_cert}, {paths.ca_key}, {paths.cert}, {paths.key}, {paths.client_cert}, {paths.client_key}"
    )
    err_console.print("caBundle (for webhook configurations and the authorization kubeconfig):")
    typer.echo(paths.ca_bundle)


@handle_errors
def manifests(
    config: Path = options.config("kubestrata config file, or the ConfigMap manifest carrying it."),
    policies: list[Path] = typer.Option(
        None,
        "--policies",
        metavar="DIR",
        help="Policy directories to read (instead of the config's in-pod paths); repeat for tiers.",
    ),
    out: Path = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Write DIR/webhooks.yaml and DIR/networkpolicy.yaml (default: both to stdout).",
    ),
) -> None:
    """Generate the admission webhook configurations (only the resources and operations the loaded
    policies and checks act on) and the NetworkPolicies from the configuration.

    Example: kubestrata serve manifests -c deploy/config.yaml --policies deploy/policies --out deploy"""
    from kubestrata.admission.namespaces import StaticNamespaces
    from kubestrata.server.assemble import build_state
    from kubestrata.server.config import load_serve_config
    from kubestrata.server.manifests import HEADER, network_policies, render, webhook_configurations

    cfg = load_serve_config(config)
    sc = cfg.serve
    if policies:
        sc.policies.dirs = list(policies)
    for d in sc.policies.dirs:
        if not d.exists():
            raise KubestrataError(f"policy directory {d} does not exist (give --policies DIR)")
    if not sc.manifests.apiserver_cidrs:
        raise KubestrataError(
            "serve.manifests.apiserver_cidrs is empty: the NetworkPolicy must name the API server's addresses"
        )
    cluster_policies = sc.policies.cluster.enabled
    sc.policies.cluster.enabled = False  # the cluster's Policy objects are unknown here: see below
    state = build_state(cfg, audit=None, namespaces=StaticNamespaces())
    if cluster_policies and state.authorizer is None:
        raise KubestrataError("policies.cluster needs at least one --policies directory here")
    args = []
    if config is not None:
        args += ["-c", str(config)]
    args += [a for d in policies or [] for a in ("--policies", str(d))]
    args += ["--out", "DIR"] if out is not None else []
    header = HEADER.format(args=(" " + " ".join(args)) if args else "")
    hooks = webhook_configurations(state, any_cedar_forbid=cluster_policies)
    files = {
        "webhooks.yaml": render(hooks, header),
        "networkpolicy.yaml": render(network_policies(state), header),
    }
    if out is None:
        typer.echo("---\n".join(files.values()), nl=False)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as e:
        raise KubestrataError(f"cannot write {out}: {e.strerror or e}") from None
    err_console.print(f"wrote {', '.join(str(out / n) for n in files)}")


# `serve` runs the server; `serve manifests` generates its cluster configuration
serve_app.callback(invoke_without_command=True)(serve)
serve_app.command("manifests")(manifests)
