"""Identifiers the proxy makes for every call and record: unique, not secret.

Drawn from one generator seeded by the OS once per process, not from the OS each time: a call took three
`os.urandom` system calls for its call id and trace ids. Nothing here may be used for a secret (a PKCE
verifier, an OAuth state, a token): those use `secrets`.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))


def random_bits(n: int) -> int:
    return _random.getrandbits(n)


def random_hex(n_bytes: int) -> str:
    """`n_bytes` random bytes as lower-case hex, never all zero (W3C trace ids may not be)."""
    while not (value := _random.getrandbits(n_bytes * 8)):
        pass
    return f"{value:0{n_bytes * 2}x}"
