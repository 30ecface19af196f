"""The vendors' own API specifications, which the connector and emulator tests check exchanges against.

The authoritative files live beside the repository, in ../shared/vendor-specs/ (see its README for their
sources); they are read from there when present. Gzip'd copies of the same files are kept here, so that
a checkout on its own (CI) runs every spec check instead of skipping it; `test_copies.py` checks that
they are byte-identical to the shared files, and `python -m tests.vendor_specs` refreshes them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "vendor-specs"
NAMES = ("opsgenie.swagger.json", "pagerduty-mcp.openapi.json", "pagerduty-rest.openapi.json",
         "statuspage.openapi.yaml")


def spec_text(name: str) -> str:
    """The text of one spec file: the shared one if it is there, else the copy kept in the repository."""
    shared = SHARED / name
    if shared.exists():
        return shared.read_text(encoding="utf-8")
    return gzip.decompress((HERE / f"{name}.gz").read_bytes()).decode("utf-8")


def refresh() -> None:
    for name in NAMES:
        data = (SHARED / name).read_bytes()
        (HERE / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
