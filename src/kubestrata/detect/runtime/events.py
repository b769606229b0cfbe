"""One runtime event model for every sensor: what ran, where, and what it touched.

Tetragon (tetragon.py) and Falco (falco_input.py) events are normalised into ``RuntimeEvent``; the
runtime rules (rules.py) read only this model, so a rule is written once for both sensors. Every
string here is raw sensor data (process arguments, file paths, pod names are attacker-influenced):
it is escaped when a finding is built (detect/emit.py), never before, so rules match the real bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# event kinds the rules understand
EXEC = "exec"  # a process started (execve)
EXIT = "exit"  # a process ended
FILE = "file"  # a file was opened / read / written (``access`` says which)
CONNECT = "connect"  # an outbound network connection
SYSCALL = "syscall"  # another traced call (ptrace, memfd_create, mount, setns ...): ``syscall`` names it
ALERT = "alert"  # a sensor's own alert whose underlying call is unknown (Falco without evt.type)


class UnknownEventType(Exception):
    """A well-formed record of a type the adapters do not read (counted and skipped)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(slots=True)
class Process:
    binary: str = ""  # absolute path of the executable, as the sensor saw it
    args: str = ""  # arguments without argv[0], space-joined (Tetragon's form)
    cwd: str = ""
    uid: int | None = None
    pid: int | None = None
    exec_id: str = ""  # Tetragon's cluster-unique id; "" for Falco
    user: str = ""

    @property
    def name(self) -> str:
        return self.binary.rsplit("/", 1)[-1]

    @property
    def cmdline(self) -> str:
        return f"{self.binary} {self.args}".strip() if self.args else self.binary


@dataclass(slots=True)
class RuntimeEvent:
    source: str  # "tetragon" | "falco"
    kind: str  # one of the kinds above
    time: str = ""  # RFC 3339
    node: str = ""
    cluster: str = ""
    namespace: str = ""
    pod: str = ""
    container: str = ""
    container_id: str = ""
    image: str = ""
    workload: str = ""  # the pod's owner (Tetragon pod.workload)
    privileged: bool | None = None
    process: Process = field(default_factory=Process)
    parent: Process | None = None
    ancestors: list[str] = field(default_factory=list)  # binaries, nearest first (parent excluded)
    caps: tuple[str, ...] = ()  # effective capabilities when the sensor reports them
    # what the event touched
    syscall: str = ""  # kprobe function / Falco evt.type
    file_path: str = ""
    access: str = ""  # "read" | "write" | "" (unknown)
    daddr: str = ""
    dport: int | None = None
    socket_path: str = ""  # a unix socket connected to
    ptrace_request: int | None = None
    # properties of the executed file
    exe_upper_layer: bool | None = None  # written in the container (overlayfs upper layer)
    exe_from_memfd: bool | None = None  # memfd / deleted / shm-backed
    # a sensor alert this event came from (Falco), its tags
    sensor_rule: str = ""
    sensor_priority: str = ""
    tags: tuple[str, ...] = ()

    @property
    def in_container(self) -> bool:
        return bool(self.container_id or self.pod)

    @property
    def where(self) -> str:
        """namespace/pod (container) for messages."""
        target = "/".join(x for x in (self.namespace, self.pod) if x) or self.container_id or self.node
        return f"{target} ({self.container})" if self.container else target
