"""Logging for `serve` and the commands: stderr (clients show it) and a rotating file."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import cast

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files readable by this user only (0600 on POSIX), the first one and every one after a rotation."""

    def _open(self) -> io.TextIOWrapper:  # logging's own signature
        def private(path: str, flags: int) -> int:
            return os.open(path, flags, 0o600)

        stream = open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,  # noqa: SIM115
                      opener=private if os.name == "posix" else None)
        if os.name == "posix":
            os.chmod(self.baseFilename, 0o600)  # a file an older version created 0644
        return cast(io.TextIOWrapper, stream)  # text mode: open() returns a TextIOWrapper


def setup_logging(level: str, log_dir: Path | None, *, to_file: bool = True) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    numeric = getattr(logging, level.upper(), logging.INFO)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("mcp-access-proxy %(levelname)s: %(message)s"))
    root.addHandler(stderr)
    if to_file and log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            if os.name == "posix":  # the log names users (emails) and upstreams: for this user only
                # not ours (a shared MCP_ACCESS_PROXY_HOME): the file itself is still 0600
                with contextlib.suppress(OSError):
                    log_dir.chmod(0o700)
            file_handler = _PrivateRotatingFileHandler(
                log_dir / "mcp-access-proxy.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8")
            file_handler.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(file_handler)
        except OSError as exc:
            stderr.handle(logging.makeLogRecord({"msg": f"cannot write logs to {log_dir} ({exc.strerror})",
                                                 "levelno": logging.WARNING, "levelname": "WARNING"}))
    root.setLevel(numeric)
    # The SDK logs full tracebacks of handler errors, which can carry secrets from exception text:
    # keep its loggers at warnings unless debugging.
    for name in ("mcp", "client", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    logging.captureWarnings(True)
