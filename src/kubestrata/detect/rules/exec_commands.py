"""What the exec rules (native_exec: KS-AUD-N06..N08) find in an exec command, judged once per
distinct command: a tar writing to stdout, a read of a projected token, suspicious patterns.

Its own module, registering no rule: rules.facts asks it for the exec facts of an event (so that
the pipeline does not call those rules on the usual exec, whose command has none of these), and
native_exec asks it in the rules themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from kubestrata.detect.event import AuditEvent
from kubestrata.detect.rules.lists import (
    DOWNLOAD_AND_RUN,
    HOST_SECRETS,
    METADATA_SERVICE,
    REVERSE_SHELL,
    SA_TOKEN,
)


def _is_tar_to_stdout(cmd: Sequence[str]) -> bool:
    if not cmd or not cmd[0].rsplit("/", 1)[-1] == "tar":
        return False
    args = cmd[1:]
    for i, a in enumerate(args):
        if a in ("-f", "--file") and i + 1 < len(args) and args[i + 1] == "-":
            return True
        if a.startswith("--file=") and a[7:] == "-":
            return True
        if not a.startswith("--") and a.lstrip("-").endswith("f") and "c" in a and i + 1 < len(args):
            if args[i + 1] == "-":
                return True
    return False


_SUSPICIOUS = (
    (REVERSE_SHELL, "reverse shell"),
    (DOWNLOAD_AND_RUN, "download and run"),
    (METADATA_SERVICE, "cloud metadata service"),
    (HOST_SECRETS, "host credentials"),
)


class _Verdict(NamedTuple):
    """What the exec rules find in one command: tar to stdout, a token read, suspicious patterns."""

    tar_to_stdout: bool
    token_read: bool
    suspicious: tuple[str, ...]


def _judge(cmd: tuple[str, ...]) -> _Verdict:
    text = " ".join(cmd)
    return _Verdict(
        _is_tar_to_stdout(cmd),
        bool(cmd and SA_TOKEN.search(text)),
        tuple(why for rx, why in _SUSPICIOUS if rx.search(text)),
    )


# ``sh -c ...`` repeats from event to event: a command seen before is not searched again. A dict
# of verdicts by command (bounded: clients choose commands), not an lru_cache: a hit is one lookup
_VERDICTS: dict[tuple[str, ...], _Verdict] = {}
_REMEMBERED_TEXT_MAX = 4096  # longer commands are judged anew each time (bounded memory)
_REMEMBERED_MAX = 4096


def _verdict(ev: AuditEvent) -> _Verdict:
    """The verdict on the event's exec command, once per event."""
    memo = ev.memo
    v: _Verdict | None = memo.get(_verdict)
    if v is None:
        cmd = tuple(ev.exec_command())
        v = _VERDICTS.get(cmd)
        if v is None:
            v = _judge(cmd)
            if len(" ".join(cmd)) < _REMEMBERED_TEXT_MAX:
                if len(_VERDICTS) >= _REMEMBERED_MAX:
                    _VERDICTS.clear()
                _VERDICTS[cmd] = v
        memo[_verdict] = v
    return v
