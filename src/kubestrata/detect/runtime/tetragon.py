"""Tetragon's JSON export (``tetra getevents -o json``, /var/log/tetragon/tetragon.log) as runtime
events.

Shape (cilium/tetragon api/v1/tetragon/events.proto, GetEventsResponse; protojson with proto field
names): one event per line, one body key (``process_exec``, ``process_exit``, ``process_kprobe`` ...)
next to the envelope (``node_name``, ``time``, ``cluster_name``). 64-bit integers may arrive as JSON
strings, empty fields are omitted. Bodies this module does not read (``process_loader``,
``process_uprobe``, ``process_throttle``, ``rate_limit_info`` ...) raise UnknownEventType.
"""

from __future__ import annotations

from typing import Any

from kubestrata.detect.event import BadEvent
from kubestrata.detect.runtime.events import (
    CONNECT,
    EXEC,
    EXIT,
    FILE,
    SYSCALL,
    Process,
    RuntimeEvent,
    UnknownEventType,
)

BODIES = ("process_exec", "process_exit", "process_kprobe", "process_tracepoint", "process_lsm")
OTHER_BODIES = frozenset(
    (
        "process_loader",
        "process_uprobe",
        "process_throttle",
        "process_usdt",
        "rate_limit_info",
        "test",
        # legacy types of 2021-22 agents (security-observability-with-ebpf book), gone from today's proto
        "process_connect",
        "process_close",
        "process_listen",
        "process_dns",
    )
)
# security_file_permission's mask argument (include/linux/fs.h MAY_WRITE / MAY_READ; Tetragon's
# docs/content/en/docs/use-cases/filename-access.md: "int_arg 2 = write, 4 = read")
MAY_WRITE, MAY_READ, MAY_APPEND = 2, 4, 8


def is_tetragon(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in BODIES) or (
        ("node_name" in obj or "time" in obj)
        and any(k in OTHER_BODIES or k.startswith("process_") for k in obj)
    )


def _int(v: Any) -> int | None:
    if type(v) is int:
        return v
    if type(v) is str and v.lstrip("-").isdigit():
        return int(v)
    return None


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    v = obj.get(key)
    if v is None:
        return ""
    if type(v) is not str:
        raise BadEvent(f"{where}.{key}: expected a string, got {type(v).__name__}")
    return v


