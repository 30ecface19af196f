"""Tools declared once, at module level, and bound to a connector when it is built.

A vendor module keeps a `ToolTable` and declares each tool on it with `@TOOLS.tool(...)` (or
`TOOLS.add(...)` for a handler made by a factory). The declaration holds what the model sees (name,
description, input schema, annotations); the handler takes the connector as its first argument, so
nothing has to live in a closure. An input schema may depend on the upstream's configuration (a
default page size): then it is a function of the connector, evaluated when the tools are bound.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mcp_proxy.connectors.base import RestTool, ToolOutput

Ctx = TypeVar("Ctx")
Args = dict[str, Any]
Schema = dict[str, Any]
BoundHandler = Callable[[Ctx, Args], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class ToolSpec(Generic[Ctx]):
    """One tool as declared: everything but the connector it will run on."""

    name: str
    description: str
    input_schema: Schema | Callable[[Ctx], Schema]
    handler: BoundHandler[Ctx]
    read_only: bool
    destructive: bool
    idempotent: bool
    title: str | None

    def bind(self, ctx: Ctx) -> RestTool:
        schema = self.input_schema(ctx) if callable(self.input_schema) else self.input_schema
        return RestTool(self.name, self.description, schema, functools.partial(self.handler, ctx),
                        read_only=self.read_only, destructive=self.destructive, idempotent=self.idempotent,
                        title=self.title)


class ToolTable(Generic[Ctx]):
    """The tools of one vendor module, in declaration order (the order `tools()` lists them in)."""

    def __init__(self, *, title_from_name: bool = False) -> None:
        # PagerDuty's titles are its tool names in words ("List incidents"); the others write theirs.
        self._title_from_name = title_from_name
        self._specs: list[ToolSpec[Ctx]] = []

    def add(self, name: str, description: str, input_schema: Schema | Callable[[Ctx], Schema],
            handler: BoundHandler[Ctx], *, read_only: bool, destructive: bool = False,
            idempotent: bool | None = None, title: str | None = None) -> None:
        """Declare a tool. `idempotent` defaults to `read_only`: a read can always be repeated."""
        if title is None and self._title_from_name:
            title = name.replace("_", " ").capitalize()
        self._specs.append(ToolSpec(name, description, input_schema, handler, read_only, destructive,
                                    read_only if idempotent is None else idempotent, title))

    def tool(self, name: str, description: str, input_schema: Schema | Callable[[Ctx], Schema], *,
             read_only: bool, destructive: bool = False, idempotent: bool | None = None,
             title: str | None = None) -> Callable[[BoundHandler[Ctx]], BoundHandler[Ctx]]:
        """`add` as a decorator of the handler."""
        def declare(handler: BoundHandler[Ctx]) -> BoundHandler[Ctx]:
            self.add(name, description, input_schema, handler, read_only=read_only, destructive=destructive,
                     idempotent=idempotent, title=title)
            return handler
        return declare

    def bind(self, ctx: Ctx) -> list[RestTool]:
        return [spec.bind(ctx) for spec in self._specs]
