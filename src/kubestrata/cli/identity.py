"""`kubestrata identity`: IAM tokens for the authenticator, the Pod Identity agent, IRSA's OIDC documents."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from kubestrata.cli import options
from kubestrata.cli.common import handle_errors, write_output
from kubestrata.errors import KubestrataError

app = typer.Typer(
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
    """Make a k8s-aws-v1 token with boto3, as `aws eks get-token` does (valid 15 minutes, no network)."""
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