def _dict(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = obj.get(key)
    if v is None:
        return {}
    if type(v) is not dict:
        raise BadEvent(f"{where}.{key}: expected an object, got {type(v).__name__}")
    return v


def _process(p: dict[str, Any], where: str) -> Process:
    g = p.get
    binary, args, cwd, exec_id, user = (
        g("binary", ""),
        g("arguments", ""),
        g("cwd", ""),
        g("exec_id", ""),
        g("user"),
    )
    if not (type(binary) is str and type(args) is str and type(cwd) is str and type(exec_id) is str):
        for key in ("binary", "arguments", "cwd", "exec_id"):
            _str(p, key, where)  # names the bad field
    name = ""
    if user is not None:
        name = _str(_dict(p, "user", where), "name", where + ".user")
    return Process(binary, args, cwd, _int(g("uid")), _int(g("pid")), exec_id, name)


def parse(obj: dict[str, Any]) -> RuntimeEvent:
    """One decoded Tetragon export line as a RuntimeEvent (BadEvent names the bad field)."""
    kind = next((k for k in BODIES if k in obj), None)
    if kind is None:
        other = next((k for k in obj if k in OTHER_BODIES or k.startswith("process_")), "unknown")
        raise UnknownEventType(f"tetragon:{other}")
    body = obj[kind]
    if type(body) is not dict:
        raise BadEvent(f"{kind}: expected an object, got {type(body).__name__}")
    proc = _dict(body, "process", kind)
    if not proc:
        raise BadEvent(f"{kind}.process: missing")
    pod = _dict(proc, "pod", kind + ".process")
    container = _dict(pod, "container", kind + ".process.pod")
    image = _dict(container, "image", kind + ".process.pod.container")
    secctx = _dict(container, "security_context", kind + ".process.pod.container")
    caps = _dict(proc, "cap", kind + ".process").get("effective") or ()
    ancestors = body.get("ancestors") or []
    ev = RuntimeEvent(
        source="tetragon",
        kind=EXEC,
        time=_str(obj, "time", "envelope") or _str(proc, "start_time", kind + ".process"),
        node=_str(obj, "node_name", "envelope"),
        cluster=_str(obj, "cluster_name", "envelope"),
        namespace=_str(pod, "namespace", "pod"),
        pod=_str(pod, "name", "pod"),
        container=_str(container, "name", "pod.container"),
        container_id=_str(container, "id", "pod.container") or _str(proc, "docker", kind + ".process"),
        image=_str(image, "name", "pod.container.image"),
        workload=_str(pod, "workload", "pod"),
        privileged=secctx.get("privileged") if type(secctx.get("privileged")) is bool else None,
        process=_process(proc, kind + ".process"),
        caps=tuple(c for c in caps if type(c) is str) if type(caps) is list else (),
    )
    parent = _dict(body, "parent", kind)
    if parent:
        ev.parent = _process(parent, kind + ".parent")
    if type(ancestors) is list:
        ev.ancestors = [a["binary"] for a in ancestors if type(a) is dict and type(a.get("binary")) is str]
    if kind == "process_exec":
        props = _dict(proc, "binary_properties", kind + ".process")
        f = _dict(props, "file", "binary_properties")
        links = _int(_dict(f, "inode", "binary_properties.file").get("links"))
        b = ev.process.binary
        # binary_properties.file is set only for memfd / shm-backed or deleted executables (tetragon.proto)
        ev.exe_from_memfd = bool(f) and links in (0, None) or b.startswith(("/proc/self/fd/", "memfd:"))
    elif kind == "process_exit":
        ev.kind = EXIT
    else:
        _call(ev, body, kind)
    return ev


def _call(ev: RuntimeEvent, body: dict[str, Any], kind: str) -> None:
    """What a kprobe / tracepoint / LSM event touched: file paths, sockets, ptrace requests."""
    fn = _str(body, "function_name", kind) or _str(body, "event", kind)
    ev.syscall = fn
    ev.kind = SYSCALL
    args = body.get("args") or []
    if type(args) is not list:
        raise BadEvent(f"{kind}.args: expected a list, got {type(args).__name__}")
    ints: list[int] = []
    for i, a in enumerate(args):
        if type(a) is not dict:
            continue
        for key in ("file_arg", "path_arg", "linux_binprm_arg"):
            fa = a.get(key)
            if type(fa) is dict and type(fa.get("path")) is str and not ev.file_path:
                path = fa["path"]
                # older agents printed d_path without its leading slash ("etc/passwd" in the
                # security-observability-with-ebpf book's process_kprobe.json)
                ev.file_path = path if path.startswith("/") or not path else "/" + path
        sock = a.get("sock_arg")
        if type(sock) is dict:
            ev.daddr = ev.daddr or str(sock.get("daddr") or "")
            ev.dport = ev.dport if ev.dport is not None else _int(sock.get("dport"))
        sa = a.get("sockaddr_arg")
        if type(sa) is dict:
            ev.daddr = ev.daddr or str(sa.get("addr") or "")
            ev.dport = ev.dport if ev.dport is not None else _int(sa.get("port"))
        su = a.get("sockaddrun_arg")
        if type(su) is dict and type(su.get("path")) is str:
            ev.socket_path = su["path"]
        for key in ("int_arg", "long_arg", "uint_arg", "size_arg"):
            if key in a:
                n = _int(a[key])
                if n is not None:
                    ints.append(n)
        if (
            type(a.get("string_arg")) is str
            and i == 0
            and not ev.file_path
            and a["string_arg"].startswith("/")
        ):
            ev.file_path = a["string_arg"]  # e.g. sys_openat policies that read the name as a string
    name = fn.lower()
    if ev.daddr or ev.socket_path or "connect" in name:
        ev.kind = CONNECT
    elif "ptrace" in name:
        ev.ptrace_request = ints[0] if ints else None
    elif ev.file_path and not any(s in name for s in ("mount", "memfd", "setns", "unshare")):
        ev.kind = FILE
        if name == "security_file_permission" and ints:
            mask = ints[0]
            ev.access = "write" if mask & (MAY_WRITE | MAY_APPEND) else "read" if mask & MAY_READ else ""
        elif any(s in name for s in ("write", "truncate", "rename", "unlink", "chmod", "chown", "link")):
            ev.access = "write"
        elif "read" in name:
            ev.access = "read"
