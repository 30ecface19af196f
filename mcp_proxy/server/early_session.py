"""One session's use of the first answers (server/first_answers.py).

Which of the client's first messages are answered before the SDK is loaded, which of the SDK's answers are
kept for the next start, and what the SDK must be given once it is up. The wire (server/wire.py) moves the
messages; this decides about them.

Both eras: a handshake-era client (`initialize`, then `tools/list`) and a stateless 2026-07-28 one
(`server/discover`, then `tools/list` with its protocol version and clientInfo in `_meta`). A session's list
is kept by protocol version and client name (`FirstAnswers.list_key`).
"""

from __future__ import annotations

from typing import Any

from mcp_proxy.server.first_answers import FirstAnswers

JsonObject = dict[str, Any]
# What to keep of an SDK answer: ("initialize", params) | ("discover", version) | ("tools/list", key).
Watch = tuple[str, Any]

# mcp_types' PROTOCOL_VERSION_META_KEY and CLIENT_INFO_META_KEY: not imported, the SDK is not loaded yet.
PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
# The proxy's own requests to its SDK server: the client's `initialize`, replayed after it was answered early,
# and a `tools/list` that keeps the first answers current. Their answers stay in the proxy.
REPLAYED_INITIALIZE = "mcp-access-proxy/initialize"
OWN_TOOLS_LIST = "mcp-access-proxy/tools-list"
OWN_REQUESTS = frozenset({REPLAYED_INITIALIZE, OWN_TOOLS_LIST})


def _stateless(params: object) -> tuple[str, object] | None:
    """(protocol version, clientInfo) of a 2026-07-28 request, from its `_meta`."""
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION) if isinstance(meta, dict) else None
    return (version, meta.get(CLIENT_INFO)) if isinstance(meta, dict) and isinstance(version, str) else None


def _first_page(params: object) -> bool:
    return not (isinstance(params, dict) and params.get("cursor"))


class EarlySession:
    def __init__(self, first: FirstAnswers) -> None:
        self._first = first
        self._initialize: JsonObject | None = None  # the client's initialize, answered early
        self._listing: str | None = None  # the handshake session's list key, once known
        self._own_list: JsonObject | None = None  # params of the proxy's own tools/list, once it is due
        self._own_list_asked = False
        self.early_tools: list[Any] | None = None  # the tools of a tools/list answered early, if one was
        self._compared = False

    def answer(self, message: JsonObject) -> JsonObject | None:
        """The result for a request answered now, before the SDK is loaded; None: it waits for the SDK."""
        first, method, params = self._first, message.get("method"), message.get("params")
        stateless = _stateless(params)
        if method == "initialize" and self._initialize is None:
            result = first.initialize(params)
            if result is None or not isinstance(result.get("protocolVersion"), str):
                return None
            self._initialize, self._listing = message, first.list_key(result["protocolVersion"], params)
            return result
        if method == "server/discover" and stateless is not None:
            return first.discover(stateless[0])
        if method != "tools/list" or not _first_page(params) or self.early_tools is not None:
            return None
        # Before hand-over a handshake session's list is known only from an initialize answered early.
        key = self._list_key(stateless) if stateless is not None or self._initialize is not None else None
        if key is None:
            return None
        result = first.tools_list(key)
        if result is None or result.get("nextCursor") or not isinstance(result.get("tools"), list):
            return None
        self.early_tools = result["tools"]
        if stateless is not None:  # asked for again once the SDK is up (a handshake session asks after initialized)
            self._own_list = {"_meta": params["_meta"]} if isinstance(params, dict) else None
        return result

    def early_list_was_stale(self, tools: object) -> bool:
        """Whether the list answered early differs from `tools`, the list of now (True once: the client is told
        once that the list changed)."""
        stale = self.early_tools is not None and not self._compared and tools != self.early_tools
        self._compared = self._compared or self.early_tools is not None
        return stale

    def replay(self) -> list[JsonObject]:
        """What the SDK is given before the messages held back for it: the initialize answered early, as the
        proxy's own request (a handshake-era SDK session must see it)."""
        if self._initialize is None:
            return []
        return [{**self._initialize, "id": REPLAYED_INITIALIZE}]

    def watch(self, message: JsonObject) -> Watch | None:
        """For a request going to the SDK: what to keep of its answer."""
        method, params = message.get("method"), message.get("params")
        stateless = _stateless(params)
        if method == "initialize":  # the client's, or its replay (REPLAYED_INITIALIZE)
            return ("initialize", params)
        if method == "server/discover" and stateless is not None:
            return ("discover", stateless[0])
        if method == "tools/list" and _first_page(params):
            return ("tools/list", self._list_key(stateless))  # None: known once initialize is answered
        return None

    def _list_key(self, stateless: tuple[str, object] | None) -> str | None:
        """Which kept list a tools/list of this session is (FirstAnswers.list_key): a stateless request names
        its version and client; a handshake session's is known once its initialize was answered."""
        if stateless is not None:
            return self._first.list_key(stateless[0], {"clientInfo": stateless[1]})
        return self._listing

    def keep(self, watch: Watch, result: JsonObject) -> tuple[str, JsonObject] | None:
        """Keep what the SDK answered; for a first-page tool list, (its key, the list) for the server to record
        (it knows the user) and compare with an early answer."""
        kind, detail = watch
        first = self._first
        if kind == "initialize":
            version = result.get("protocolVersion")
            if self._listing is None and isinstance(version, str):
                self._listing = first.list_key(version, detail)
            first.record_initialize(detail, result)
        elif kind == "discover":
            first.record_discover(detail, result)
        elif kind == "tools/list" and not result.get("nextCursor"):
            # A handshake session whose list was sent before its initialize was answered: the key is known now
            # (the SDK answers in order, so the initialize's answer was kept first).
            key = detail if isinstance(detail, str) else self._listing
            if key is not None:
                return key, result
        return None

    def own_list_request(self, after: JsonObject | None) -> JsonObject | None:
        """The proxy's own tools/list, once per session: after a handshake session's `notifications/initialized`
        reached the SDK, or (`after` None) once everything held back has, when a stateless list was answered
        early. It keeps the first answers current and tells whether an early list still holds."""
        if self._own_list_asked:
            return None  # a second one would reuse the id of the first, which may still be in flight
        if after is not None and after.get("method") == "notifications/initialized" and self._listing is not None:
            params = None
        elif after is None and self._own_list is not None:
            params = self._own_list
        else:
            return None
        self._own_list_asked = True
        return {"jsonrpc": "2.0", "id": OWN_TOOLS_LIST, "method": "tools/list",
                **({"params": params} if params is not None else {})}
