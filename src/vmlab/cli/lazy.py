"""vmlab's root command group, built lazily: a command group's module is imported when it is run.

`vmlab --help` lists every top-level command with its one-line help from `vmlab.cli.listing`, an index
generated from the registrars themselves (`python -m vmlab.cli.reindex` rewrites it; a unit test fails
when it is not current). Which registrars there are still comes from main.py (the core groups) and
from each lab.toml (`[lab] cli`), read at every start; the index only saves importing a group's
module and building its Typer commands (inspecting every function's signature) to print one line.

A registrar the index does not know (a lab from another VMLAB_LABS root) is imported at start-up, as
every registrar was before. A name the index does not list loads every registrar before "No such
command", so a stale index can only shorten the help listing, never hide a command.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer import _click  # Typer's own click (annotations only: where it lives is Typer's affair)

# (name, first paragraph of its help, is a group) of each top-level entry a registrar adds.
Entry = tuple[str, str, bool]


@dataclasses.dataclass(frozen=True)
class Registrar:
    """A "module:function" that adds commands or groups to a Typer app; `lab` names the lab whose
    lab.toml declares it (None for vmlab's own groups, whose import failing is a bug, not a warning)."""

    spec: str
    lab: str | None = None


def registrar_function(spec: str) -> Callable[[typer.Typer], None]:
    module, _, func = spec.partition(":")
    fn: Callable[[typer.Typer], None] = getattr(importlib.import_module(module), func)
    return fn


def first_paragraph(help_text: str) -> str:
    """What Typer's help listing prints of a command's help (rich_utils._make_command_help)."""
    return inspect.cleandoc(help_text).split("\n\n")[0].strip()


class LazyGroup(TyperGroup):
    """A TyperGroup whose entries from indexed registrars are stand-ins until used.

    Help (format_help) lists the stand-ins: name and one-line help. Any other look-up of a name (the
    command about to run, completion, a test's get_command) imports its registrar and builds its real
    commands first. Subclasses say which registrars there are (`registrars`) and how a lab's broken
    one is said (`warn`).
    """

    def registrars(self) -> list[Registrar]:
        return []

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        from vmlab.cli.listing import LISTING

        # name -> (its registrar, is a group) for every entry, loaded or not, in registration order
        self._entries: dict[str, tuple[Registrar | None, bool]] = {
            name: (None, isinstance(cmd, TyperGroup)) for name, cmd in self.commands.items()
        }
        self._stubs: dict[str, _click.Command] = {}
        self._listing = False
        for reg in self.registrars():
            indexed = LISTING.get(reg.spec)
            if indexed is None:
                self._load(reg)
                continue
            for name, short, group in indexed:
                if name in self.commands:  # registered on the Typer app itself: that one wins
                    continue
                self._entries[name] = (reg, group)
                stub_class = TyperGroup if group else TyperCommand
                self._stubs[name] = stub_class(name=name, help=short, rich_markup_mode=self.rich_markup_mode)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        """Commands, then groups, each in registration order: the order Typer gives an eager app."""
        return [n for n, (_, g) in self._entries.items() if not g] + [
            n for n, (_, g) in self._entries.items() if g
        ]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is not None:
            return cmd
        if cmd_name in self._stubs:
            if self._listing:
                return self._stubs[cmd_name]
            reg = self._entries[cmd_name][0]
            assert reg is not None
            self._load(reg)
            return self.commands.get(cmd_name)
        if not self._listing and self._stubs:  # not in the index: perhaps a command it does not list yet
            pending = [r for n, (r, _) in self._entries.items() if n in self._stubs and r is not None]
            for reg in dict.fromkeys(pending):
                self._load(reg)
            return self.commands.get(cmd_name)
        return None

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def _load(self, reg: Registrar) -> None:
        """Import the registrar, build its commands as Typer would for this group, and keep them in
        the places its stand-ins held (a name the index listed that it no longer adds goes)."""
        listed = [n for n, (r, _) in self._entries.items() if r == reg]
        for name in listed:
            self._stubs.pop(name, None)
        scratch = typer.Typer(rich_markup_mode=self.rich_markup_mode, suggest_commands=self.suggest_commands)
        try:
            registrar_function(reg.spec)(scratch)
        except (ImportError, AttributeError) as e:
            if reg.lab is None:
                raise
            for name in listed:
                del self._entries[name]
            self.warn(f"lab {reg.lab}: its commands ({reg.spec}) are unavailable: {e}")
            return
        built = typer.main.get_group(scratch)
        for name, cmd in built.commands.items():
            if name in self.commands and self._entries[name][0] is None:
                continue  # registered on the Typer app itself: that one wins
            self.commands[name] = cmd
            self._entries[name] = (reg, isinstance(cmd, TyperGroup))
        for name in listed:
            if name not in built.commands:
                del self._entries[name]


def listing(registrars: list[Registrar]) -> dict[str, tuple[Entry, ...]]:
    """The index of these registrars, from Typer's own build of each (what `--help` would print)."""
    index: dict[str, tuple[Entry, ...]] = {}
    for reg in registrars:
        scratch = typer.Typer()
        registrar_function(reg.spec)(scratch)
        built = typer.main.get_group(scratch)
        index[reg.spec] = tuple(
            (name, first_paragraph(cmd.short_help or cmd.help or ""), isinstance(cmd, TyperGroup))
            for name, cmd in built.commands.items()
        )
    return index


def _literal(s: str) -> str:
    """A double-quoted Python literal of s, as ruff format writes it."""
    body = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


def render(index: dict[str, tuple[Entry, ...]]) -> str:
    """The source of vmlab/cli/listing.py, laid out as ruff format leaves it."""
    lines = [
        "# ruff: noqa: E501",
        '"""Generated by `python -m vmlab.cli.reindex` from the registrars: do not edit (a unit test',
        "compares it with them). The top-level entries each registrar adds, for `vmlab --help`.",
        '"""',
        "",
        "LISTING: dict[str, tuple[tuple[str, str, bool], ...]] = {",
    ]
    for spec, entries in index.items():
        if len(entries) == 1:
            (name, short, group) = entries[0]
            one = f"    {_literal(spec)}: (({_literal(name)}, {_literal(short)}, {group}),),"
            if len(one) <= 110:
                lines.append(one)
                continue
        lines.append(f"    {_literal(spec)}: (")
        for name, short, group in entries:
            one = f"        ({_literal(name)}, {_literal(short)}, {group}),"
            if len(one) <= 110:
                lines.append(one)
            else:
                lines += ["        (", f"            {_literal(name)},", f"            {_literal(short)},"]
                lines += [f"            {group},", "        ),"]
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


LISTING_FILE = Path(__file__).with_name("listing.py")
