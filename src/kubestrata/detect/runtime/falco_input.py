"""Falco's JSON alerts (``json_output: true``) as runtime events.

Shape (falcosecurity/falco userspace/engine/formats.cpp, falco.yaml ``json_include_*``): ``time``,
``rule``, ``priority``, ``source``, ``hostname``, ``output``, ``tags``, ``output_fields``. The fields are
those the rule's output names (``proc.cmdline``, ``fd.name``, ``evt.type`` ...) plus appended ones
(``container.id``, ``k8s.ns.name``, ``k8s.pod.name`` come from ``append_output``/plugins, so each is
optional). Values are strings, numbers or null. Only ``source: syscall`` alerts are runtime events;
others (k8s_audit, aws_cloudtrail plugins) raise UnknownEventType.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubestrata.detect.event import BadEvent
from kubestrata.detect.runtime.events import (
    ALERT,
    CONNECT,
    EXEC,
    FILE,
    SYSCALL,
    Process,
    RuntimeEvent,
    UnknownEventType,
)

_KINDS = {
    "execve": EXEC,
    "execveat": EXEC,
    "open": FILE,
    "openat": FILE,
    "openat2": FILE,
    "creat": FILE,
    "open_by_handle_at": FILE,
    "rename": FILE,
    "renameat": FILE,
    "renameat2": FILE,
    "unlink": FILE,
    "unlinkat": FILE,
    "symlink": FILE,
    "symlinkat": FILE,
    "link": FILE,
    "linkat": FILE,
    "connect": CONNECT,
    "sendto": CONNECT,
    "sendmsg": CONNECT,
}
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
_WRITE_CALLS = ("creat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "symlink", "symlinkat",
                "link", "linkat")  # fmt: skip
PTRACE_REQUESTS = {  # Falco prints evt.arg.request by name (sys/ptrace.h values)
    "PTRACE_TRACEME": 0,
    "PTRACE_PEEKTEXT": 1,
    "PTRACE_PEEKDATA": 2,
    "PTRACE_POKETEXT": 4,
    "PTRACE_POKEDATA": 5,
    "PTRACE_CONT": 7,
    "PTRACE_SETREGS": 13,
    "PTRACE_ATTACH": 16,
    "PTRACE_DETACH": 17,
    "PTRACE_SEIZE": 0x4206,
}


def is_falco(obj: dict[str, Any]) -> bool:
    return "rule" in obj and "priority" in obj and ("output_fields" in obj or "output" in obj)


def _s(v: Any) -> str:
    if v is None:
        return ""
    if type(v) is str:
        return "" if v == "<NA>" else v
    if type(v) in (int, float, bool):
        return str(v)
    raise BadEvent(f"expected a string or number, got {type(v).__name__}")


def _i(v: Any) -> int | None:
    if type(v) is int:
        return v
    if type(v) is str and v.lstrip("-").isdigit():
        return int(v)
    return None


def _time(obj: dict[str, Any], fields: dict[str, Any]) -> str:
    t = obj.get("time")
    if type(t) is str and t:
        return t
    ns = _i(fields.get("evt.time"))
    if ns is not None:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ""


def parse(obj: dict[str, Any]) -> RuntimeEvent:
    source = obj.get("source", "syscall")
    if source != "syscall":
        raise UnknownEventType(f"falco:{_s(source)[:40] or 'unknown'}")
    rule = obj.get("rule")
    if type(rule) is not str or not rule:
        raise BadEvent("rule: expected a non-empty string")
    fields = obj.get("output_fields") or {}
    if type(fields) is not dict:
        raise BadEvent(f"output_fields: expected an object, got {type(fields).__name__}")
    try:
        return _parse(obj, rule, fields)
    except BadEvent as e:
        raise BadEvent(f"output_fields: {e}") from None


def _parse(obj: dict[str, Any], rule: str, f: dict[str, Any]) -> RuntimeEvent:
    g = f.get
    cmdline = _s(g("proc.cmdline"))
    name, _, args = cmdline.partition(" ")
    binary = _s(g("proc.exepath")) or _s(g("proc.exe")) or _s(g("proc.name")) or name
    evt_type = _s(g("evt.type"))
    tags = obj.get("tags") or ()
    repo, tag = _s(g("container.image.repository")), _s(g("container.image.tag"))
    cid = _s(g("container.id"))
    ev = RuntimeEvent(
        source="falco",
        kind=_KINDS.get(evt_type, SYSCALL if evt_type else ALERT),
        time=_time(obj, f),
        node=_s(obj.get("hostname")) or _s(g("evt.hostname")),
        namespace=_s(g("k8s.ns.name")),
        pod=_s(g("k8s.pod.name")),
        container=_s(g("container.name")),
        container_id="" if cid == "host" else cid,
        image=f"{repo}:{tag}" if repo and tag else repo,
        privileged=g("container.privileged") if type(g("container.privileged")) is bool else None,
        process=Process(
            binary=binary,
            args=args,
            cwd=_s(g("proc.cwd")),
            uid=_i(g("user.uid")),
            pid=_i(g("proc.pid")),
            user=_s(g("user.name")),
        ),
        syscall=evt_type,
        sensor_rule=rule,
        sensor_priority=_s(obj.get("priority")),
        tags=tuple(t for t in tags if type(t) is str) if type(tags) is list else (),
    )
    pname = _s(g("proc.pname"))
    if pname or g("proc.pcmdline"):
        pcmd = _s(g("proc.pcmdline"))
        ev.parent = Process(binary=pname or pcmd.partition(" ")[0], args=pcmd.partition(" ")[2])
    ev.ancestors = [a for a in (_s(g(f"proc.aname[{i}]")) for i in range(2, 8)) if a]
    caps = _s(g("thread.cap_effective"))
    ev.caps = tuple(caps.replace(",", " ").split()) if caps else ()
    up, memfd = g("proc.is_exe_upper_layer"), g("proc.is_exe_from_memfd")
    ev.exe_upper_layer = up if type(up) is bool else (up == "true" if type(up) is str else None)
    ev.exe_from_memfd = memfd if type(memfd) is bool else (memfd == "true" if type(memfd) is str else None)
    fd_name, fd_type = _s(g("fd.name")), _s(g("fd.type"))
    rip = _s(g("fd.rip")) or _s(g("fd.sip"))
    if fd_type in ("ipv4", "ipv6") or rip or "->" in fd_name:
        # fd.name of a connected socket is "lip:lport->rip:rport"
        remote = fd_name.rpartition("->")[2]
        host, _, port = remote.rpartition(":")
        ev.daddr = rip or host.strip("[]")
        ev.dport = _i(g("fd.rport")) if g("fd.rport") is not None else _i(port)
        if ev.kind in (ALERT, SYSCALL) and evt_type not in ("dup", "dup2", "dup3"):
            ev.kind = CONNECT
    elif fd_type == "unix" or (fd_name.endswith(".sock") and ev.kind == CONNECT):
        ev.socket_path = fd_name.split(" ")[0]
        ev.kind = CONNECT
    elif fd_name:
        ev.file_path = fd_name
        if ev.kind in (ALERT, SYSCALL) and evt_type not in (
            "ptrace",
            "mount",
            "memfd_create",
            "dup",
            "dup2",
            "dup3",
        ):
            ev.kind = FILE
    if ev.kind == FILE:
        flags = _s(g("evt.arg.flags"))
        low = rule.lower()
        if evt_type in _WRITE_CALLS or any(x in flags for x in _WRITE_FLAGS):
            ev.access = "write"
        elif "O_RDONLY" in flags or "read" in low:
            ev.access = "read"
        elif any(x in low for x in ("write", "modif", "release_agent", "create", "symlink", "hardlink")):
            ev.access = "write"
    if evt_type == "ptrace" or "ptrace" in rule.lower():
        req = _s(g("evt.arg.request"))
        ev.ptrace_request = PTRACE_REQUESTS.get(req.split("(")[0].strip(), _i(req))
        if ev.ptrace_request is None and "anti-debug" in rule.lower():
            ev.ptrace_request = 0
        elif ev.ptrace_request is None and "attach" in rule.lower():
            ev.ptrace_request = PTRACE_REQUESTS["PTRACE_ATTACH"]
        ev.syscall = "ptrace"
    return ev
