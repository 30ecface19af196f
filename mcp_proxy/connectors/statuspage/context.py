"""What the Statuspage tools need of the connector, and reading one page of a list."""

from __future__ import annotations

from typing import Any, Protocol

from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.statuspage.client import Scope
from mcp_proxy.connectors.statuspage.schemas import MAX_PAGE_SIZE, integer


class Context(Protocol):
    client: RestClient
    scope: Scope
    max_chars: int
    page_size: int


def page_and_size(ctx: Context, args: dict[str, Any], size_name: str = "per_page", first: int = 1) -> tuple[int, int]:
    """The page asked for (`first` is 0 or 1: Statuspage numbers some lists from 0) and its size."""
    return (integer(args, "page", first, first, 100000),
            integer(args, size_name, min(ctx.page_size, MAX_PAGE_SIZE), 1, MAX_PAGE_SIZE))


async def get_list(ctx: Context, path: str, params: dict[str, Any]) -> Any:
    """A list endpoint's answer: a bare array (Statuspage sends no envelope), or [] for an empty body."""
    return await ctx.client.json("GET", path, params=params) or []
