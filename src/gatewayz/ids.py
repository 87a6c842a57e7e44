"""Identifiers that must be unique, not secret: request ids, completion and message ids, hold ids.

`secrets` reads the kernel's random source on every call (a system call each); these come from
a per-process generator seeded from it once, and again in every forked child, at about a tenth
of the cost. Never use them for anything a caller must not guess (keys, tokens, signing
secrets): those come from `secrets`.
"""

from __future__ import annotations

import os
import random

_rng = random.Random()
os.register_at_fork(after_in_child=_rng.seed)


def unique_hex(nbytes: int) -> str:
    """`nbytes` random bytes as 2 × `nbytes` lower-case hex digits (unique, not secret)."""
    return f"{_rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"
