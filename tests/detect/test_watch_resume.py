"""Issue 11: `detect watch FILE` kept no read position, so a restart silently dropped what was
written while it was down (2,383 of 6,000 events in a kill-and-restart trial). A real
`kubestrata detect watch` subprocess is killed (SIGKILL, no chance to clean up) and restarted
while a writer appends, once across a rotation; every event must be read."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from kubestrata.detect.sources import FileFollower, FilePosition, head_digest
from kubestrata.detect.statedb import WatchPositions, make_engine
from tests.detect.helpers import event

REPO = Path(__file__).resolve().parents[2]


def _line(i: int) -> bytes:
    ev = event("get", "secrets", name=f"s{i:05d}", namespace="shop", auditID=f"id-{i}")
    return orjson.dumps(ev) + b"\n"


def _watch(log: Path, db: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "kubestrata", "detect", "watch", str(log), "--state", str(db),
           "--only", "KS-AUD-F50", "--dedup-window", "86400", *extra]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _findings(db: Path) -> int:
    """Distinct secret-read findings stored: one per event read (each reads another secret)."""
    try:
        with sqlite3.connect(db) as c:
            row = c.execute("select count(*) from ks_findings where rule_id='KS-AUD-F50'").fetchone()
    except sqlite3.Error:
        return 0
    return row[0]


def _wait(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_kill_and_restart_while_writing_loses_no_event(tmp_path: Path) -> None:
    log, db = tmp_path / "audit.log", tmp_path / "state.db"
    total, rotate_at = 3000, 1500
    written = 0
    rotate_now = threading.Event()  # set while the watcher is down: the writer rotates the file
    rotated = threading.Event()

    def writer() -> None:  # about 500 events/s
        nonlocal written
        fh = log.open("ab")
        for i in range(total):
            if i == rotate_at:
                rotate_now.wait(120)
                fh.close()
                os.rename(log, tmp_path / "audit.log.1")  # logrotate's rename
                fh = log.open("ab")
                rotated.set()
            fh.write(_line(i))
            fh.flush()
            written = i + 1
            if i % 10 == 9:
                time.sleep(0.02)
        fh.close()

    def kill_after_some_reading() -> None:
        before = _findings(db)
        _wait(lambda: _findings(db) > before + 100, 10)
        proc.send_signal(signal.SIGKILL)  # no chance to save anything
        proc.wait(30)

    log.write_bytes(_line(total))  # one event before anything runs: shows the watcher is up
    proc = _watch(log, db, "--from-start")
    assert _wait(lambda: _findings(db) >= 1), "the watcher did not start"
    w = threading.Thread(target=writer)
    w.start()
    kill_after_some_reading()
    time.sleep(0.5)  # events keep arriving while nothing watches
    proc = _watch(log, db)  # a restart without --from-start: resumes from the saved position
    kill_after_some_reading()
    rotate_now.set()  # rotated while the watcher is down
    assert _wait(rotated.is_set, 30)
    time.sleep(0.5)
    proc = _watch(log, db)
    kill_after_some_reading()
    time.sleep(0.5)
    proc = _watch(log, db)
    w.join(120)
    kill_after_some_reading()
    final = _watch(log, db, "--once")  # resumes and stops at the end of the file
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    with sqlite3.connect(db) as c:
        seen = c.execute(
            "select count(distinct fingerprint) from ks_findings where rule_id='KS-AUD-F50'"
        ).fetchone()
    assert seen[0] == total + 1, f"{total + 1 - seen[0]} of {total + 1} events lost"


def test_resume_notes_rotation_without_the_old_file(tmp_path: Path, caplog) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(_line(1) + _line(2))
    st = log.stat()
    with log.open("rb") as fh:
        old = FilePosition(st.st_dev, st.st_ino, len(_line(1)), head_digest(fh.fileno(), len(_line(1))))
    log.unlink()  # rotated and compressed away
    log.write_bytes(_line(3))
    stop = threading.Event()
    f = FileFollower(str(log), 1 << 20, stop, poll=0.01, from_start=False, resume=old)
    got = []
    for line in f:
        if line is None:
            break
        got.append(line)
    assert got == [_line(3).rstrip(b"\n")]
    # the filesystem may give the new file the old inode: the head digest tells them apart
    assert (
        "is gone" in f.notes[0] or "is not the file" in f.notes[0]
    ) and f"after byte {len(_line(1))}" in f.notes[0]
    # the same inode, shorter than the position: truncated, read from 0
    st = log.stat()
    f = FileFollower(str(log), 1 << 20, stop, poll=0.01, resume=FilePosition(st.st_dev, st.st_ino, 10**6))
    assert next(iter(f)) == _line(3).rstrip(b"\n") and "truncated" in f.notes[0]


def test_positions_in_the_state_store(state_url: str) -> None:
    engine = make_engine(state_url)
    p = WatchPositions(engine)
    assert p.load("c|/var/log/audit.log") is None
    assert p.save("c|/var/log/audit.log", 2049, 2**40 + 7, 2**33 + 5)  # 64-bit inodes, >4 GiB files
    assert p.save("c|/var/log/audit.log", 2049, 2**40 + 7, 2**33 + 9, "ab" * 16)
    assert WatchPositions(engine).load("c|/var/log/audit.log") == (2049, 2**40 + 7, 2**33 + 9, "ab" * 16)
    engine.dispose()
