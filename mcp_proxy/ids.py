"""Identifiers the proxy makes for every call and record: unique, not secret.

Drawn from generators seeded by the OS once per process, not from the OS each time: a call took three
`os.urandom` system calls for its call id and trace ids. Nothing here may be used for a secret (a PKCE
verifier, an OAuth state, a token): those use `secrets`. Trace and span ids, which every upstream is sent,
come from a generator of their own: the generator's state can be worked out from enough of its outputs,
and what an upstream sees should tell it nothing of the ids in the audit log.
"""

from __future__ import annotations

import os
import random

_internal = random.Random(os.urandom(32))  # call ids, audit record ids
_outbound = random.Random(os.urandom(32))  # trace and span ids (W3C traceparent, sent upstream)


def random_bits(n: int) -> int:
    return _internal.getrandbits(n)


def random_hex(n_bytes: int) -> str:
    """`n_bytes` random bytes as lower-case hex (a call id)."""
    return _hex(_internal, n_bytes)


def trace_hex(n_bytes: int) -> str:
    """`n_bytes` random bytes as lower-case hex, for a trace or span id."""
    return _hex(_outbound, n_bytes)


def _hex(generator: random.Random, n_bytes: int) -> str:
    """Never all zero: W3C trace ids may not be, and no id should look unset."""
    while not (value := generator.getrandbits(n_bytes * 8)):
        pass
    return f"{value:0{n_bytes * 2}x}"
