"""A command group whose subgroups are imported and built the first time they are needed (click's documented
pattern for lazily loaded subcommands): `pilothouse version` neither imports nor builds the other thirty-odd
commands, and `pilothouse keys list` builds only the `keys` group.

`pilothouse --help` lists every group with its help, so it builds them all, as the tree walks in the tests do
through `list_commands` and `get_command`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperGroup

__all__ = ["LazyGroup", "load_typer"]


def load_typer(spec: str) -> typer.Typer:
    """`module:attribute` of a `typer.Typer`; further `+module` parts are imported first, for modules that add
    commands to it when imported (`pilothouse.cli.prompt:prompt_app+pilothouse.cli.prompt_test`)."""
    target, *extras = spec.split("+")
    for extra in extras:
        importlib.import_module(extra)
    module, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    assert isinstance(found, typer.Typer), f"{spec} is not a typer.Typer"
    return found


class LazyGroup(TyperGroup):
    """Subclass it with `lazy` (name -> `load_typer` spec) and `order` (how `--help` lists the commands)."""

    lazy: ClassVar[dict[str, str]] = {}
    order: ClassVar[Sequence[str]] = ()

    def list_commands(self, ctx: Any) -> list[str]:
        names = [*self.commands, *self.lazy]
        ranked = {name: i for i, name in enumerate(self.order)}
        return sorted(dict.fromkeys(names), key=lambda n: ranked.get(n, len(ranked)))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            group = typer.main.get_group(load_typer(self.lazy[cmd_name]))
            group.name = cmd_name
            self.add_command(group, cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            for name in self.lazy:  # a mistyped command: build them all, so "Did you mean ...?" knows every name
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)
