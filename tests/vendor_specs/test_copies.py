"""The repository's copies of the vendor specs are exactly the shared files."""

from __future__ import annotations

import gzip

import pytest

from tests.vendor_specs import HERE, NAMES, SHARED


@pytest.mark.parametrize("name", NAMES)
def test_the_copy_is_the_shared_file(name: str) -> None:
    copy = gzip.decompress((HERE / f"{name}.gz").read_bytes())
    if not SHARED.exists():
        pytest.skip(f"no {SHARED} beside this checkout to compare with; the copy is what the spec checks use")
    assert copy == (SHARED / name).read_bytes(), f"run `python -m tests.vendor_specs` to refresh {name}"
