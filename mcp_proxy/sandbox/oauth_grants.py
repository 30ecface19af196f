"""What the sandbox's OAuth stand-ins (PagerDuty's `oauth_server.py`, Atlassian's `atlassian_oauth.py`) share
about the tokens they issue: the tables of live access and refresh tokens with their test controls, and the
RFC 6749 error answer of a token endpoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar


class _Expiring(Protocol):
    expires_at: float


G = TypeVar("G", bound=_Expiring)


class GrantTables(Generic[G]):
    """Mixed into a stand-in's dataclass, whose `__post_init__` calls `_init_tables()`."""

    clock: Callable[[], float]
    refresh_delay: float  # seconds the token endpoint waits before a refresh: widens the race window

    def _init_tables(self) -> None:
        self.lock = threading.Lock()
        self.access: dict[str, G] = {}  # live access token -> its grant
        self.refresh: dict[str, G] = {}  # live refresh token -> its grant

    def expire_access_tokens(self) -> None:
        with self.lock:
            for grant in self.access.values():
                grant.expires_at = self.clock() - 1

    @asynccontextmanager
    async def rotating(self, presented: str) -> AsyncIterator[G | None]:
        """The grant of a presented refresh token, taken out of the table (refresh tokens rotate: each is used
        once), or None; the lock is held for what the endpoint does with it. After `refresh_delay`."""
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        with self.lock:
            yield self.refresh.pop(presented, None)

    @property
    def active_refresh_tokens(self) -> set[str]:
        with self.lock:
            return set(self.refresh)


def token_answer(body: dict[str, Any]) -> Any:
    """A token endpoint's answer with new tokens (a starlette JSONResponse), never cached."""
    from starlette.responses import JSONResponse

    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def oauth_error(status: int, error: str, description: str) -> Any:
    """A token endpoint's error answer (a starlette JSONResponse), never cached."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store"})
