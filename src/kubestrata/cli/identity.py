"""`kubestrata identity`: IAM tokens for the authenticator, the Pod Identity agent, IRSA's OIDC documents."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from kubestrata.cli import options
from kubestrata.cli.common import handle_errors, write_output
from kubestrata.errors import KubestrataError

app = typer.Typer(
    rich_markup_mode=None,
    help="Workload and user identity run by kubestrata: IAM authenticator tokens, Pod Identity agent, IRSA OIDC.",
    no_args_is_help=True,
)


class TokenFmt(StrEnum):
    JSON = "json"  # the ExecCredential kubectl reads
    TOKEN = "token"  # the bare token


@app.command("token")
@handle_errors
def token(
    cluster_id: str = typer.Option(..., "--cluster-id", help="Cluster id signed into x-k8s-aws-id."),
    region: str = typer.Option(
        None, "--region", help="STS region (default: the AWS config's, else us-east-1)."
    ),
    profile: str = typer.Option(
        None, "--profile", help="AWS profile (default: the environment's credentials)."
    ),
    output: TokenFmt = options.output(
        TokenFmt.JSON, "json (ExecCredential, as `aws eks get-token`) or token."
    ),
    output_file: str = options.output_file(),
) -> None:
    """Make a k8s-aws-v1 token with boto3, as `aws eks get-token` does (valid 15 minutes, no network).

    Example: kubestrata identity token --cluster-id my-cluster -o json"""
    import boto3
    import botocore.exceptions

    from kubestrata.identity.token import exec_credential, make_token

    try:
        session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
        if session.get_credentials() is None:
            raise KubestrataError("no AWS credentials found (environment, profile or instance role)")
        tok, expires = make_token(cluster_id, session=session, region=region)
    except botocore.exceptions.BotoCoreError as e:
        raise KubestrataError(f"cannot sign the token: {e}") from None
    text = tok if output == TokenFmt.TOKEN else json.dumps(exec_credential(tok, expires))
    write_output(text + "\n", output_file)


@app.command("agent")
@handle_errors
def agent(
    cluster_name: str = typer.Option(
        ..., "--cluster-name", help="Cluster name (session tag eks-cluster-name)."
    ),
    cluster_arn: str = typer.Option(
        None, "--cluster-arn", help="Session tag eks-cluster-arn (default: built from region, account, name)."
    ),
    associations: list[str] = typer.Option(
        [],
        "--associations",
        metavar="PATH",
        help="PodIdentityAssociation YAML or EKS pod identity JSON (file or directory); repeatable.",
    ),
    cluster: bool = options.cluster("Also read PodIdentityAssociation objects from the live cluster."),
    from_eks: bool = typer.Option(
        False, "--from-eks", help="Also read the associations of EKS cluster --cluster-name from the EKS API."
    ),
    eks_endpoint: str = typer.Option(None, "--eks-endpoint", help="EKS endpoint URL (with --from-eks)."),
    jwks: str = typer.Option(
        None, "--jwks", metavar="FILE", help="The issuer's JWKS to verify tokens offline."
    ),
    signing_key: list[str] = typer.Option(
        [],
        "--signing-key",
        metavar="PEM",
        help="Service-account signing public key (or the apiserver's key file); repeatable.",
    ),
    token_review: bool = typer.Option(
        False, "--token-review", help="Verify tokens with TokenReview against the cluster instead."
    ),
    issuer: str = typer.Option(None, "--issuer", help="Required iss claim (offline verification)."),
    kubeconfig: str = options.kubeconfig("kubeconfig (with --cluster or --token-review)."),
    context: str = options.context("kubeconfig context (with --cluster or --token-review)."),
    host: str = typer.Option("169.254.170.23", "--host", help="Listen address (the agent's link-local IP)."),
    port: int = typer.Option(80, "--port", help="Listen port."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="Host header values accepted (default 169.254.170.23 and fd00:ec2::23)."
    ),
    sts_endpoint: str = typer.Option(None, "--sts-endpoint", help="STS endpoint URL (default: regional)."),
    region: str = typer.Option(None, "--region", help="AWS region for STS (default: the AWS config's)."),
    session_duration: int = typer.Option(3600, "--session-duration", min=900, max=43200, help="Seconds."),
    refresh_before: float = typer.Option(
        300.0, "--refresh-before", min=15, help="Renew cached credentials this many seconds before expiry."
    ),
    pod_tags: bool = typer.Option(
        True,
        "--pod-tags/--no-pod-tags",
        help="Send kubernetes-pod-name/-uid session tags (one STS session per pod, as EKS); "
        "--no-pod-tags shares one session per association.",
    ),
    rate_limit: float = typer.Option(1000.0, "--rate-limit", min=0, help="Requests per second (0: none)."),
) -> None:
    """Serve GET /v1/credentials, the EKS Pod Identity agent protocol, for any cluster.

    Example: kubestrata identity agent --associations associations.yaml --jwks jwks.json"""
    from pathlib import Path

    from kubestrata.identity import agent as ag
    from kubestrata.identity.associations import Associations, load_cluster, load_files
    from kubestrata.identity.jwt import JWTError, KeySet, load_public_key

    if not associations and not cluster:
        raise KubestrataError(
            "give --associations PATH and/or --cluster to read PodIdentityAssociation objects"
        )
    assoc = load_files(associations) if associations else Associations([])
    if cluster:
        assoc = Associations([*assoc, *load_cluster(kubeconfig, context)])
    if not len(assoc):
        raise KubestrataError("no Pod Identity associations found")
    verifier: ag.TokenVerifier
    if token_review:
        from kubestrata.kube.live import _api_client

        verifier = ag.TokenReviewVerifier(_api_client(kubeconfig, context))
    else:
        keys: dict = {}
        try:
            if jwks:
                keys.update(KeySet.from_jwks(json.loads(Path(jwks).read_text())).keys)
            if signing_key:
                keys.update(
                    KeySet.from_public_keys(load_public_key(Path(p).read_bytes()) for p in signing_key).keys
                )
        except OSError as e:
            raise KubestrataError(f"cannot read {e.filename}: {e.strerror}") from None
        except (JWTError, ValueError) as e:
            raise KubestrataError(f"{jwks or ', '.join(signing_key)}: {e}") from None
        if not keys:
            raise KubestrataError("give --jwks or --signing-key (offline verification) or --token-review")
        verifier = ag.JWKSVerifier(KeySet(keys), issuer=issuer)
    if not cluster_arn:
        import boto3

        first = next(iter(assoc))
        from kubestrata.eks.arn import parse_arn

        role = parse_arn(first.role_arn)
        reg = region or boto3.session.Session().region_name or "us-east-1"
        cluster_arn = f"arn:{role.partition}:eks:{reg}:{role.account}:cluster/{cluster_name}"
    assumer = ag.STSAssumer(
        cluster_name, cluster_arn, endpoint_url=sts_endpoint, region=region, duration=session_duration
    )
    agent_ = ag.Agent(
        assoc,
        verifier,
        assumer,
        allowed_hosts=tuple(allowed_host) or ag.DEFAULT_HOSTS,
        pod_tags=pod_tags,
        cache=ag.CredentialCache(refresh_before=refresh_before),
        rate_limit=rate_limit or None,
    )
    import socket

    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # Nagle + delayed ACK add ~40 ms to every keep-alive answer
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise KubestrataError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    from kubestrata.cli.common import err_console

    err_console.print(f"kubestrata identity agent: {len(assoc)} association(s), listening on {host}:{port}")
    import asyncio

    asyncio.run(ag.AgentHTTP(agent_).serve(sock))


@app.command("oidc")
@handle_errors
def oidc(
    issuer: str = typer.Option(..., "--issuer", help="The apiserver's --service-account-issuer (https URL)."),
    signing_key: list[str] = typer.Option(
        ...,
        "--signing-key",
        metavar="PEM",
        help="Service-account signing key (public, or the apiserver's private key file); repeat during rotation.",
    ),
    write: str = typer.Option(None, "--write", metavar="DIR", help="Write the documents for static hosting."),
    host: str = typer.Option("0.0.0.0", "--host", help="Listen address."),
    port: int = typer.Option(8443, "--port", help="Listen port."),
    tls_cert: str = typer.Option(
        None, "--tls-cert", metavar="PEM", help="Serving certificate (IAM needs HTTPS)."
    ),
    tls_key: str = typer.Option(None, "--tls-key", metavar="PEM", help="Key of --tls-cert."),
) -> None:
    """Serve (or --write) the OIDC discovery document and JWKS for a cluster's service-account signing key.

    Example: kubestrata identity oidc --issuer https://oidc.example.com --signing-key sa.pub --write ./oidc"""
    from pathlib import Path

    from kubestrata.identity.jwt import JWTError, KeySet, load_public_key
    from kubestrata.identity.oidc import check_issuer, create_oidc_app, write_static

    try:
        check_issuer(issuer)
    except ValueError as e:
        raise KubestrataError(f"--issuer: {e}") from None
    try:
        keys = KeySet.from_public_keys(load_public_key(Path(p).read_bytes()) for p in signing_key)
    except OSError as e:
        raise KubestrataError(f"cannot read {e.filename}: {e.strerror}") from None
    except (JWTError, ValueError, TypeError) as e:
        raise KubestrataError(f"--signing-key: not a PEM RSA or EC key ({e})") from None
    if write:
        for p in write_static(Path(write), issuer, keys):
            typer.echo(str(p))
        return
    if bool(tls_cert) != bool(tls_key):
        raise KubestrataError("give both --tls-cert and --tls-key")
    import uvicorn

    uvicorn.run(
        create_oidc_app(issuer, keys),
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        lifespan="off",
    )
