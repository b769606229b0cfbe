"""`kubestrata kms`: a KMS v2 plugin for Secrets envelope encryption (serve), its keyring (init,
rotate, keys, retire), a health probe (status) and the rewrite of Secrets after a rotation (rewrap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer

from kubestrata.cli import options
from kubestrata.cli.common import EXIT_ERROR, err_console, handle_errors, printable, write_output
from kubestrata.cli.options import TableOrJson
from kubestrata.errors import KubestrataError

DEFAULT_KEYRING = "/var/lib/kubestrata/kms/keyring.json"

app = typer.Typer(
    rich_markup_mode=None,
    help="KMS v2 plugin for Secrets encryption at rest: serve, keyring, rotation, rewrap.",
    no_args_is_help=True,
)


def _keyring_opt() -> Any:
    return typer.Option(
        DEFAULT_KEYRING, "--keyring", help="Local backend keyring file (mode 0600).", metavar="PATH"
    )


def _json(doc: Any) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


@app.command("init")
@handle_errors
def init(keyring: Path = _keyring_opt()) -> None:
    """Create a keyring with one AES-256 key. Never overwrites an existing file.

    Example: kubestrata kms init --keyring /var/lib/kubestrata/kms/keyring.json"""
    from kubestrata.kms import keyring as kr

    ring = kr.init(keyring)
    err_console.print(
        f"created {printable(str(keyring))} (mode 0600); back it up: losing it loses every Secret"
    )
    typer.echo(ring.primary_id)


@app.command("rotate")
@handle_errors
def rotate(
    keyring: Path = _keyring_opt(),
    stage: bool = typer.Option(
        False,
        "--stage",
        help="Add the key for decryption only; make it primary later with `kms promote` (several "
        "control-plane nodes: stage, copy the keyring to every node, then promote).",
    ),
) -> None:
    """Add a new key and make it primary. Older keys still decrypt; a running plugin picks the change
    up within a second and reports the new key_id, which makes the API server re-encrypt on write.

    Example: kubestrata kms rotate --keyring /var/lib/kubestrata/kms/keyring.json"""
    from kubestrata.kms import keyring as kr

    ring, key = kr.rotate(keyring, primary=not stage)
    if stage:
        err_console.print(
            f"staged key {key.id} (decrypt only); {len(ring.keys)} keys. Next: copy {printable(str(keyring))} "
            f"to every control-plane node, then `kubestrata kms promote --key-id {key.id}` on each."
        )
    else:
        err_console.print(
            f"new primary key {key.id}; {len(ring.keys)} keys in the keyring. Next: `kubestrata kms rewrap "
            "--cluster` once the API server reports the new key_id (about 3 minutes)."
        )
    typer.echo(key.id)


@app.command("promote")
@handle_errors
def promote(
    key_id: str = typer.Option(..., "--key-id", help="A staged key to make primary."),
    keyring: Path = _keyring_opt(),
) -> None:
    """Make a staged key primary (new writes are encrypted with it).

    Example: kubestrata kms promote --keyring /var/lib/kubestrata/kms/keyring.json --key-id KEY_ID"""
    from kubestrata.kms import keyring as kr

    kr.promote(keyring, key_id)
    err_console.print(f"{printable(key_id)} is the primary key")


@app.command("retire")
@handle_errors
def retire(
    key_id: str = typer.Option(..., "--key-id", help="The key to remove (never the primary)."),
    keyring: Path = _keyring_opt(),
) -> None:
    """Remove an old key after `kms rewrap` rewrote every Secret; data still under it becomes unreadable.

    Example: kubestrata kms retire --keyring /var/lib/kubestrata/kms/keyring.json --key-id OLD_KEY_ID"""
    from kubestrata.kms import keyring as kr

    ring = kr.retire(keyring, key_id)
    err_console.print(f"retired {printable(key_id)}; {len(ring.keys)} keys left")


@app.command("keys")
@handle_errors
def keys(
    keyring: Path = _keyring_opt(),
    output: TableOrJson = options.output(TableOrJson.TABLE),
    output_file: str | None = options.output_file(),
) -> None:
    """List the keyring's key ids (never the key material).

    Example: kubestrata kms keys --keyring /var/lib/kubestrata/kms/keyring.json -o json"""
    from kubestrata.kms import keyring as kr

    ring = kr.load(keyring)
    rows = [{"keyId": k.id, "created": k.created, "primary": k.id == ring.primary_id} for k in ring.keys]
    if output == TableOrJson.JSON:
        write_output(_json({"keyring": str(keyring), "keys": rows, "retired": ring.retired}), output_file)
        return
    lines = [f"{'KEY ID':40}  {'CREATED':20}  PRIMARY"]
    lines += [f"{r['keyId']:40}  {r['created']:20}  {'yes' if r['primary'] else ''}" for r in rows]
    lines += [f"{rid:40}  {'(retired)':20}" for rid in ring.retired]
    write_output("\n".join(lines) + "\n", output_file)


def _context_pairs(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise KubestrataError(f"--encryption-context {item!r}: expected KEY=VALUE")
        out[k] = v
    return out


@app.command("serve")
@handle_errors
def serve(
    socket: str = typer.Option(
        "unix:///var/run/kmsplugin/socket.sock",
        "--socket",
        help="unix:///PATH (or unix:///@abstract).",
        metavar="URL",
    ),
    backend: str = typer.Option(
        "local", "--backend", help="local (keyring file) or aws (AWS KMS).", metavar="NAME"
    ),
    keyring: Path = _keyring_opt(),
    key_ids: list[str] = typer.Option(
        None,
        "--key-id",
        help="aws: KMS key ARN, key id or alias (resolved to the key ARN at start). Repeat: the first "
        "encrypts, all decrypt.",
        metavar="KEY",
    ),
    region: str | None = typer.Option(None, "--region", help="aws: region (default from the environment)."),
    encryption_context: list[str] = typer.Option(
        None,
        "--encryption-context",
        help="aws: KEY=VALUE bound to every ciphertext; repeatable.",
        metavar="KEY=VALUE",
    ),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="aws: KMS endpoint (VPC endpoint).", metavar="URL"
    ),
    verbose: bool = options.verbose(),
) -> None:
    """Serve the KMS v2 gRPC API (Status, Encrypt, Decrypt) on a Unix socket for kube-apiserver.

    Example: kubestrata kms serve --socket unix:///var/run/kmsplugin/socket.sock --backend local"""
    import asyncio
    import logging

    from kubestrata.kms.backends import AWSBackend, LocalBackend
    from kubestrata.kms.service import KeyManagementService, parse_socket, serve_forever

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    path = parse_socket(socket)
    if backend == "local":
        if key_ids or encryption_context or region or endpoint_url:
            raise KubestrataError(
                "--key-id, --region, --encryption-context and --endpoint-url are for --backend aws"
            )
        be: Any = LocalBackend(keyring)
    elif backend == "aws":
        be = AWSBackend(
            list(key_ids or []),
            region=region,
            encryption_context=_context_pairs(encryption_context),
            endpoint_url=endpoint_url,
        )
    else:
        raise KubestrataError(f"--backend {backend!r}: expected local or aws")
    service = KeyManagementService(be)
    state = service.health.check()
    if not state.ok:
        raise KubestrataError(f"backend {backend} is not usable: {state.message}")

    def ready() -> None:
        err_console.print(
            f"kms v2 plugin ({backend}) serving on {printable(socket)}, key_id {be.current_key_id()}"
        )

    asyncio.run(serve_forever(service, path, ready))


