"""`ids.unique_hex`: unique, well-formed, and different in a forked child than in its parent."""

from __future__ import annotations

import os
import re

from gatewayz.ids import unique_hex


def test_ids_are_hex_of_the_asked_length_and_do_not_repeat() -> None:
    ids = [unique_hex(6) for _ in range(100_000)]
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert len(unique_hex(16)) == 32


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, ",".join(unique_hex(16) for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    mine = [unique_hex(16) for _ in range(5)]
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split(",")
    os.close(read)
    assert len(child) == 5 and not set(child) & set(mine)
