"""The first answers of a session, given again from the last session's while the MCP SDK loads.

A desktop client starts every configured server at once and waits for `initialize` and the first
`tools/list`. Loading the SDK (its protocol models) is most of the proxy's start-up, so the answers the SDK
gave are kept (`<cache>/first-answers.json`) and given again at once, before it is loaded, when nothing they
depend on has changed:

- `initialize`: the SDK's answer to the same requested protocol version, from the same proxy version and
  config file (the answer depends on nothing else).
- `tools/list`, after an early `initialize`: the list last given to the same client (by its
  `clientInfo.name`: the list can depend on it, as the search mode starts by itself past a client's tool
  limit) on the same negotiated version, when the config, the active policy revision, every upstream's
  cached tool list and the stored sign-ins are as they were. Even then, every tool in it is checked again,
  as the policy stands now and for the user of now: the upstream definition kept with the answer must give
  the tool's exposed name, the policy must allow it (so a pinned hash must match), and the tool as listed
  must hold nothing that definition does not (the SDK's per-version sieve only drops fields). A list
  failing any check is not given: the client waits for the SDK, as it would with no file. So the file can
  make a start faster, never show a tool the policy would not.

- `server/discover` (2026-07-28): the SDK's answer at the same protocol version, from the same proxy
  version and config file; then a stateless `tools/list` as above, by the version and clientInfo in its
  `_meta`.

The server records what the SDK answers (server/early_session.py decides what, server/wire.py moves the
messages), so the file follows every change on its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mcp_proxy import __version__
from mcp_proxy.catalog.cache import cache_file_name
from mcp_proxy.catalog.catalog import is_builtin, tool_facts
from mcp_proxy.catalog.names import exposed_name
from mcp_proxy.config import Config
from mcp_proxy.fsutil import atomic_write
from mcp_proxy.paths import Paths
from mcp_proxy.policy import PolicyEngine
from mcp_proxy.policy.access_tools import access_tool_definitions
from mcp_proxy.policy.constraints import narrowed_schema

log = logging.getLogger(__name__)

FORMAT = 2
JsonObject = dict[str, Any]


class ListedCatalog(Protocol):
    """What recording a list needs of the running server (server/hub.py)."""

    def listed_sources(self, names: list[str]) -> dict[str, tuple[str, JsonObject]]:
        """exposed name -> (upstream key, the upstream's own definition), for the named tools."""

    def cached_tool_lists(self) -> dict[str, Any]:
        """The tool lists in use that the tool cache keeps, by cache file name (what the files hold once written)."""


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _within(shown: object, full: object) -> bool:
    """Whether `shown` is `full` with, at most, some object fields left out (what a sieve does)."""
    if isinstance(shown, dict) and isinstance(full, dict):
        return all(k in full and _within(v, full[k]) for k, v in shown.items())
    if isinstance(shown, list) and isinstance(full, list):
        return len(shown) == len(full) and all(_within(a, b) for a, b in zip(shown, full, strict=True))
    return shown == full and type(shown) is type(full)


class FirstAnswers:
    def __init__(self, config: Config, paths: Paths, policy: PolicyEngine) -> None:
        self._config = config
        self._policy = policy
        self._file = paths.cache_dir / "first-answers.json"
        self._tool_cache_dir = paths.tool_cache_dir
        self._tokens_dir = paths.tokens_dir
        self._config_digest = _file_digest(config.path)
        self._data = self._read()
        self.catalog: ListedCatalog | None = None  # set once the server is built (recording a list needs it)
        # The last list kept per key by this process, with the user and policy revision it was kept under.
        self._recorded: dict[str, tuple[JsonObject, str | None, str | None]] = {}

    # -- reading ---------------------------------------------------------------
    def _read(self) -> JsonObject:
        fresh: JsonObject = {"format": FORMAT, "proxy_version": __version__, "config": self._config_digest,
                             "initialize": {}, "discover": {}, "lists": {}}
        try:
            data = json.loads(self._file.read_bytes())
        except (OSError, ValueError):
            return fresh
        if not isinstance(data, dict) or any(data.get(k) != fresh[k] for k in ("format", "proxy_version", "config")) \
                or not all(isinstance(data.get(k), dict) for k in ("initialize", "discover", "lists")):
            return fresh  # another proxy version or config: nothing in it holds
        return data

    def initialize(self, params: object) -> JsonObject | None:
        """The SDK's last answer to an `initialize` with these params' protocol version, if any."""
        version = params.get("protocolVersion") if isinstance(params, dict) else None
        answer = self._data["initialize"].get(version) if isinstance(version, str) else None
        return answer if isinstance(answer, dict) else None

    def discover(self, version: str) -> JsonObject | None:
        """The SDK's last answer to a 2026-07-28 `server/discover` at `version`, if any."""
        answer = self._data["discover"].get(version)
        return answer if isinstance(answer, dict) else None

    @staticmethod
    def list_key(version: str, initialize_params: object) -> str:
        """Which kept list a session gets: by protocol version and the client's name."""
        info = initialize_params.get("clientInfo") if isinstance(initialize_params, dict) else None
        name = info.get("name") if isinstance(info, dict) else None
        return f"{version} {name if isinstance(name, str) else ''}"

    def tools_list(self, key: str) -> JsonObject | None:
        """The last `tools/list` answer for sessions of `key` (`list_key`), if it still holds now (see the
        module's doc)."""
        kept = self._data["lists"].get(key)
        identities = self._stored_identities()  # the token files, read once for the digest and the user
        if not isinstance(kept, dict) or kept.get("inputs") != self._inputs(self._cached_tool_lists(), identities):
            return None
        result, sources = kept.get("result"), kept.get("sources")
        if not isinstance(result, dict) or not isinstance(sources, dict) or not isinstance(result.get("tools"), list):
            return None
        known, user = self._signed_in_user(identities)
        if not known or user != kept.get("user"):
            return None  # who the user is cannot be told before the sign-in code loads: wait for it
        own = {d["name"]: d for d in access_tool_definitions(search=True)}  # the search mode may start by itself
        if not all(self._still_shown(tool, sources, user, own) for tool in result["tools"]):
            log.info("the kept first tool list no longer matches the policy; waiting for the full answer")
            return None
        return result

    def _still_shown(self, tool: object, sources: Mapping[str, Any], user: str | None,
                     own: Mapping[str, JsonObject]) -> bool:
        """Whether a kept tool is what the policy of now shows `user`: one of the proxy's own tools (`own`), or an
        upstream's (`sources`) as allowed, constrained and named now."""
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return False
        name = tool["name"]
        if name in own:
            return _within(tool, own[name])
        source = sources.get(name)
        if not (isinstance(source, list) and len(source) == 2 and isinstance(source[1], dict)):
            return False
        upstream, raw = source
        upstream_config = self._config.upstreams.get(upstream) if isinstance(upstream, str) else None
        if upstream_config is None or not isinstance(raw.get("name"), str) or \
                exposed_name(upstream, raw["name"]) != name:
            return False
        facts = tool_facts(upstream, name, raw, is_builtin(upstream_config.kind))
        if not self._policy.decide(facts, user).allowed:
            return False
        expected = {**raw, "name": name}
        constraints = self._policy.constraints_for(facts.key)
        if constraints and isinstance(raw.get("inputSchema"), dict):
            expected["inputSchema"] = narrowed_schema(raw["inputSchema"], constraints)
        return _within(tool, expected)

    def _stored_identities(self) -> dict[str, str | None]:
        """Each stored sign-in's confirmed email, by its token record's file name."""
        found: dict[str, str | None] = {}
        for path in sorted(self._tokens_dir.glob("*.json")):
            try:
                meta = json.loads(path.read_bytes())
            except (OSError, ValueError):
                meta = None
            email = meta.get("identity_email") if isinstance(meta, dict) else None
            found[path.name] = email if isinstance(email, str) else None
        return found

    def _signed_in_user(self, identities: Mapping[str, str | None]) -> tuple[bool, str | None]:
        """(known, user): the user as the server will take it (server/identity.py), the one email the stored
        sign-ins (`_stored_identities`) confirm, else `[user] email`; not known when they confirm several people
        (only the sign-in code can tell whose counts)."""
        emails = {e for e in identities.values() if e}
        if len(emails) > 1:
            return False, None
        return True, (emails.pop() if emails else self._config.user_email)

    def _cached_tool_lists(self) -> dict[str, Any]:
        """The configured upstreams' cached tool lists, by cache file name (hub.cached_tool_lists, from the files)."""
        lists = {}
        for key in self._config.upstreams:
            path = self._tool_cache_dir / cache_file_name(key)
            try:
                lists[path.name] = json.loads(path.read_bytes()).get("tools")
            except FileNotFoundError:
                continue
            except (OSError, ValueError, AttributeError):
                lists[path.name] = None
        return dict(sorted(lists.items()))

    def _inputs(self, tool_lists: dict[str, Any], identities: Mapping[str, str | None]) -> str:
        """What a tool list depends on besides the policy's rules: its revision, the upstreams' cached lists, the
        stored sign-ins (`_stored_identities`: who the user is), and the list settings."""
        return _digest({"policy": self._policy.revision, "tools": tool_lists, "sign_ins": identities,
                        "user": self._config.user_email, "max_tools": self._config.max_tools})

    # -- recording -------------------------------------------------------------
    def record_initialize(self, params: object, result: JsonObject) -> None:
        version = params.get("protocolVersion") if isinstance(params, dict) else None
        if isinstance(version, str) and self._data["initialize"].get(version) != result:
            self._data["initialize"][version] = result
            self._save()

    def record_discover(self, version: str, result: JsonObject) -> None:
        if self._data["discover"].get(version) != result:
            self._data["discover"][version] = result
            self._save()

    def record_tools_list(self, key: str, result: JsonObject, user: str | None) -> None:
        """Keep the SDK's answer to a `tools/list` of a session of `key` (`list_key`), given for `user`."""
        tools = result.get("tools")
        recorded = (result, user, self._policy.revision)
        if self.catalog is None or not isinstance(tools, list) or self._recorded.get(key) == recorded:
            return  # a client that lists again gets the same list: nothing to digest or write again
        self._recorded[key] = recorded
        names = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
        sources = {name: [upstream, raw] for name, (upstream, raw) in self.catalog.listed_sources(names).items()}
        # The cached lists as the server holds them: the files may still be being written.
        inputs = self._inputs(self.catalog.cached_tool_lists(), self._stored_identities())
        kept = {"inputs": inputs, "user": user, "result": result, "sources": sources}
        if self._data["lists"].get(key) != kept:
            self._data["lists"][key] = kept
            self._save()

    def _save(self) -> None:
        try:
            atomic_write(self._file, json.dumps(self._data, separators=(",", ":")).encode(), mode=0o600,
                         durable=False)  # a cache: a torn or lost file only means a slower start
        except OSError as exc:  # a start is only slower without it
            log.debug("could not keep the first answers (%s)", exc.strerror)


def _file_digest(path: Path | None) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None
    except OSError:
        return None
