"""Logging for `serve` and the commands: stderr (clients show it) and a rotating file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
            file_handler = logging.handlers.RotatingFileHandler(
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
