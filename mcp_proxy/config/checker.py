"""Typed reads of one parsed TOML table, collecting every problem with its key path and the fix, so that
one run of the loader reports all of a file's problems at once."""

from __future__ import annotations

import difflib
import re
from typing import Any
from urllib.parse import urlsplit

from mcp_proxy.config.secrets import SecretRef

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, msg: str) -> None:
        self.problems.append(msg)

    def table(self, data: Any, where: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.add(f"{where}: must be a table ([{where}]), not {type(data).__name__}")
            return {}
        return data

    def known(self, data: dict[str, Any], where: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"allowed keys: {', '.join(sorted(allowed))}"
                self.add(f"{where}.{key}: unknown key; {fix}")

    def string(self, data: dict[str, Any], key: str, where: str, default: str | None = None,
               choices: tuple[str, ...] | None = None) -> str | None:
        value = data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(f"{where}.{key}: must be a string, e.g. {key} = \"...\"")
            return default
        if choices and value not in choices:
            self.add(f"{where}.{key}: {value!r} is not one of {', '.join(choices)}")
            return default
        return value

    def number(self, data: dict, key: str, where: str, default: float, minimum: float = 0.0) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(f"{where}.{key}: must be a number")
            return default
        if value <= minimum:
            self.add(f"{where}.{key}: must be greater than {minimum:g}")
            return default
        return float(value)

    def integer(self, data: dict, key: str, where: str, default: int, minimum: int = 1) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(f"{where}.{key}: must be a whole number")
            return default
        if value < minimum:
            self.add(f"{where}.{key}: must be at least {minimum}")
            return default
        return value

    def boolean(self, data: dict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.add(f"{where}.{key}: must be true or false")
            return default
        return value

    def strings(self, data: dict, key: str, where: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(f"{where}.{key}: must be a list of strings, e.g. {key} = [\"a\", \"b\"]")
            return ()
        return tuple(value)

    def secret(self, data: dict, key: str, where: str) -> SecretRef | None:
        value = data.get(key)
        if value is None:
            return None
        path = f"{where}.{key}"
        if not isinstance(value, str):
            self.add(f"{path}: must be a secret reference string like \"keyring:NAME\" or \"env:NAME\"")
            return None
        ref = SecretRef.parse(value, path)
        if ref is None:
            # Never echo the value: it may be the secret itself.
            self.add(
                f"{path}: a plain value is not allowed for a secret; store it with "
                f"`mcp-access-proxy secret set NAME` and write {key} = \"keyring:NAME\" (or \"env:NAME\")"
            )
        return ref

    def mapping(self, data: dict[str, Any], key: str, where: str, secret_keys: re.Pattern[str] | None,
                all_secret: bool = False) -> dict[str, str | SecretRef]:
        value = data.get(key, {})
        path = f"{where}.{key}"
        if not isinstance(value, dict):
            self.add(f"{path}: must be a table of strings, e.g. {key} = {{ NAME = \"value\" }}")
            return {}
        out: dict[str, str | SecretRef] = {}
        for name, item in value.items():
            item_path = f"{path}.{name}"
            if not isinstance(item, str):
                self.add(f"{item_path}: must be a string")
                continue
            ref = SecretRef.parse(item, item_path)
            if ref is not None:
                out[name] = ref
            elif all_secret or (secret_keys is not None and secret_keys.search(name)):
                self.add(
                    f"{item_path}: looks like a credential, so a plain value is not allowed; store it with "
                    f"`mcp-access-proxy secret set NAME` and write \"keyring:NAME\" (or \"env:NAME\")"
                )
            else:
                out[name] = item
        return out

    def url(self, value: str | None, path: str, loopback_http_only: bool = True) -> None:
        if value is None:
            return
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.add(f"{path}: {value!r} is not an http(s) URL")
        elif parts.scheme == "http" and loopback_http_only and parts.hostname not in LOOPBACK_HOSTS:
            self.add(f"{path}: plain http:// is allowed only for a loopback host; use https://")
