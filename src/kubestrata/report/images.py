"""Image inventories as JSON documents and terminal tables. Everything from the image (package
names, paths, ENV names, history lines, labels) is attacker-controlled: escaped for the terminal,
and ENV values or history text that look like secrets are masked in every format."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kubestrata.image.config import config_issues, mask_secrets, masked_env
from kubestrata.image.model import ImageInventory
from kubestrata.textsafe import printable

MAX_PACKAGE_ROWS = 2000


def inventory_to_dict(inv: ImageInventory) -> dict[str, Any]:
    cfg = inv.config
    return {
        "reference": inv.reference,
        "digest": inv.digest,
        "platform": inv.platform,
        "os": {k: inv.os_release[k] for k in ("ID", "VERSION_ID", "PRETTY_NAME") if k in inv.os_release},
        "packages": [
            {
                "ecosystem": p.ecosystem,
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "sourceName": p.source_name,
                "release": p.release,
                "path": p.path,
                "layer": p.layer,
            }
            for p in inv.packages
        ],
        "config": {
            "user": cfg.user,
            "env": masked_env(cfg),
            "exposedPorts": cfg.exposed_ports,
            "entrypoint": cfg.entrypoint,
            "cmd": cfg.cmd,
            "os": cfg.os,
            "architecture": cfg.architecture,
            "labels": cfg.labels,
            "history": [mask_secrets(h) for h in cfg.history],
        },
        "configIssues": [i.to_dict() for i in config_issues(cfg)],
        "gaps": [g.to_dict() for g in inv.gaps],
    }


def _e(text: object) -> str:
    return escape(printable(text if text is not None else ""))


def render_inventory(inv: ImageInventory, console: Console, *, max_rows: int = MAX_PACKAGE_ROWS) -> None:
    os_name = inv.os_release.get("PRETTY_NAME") or inv.os_release.get("ID") or "unknown OS"
    console.print(f"[bold]{_e(inv.reference)}[/]", soft_wrap=True)
    console.print(f"  digest {_e(inv.digest)}  platform {_e(inv.platform)}  {_e(os_name)}", soft_wrap=True)
    if inv.packages:
        table = Table(header_style="bold", title=f"{len(inv.packages)} packages", title_justify="left")
        for col in ("Ecosystem", "Name", "Version", "Source", "Path"):
            table.add_column(col, overflow="fold")
        for p in inv.packages[:max_rows]:
            source = p.source_name if p.source_name and p.source_name != p.name else ""
            table.add_row(_e(p.ecosystem), _e(p.name), _e(p.version), _e(source), _e(p.path))
        console.print(table)
        if len(inv.packages) > max_rows:
            console.print(f"... and {len(inv.packages) - max_rows} more packages (see -o json)")
    issues = config_issues(inv.config)
    if issues:
        table = Table(header_style="bold", title="Image config", title_justify="left")
        for col in ("Issue", "Where", "Detail", "Evidence"):
            table.add_column(col, overflow="fold")
        for i in issues:
            table.add_row(_e(i.kind), _e(i.field), _e(i.detail), _e(i.evidence))
        console.print(table)
    if inv.gaps:
        console.print(f"[yellow]{len(inv.gaps)} not read:[/]")
        for g in inv.gaps:
            console.print(f"  [yellow]{g.reason.value}[/] {_e(g.subject)}: {_e(g.detail)}", soft_wrap=True)
