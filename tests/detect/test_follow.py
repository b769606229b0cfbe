from __future__ import annotations

import os
import threading
import time

from kubestrata.detect.sources import Oversize, follow_lines


def test_follow_appends_partial_lines_rotation_and_oversize(tmp_path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"a":1}\n')
    stop = threading.Event()
    got: list = []

    def reader() -> None:
        for line in follow_lines(str(path), 64, stop, poll=0.02):
            if line is not None:
                got.append(line)

    t = threading.Thread(target=reader)
    t.start()
    with path.open("ab") as fh:
        fh.write(b'{"b":')  # half a line: must wait for the rest
        fh.flush()
        time.sleep(0.1)
        fh.write(b"2}\n" + b"x" * 200 + b"\n")
    time.sleep(0.2)
    os.rename(path, tmp_path / "audit.log.1")  # rotation
    path.write_bytes(b'{"c":3}\n')
    deadline = time.time() + 5
    while len(got) < 4 and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(5)
    assert got[:2] == [b'{"a":1}', b'{"b":2}']
    assert isinstance(got[2], Oversize)
    assert got[3] == b'{"c":3}'
