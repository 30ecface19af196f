"""Child processes that write the file secret store at once, for the concurrency tests.

`python tests/_support/secret_writers.py set FILE PREFIX COUNT` stores PREFIX-0..COUNT-1 through `SecretStore`
(as `secret set` does); `... token DATA_DIR COUNT` rewrites one token entry COUNT times through `SecretVault`
(as a token refresh does). Each waits for the file GO next to FILE (or in DATA_DIR) before starting, so that
all of them run at the same time; each prints "ready" once it waits for it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

TOKEN_ENTRY = "oauth:pd"


def _wait_for_go(directory: Path) -> None:
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not (directory / "GO").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no GO file within 60 s")
        time.sleep(0.01)


def _setter(file_path: Path, prefix: str, count: int) -> None:
    from mcp_proxy.config import SecretStore

    store = SecretStore("file", file_path, warn=False)
    _wait_for_go(file_path.parent)
    for i in range(count):
        store.set(f"{prefix}-{i}", f"value-{prefix}-{i}")


def _refresher(data_dir: Path, count: int) -> None:
    from mcp_proxy.auth.vault import SecretVault
    from mcp_proxy.config import SecretStore
    from mcp_proxy.paths import Paths

    root = data_dir.parent
    paths = Paths(root / "config", data_dir, root / "cache", root / "logs")
    vault = SecretVault(SecretStore("file", data_dir / "secrets.json", warn=False), paths)
    _wait_for_go(data_dir)
    for generation in range(1, count + 1):
        vault.put_json(TOKEN_ENTRY, {"refresh_token": f"rotated-{generation}", "generation": generation})


def main(argv: list[str]) -> None:
    if argv[0] == "set":
        _setter(Path(argv[1]), argv[2], int(argv[3]))
    elif argv[0] == "token":
        _refresher(Path(argv[1]), int(argv[2]))
    else:
        raise SystemExit(f"unknown role {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