@app.command("status")
@handle_errors
def status(
    socket: str = typer.Option(
        "unix:///var/run/kmsplugin/socket.sock", "--socket", help="The plugin's unix:///PATH.", metavar="URL"
    ),
    output: TableOrJson = options.output(TableOrJson.TABLE),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds per call.", metavar="SECONDS"),
) -> None:
    """Ask a plugin for its Status and do an Encrypt/Decrypt round trip, as the API server would.

    Example: kubestrata kms status --socket unix:///var/run/kmsplugin/socket.sock"""
    from kubestrata.kms.client import probe

    p = probe(socket, timeout)
    healthy = p.healthz == "ok" and p.round_trip == "ok" and p.version == "v2"
    if output == TableOrJson.JSON:
        doc = {"version": p.version, "healthz": p.healthz, "keyId": p.key_id, "roundTrip": p.round_trip}
        typer.echo(_json(doc), nl=False)
    else:
        typer.echo(
            f"version {printable(p.version)}\nhealthz {printable(p.healthz)}\nkey_id  {printable(p.key_id)}\n"
            f"round trip {printable(p.round_trip)}"
        )
    if not healthy:
        raise typer.Exit(EXIT_ERROR)


@app.command("rewrap")
@handle_errors
def rewrap(
    cluster: bool = options.cluster("Rewrite the Secrets of the live cluster (required: this writes)."),
    context: str | None = options.context(),
    kubeconfig: str | None = options.kubeconfig(),
    namespace: str | None = options.namespace("Only this namespace's Secrets."),
    all_namespaces: bool = options.all_namespaces("Every namespace (the default)."),
    output: TableOrJson = options.output(TableOrJson.TABLE),
    output_file: str | None = options.output_file(),
    quiet: bool = options.quiet(),
) -> None:
    """Re-write every Secret so it is stored under the current key (the documented `kubectl get
    secrets -A -o json | kubectl replace -f -`); reports progress and what is left. Run it after
    `kms rotate` once the API server reports the new key_id.

    Example: kubestrata kms rewrap --cluster"""
    from kubestrata.kms.rewrap import rewrap_secrets
    from kubestrata.kube.live import _api_client

    if not cluster:
        raise KubestrataError("rewrap writes to a live cluster: give --cluster (with --context/--kubeconfig)")
    if namespace and all_namespaces:
        raise KubestrataError("give -n/--namespace or -A/--all-namespaces, not both")
    api = _api_client(kubeconfig, context)
    step = {"next": 0.0}

    def progress(done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if quiet or (now < step["next"] and done != total):
            return
        step["next"] = now + 1.0
        err_console.print(f"rewrap: {done}/{total} Secrets, {total - done} to go")

    report = rewrap_secrets(api, namespace, progress)
    if output == TableOrJson.JSON:
        write_output(_json(report.to_doc()), output_file)
    else:
        lines = [
            f"Secrets: {report.total}; rewritten {report.rewritten}, replaced by another writer meanwhile "
            f"{report.changed_meanwhile}, deleted meanwhile {report.gone}; left {len(report.left)} "
            f"({report.seconds:.1f}s)"
        ]
        lines += [f"  left: {printable(ref)}: {printable(why)}" for ref, why in report.left]
        if report.left:
            lines.append(
                "Run `kubestrata kms rewrap --cluster` again after fixing the cause; it is safe to repeat."
            )
        write_output("\n".join(lines) + "\n", output_file)
    if report.left:
        raise typer.Exit(1)
