"""Our server entry in a client's config: which launcher to write, and recognising it later."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from mcp_proxy.clients.table import ClientSpec

LAUNCHER_NAME = "mcp-access-proxy"
_EXE_SUFFIXES = (".exe", ".cmd", ".bat")


@dataclass(frozen=True)
class Launcher:
    """How a client should start the proxy: an absolute command and leading args."""

    command: str
    args: tuple[str, ...] = ()
    source: str = "venv"  # "venv" (next to this Python) | "path" (found on PATH) | "python" (-m fallback)
    ephemeral: bool = False  # inside a uv/uvx cache that may be cleaned away


def _is_ephemeral(path: str) -> bool:
    # `uvx --from ... mcp-access-proxy install` runs from uv's cache: the path works today but
    # disappears on `uv cache clean`; tool installs (`uv tool install`) live elsewhere and are stable.
    p = path.replace("\\", "/").lower()
    return "/uv/archive-v" in p or "/uv/builds-v" in p or "/.cache/uv/" in p or "/uv/cache/" in p


def find_launcher() -> Launcher:
    """The absolute launcher of *this* installation (GUI apps do not see the shell's PATH).

    The console script next to the running interpreter wins over one found on
    PATH: a venv that is not activated still gets its own launcher written.
    """
    bindir = Path(sys.executable).parent
    names = [f"{LAUNCHER_NAME}.exe", LAUNCHER_NAME] if os.name == "nt" else [LAUNCHER_NAME]
    for name in names:
        candidate = bindir / name
        if candidate.is_file():
            path = str(candidate.absolute())
            return Launcher(path, (), "venv", _is_ephemeral(path))
    found = shutil.which(LAUNCHER_NAME)
    if found:
        path = os.path.abspath(found)
        return Launcher(path, (), "path", _is_ephemeral(path))
    exe = os.path.abspath(sys.executable)
    return Launcher(exe, ("-m", "mcp_proxy"), "python", _is_ephemeral(exe))


def build_entry(spec: ClientSpec, launcher: Launcher, proxy_config: Path | None = None,
                env: dict[str, str] | None = None, existing: Any = None) -> dict[str, Any]:
    """The entry to write; keeps the user's extra keys (env, disabled…) when `existing` is ours."""
    args = [*launcher.args]
    if proxy_config is not None:
        args += ["--config", str(proxy_config)]
    base = dict(existing) if isinstance(existing, dict) and looks_like_ours(existing) else {}
    entry: dict[str, Any] = {}
    if spec.entry_type and "type" not in base:
        entry["type"] = spec.entry_type  # first, as VS Code's own examples write it
    entry.update(base)
    if spec.entry_type:
        entry["type"] = spec.entry_type
    entry["command"] = launcher.command
    entry["args"] = args
    if env:
        merged = dict(entry.get("env") or {}) if isinstance(entry.get("env"), dict) else {}
        merged.update(env)
        entry["env"] = merged
    return entry


def looks_like_ours(entry: Any) -> bool:
    """Whether a server entry starts mcp-access-proxy (directly, via python -m, or via uvx/uv tool run)."""
    if not isinstance(entry, dict):
        return False
    command = entry.get("command")
    raw_args = entry.get("args")
    args = raw_args if isinstance(raw_args, list) else []
    if isinstance(command, str) and _stem(command) == LAUNCHER_NAME:
        return True
    strs = [a for a in args if isinstance(a, str)]
    if any(_stem(a) == LAUNCHER_NAME for a in strs):
        return True
    return any(a == "-m" and i + 1 < len(strs) and strs[i + 1] == "mcp_proxy" for i, a in enumerate(strs))


def _stem(value: str) -> str:
    name = PurePath(value.replace("\\", "/")).name.lower()
    for suffix in _EXE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def config_arg(args: list[Any] | tuple[Any, ...]) -> str | None:
    """The value of `--config PATH` (or `--config=PATH`) in an entry's args."""
    strs = [a for a in args if isinstance(a, str)]
    for i, a in enumerate(strs):
        if a == "--config" and i + 1 < len(strs):
            return strs[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None
