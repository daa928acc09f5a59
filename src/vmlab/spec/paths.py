"""Paths into a report: their syntax, and how they resolve.

A path is dot-separated segments: `programs.console-bytewise.counts.IO`. A segment that itself holds a
dot is written in double quotes: `jit.methods."java.lang.String::hashCode".count` (no escapes inside;
in TOML use a literal string, `path = 'a."b.c".d'`). A group check's paths may hold `{member}` in any
segment; it is replaced after parsing, so a member with dots needs no quoting.

Roots: `host.*`, `run.*`, `steps.*` and `inputs.*` read the report's envelope, `variant.NAME` the
per-student parameter the run used (`run.variant.values`, vmlab.spec.variants); every other path reads
`report.experiments`. An experiment that is really named like a root is reached by quoting it:
`"run".samples`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from vmlab.report.model import Report

ENVELOPE_ROOTS = frozenset({"host", "run", "steps", "inputs", "variant"})
MEMBER = "{member}"
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


class PathMissing(LookupError):
    """The report lacks what a path names, or holds the wrong type there: the student's data, a fail."""


@dataclass(frozen=True)
class ParsedPath:
    segments: tuple[str, ...]
    envelope: bool

    @property
    def experiment(self) -> str | None:
        """The experiment id a path reads (its first segment), None for envelope paths."""
        return None if self.envelope else self.segments[0]

    @property
    def has_member(self) -> bool:
        return any(MEMBER in s for s in self.segments)

    def bind(self, member: str) -> ParsedPath:
        return ParsedPath(tuple(s.replace(MEMBER, member) for s in self.segments), self.envelope)

    def __str__(self) -> str:
        def show(i: int, seg: str) -> str:
            shadowed = i == 0 and seg in ENVELOPE_ROOTS and not self.envelope
            return f'"{seg}"' if "." in seg or shadowed else seg

        return ".".join(show(i, s) for i, s in enumerate(self.segments))


def parse_path(text: str) -> ParsedPath:
    """Split a path into segments; a malformed one raises ValueError saying what is wrong."""
    segments: list[str] = []
    quoted: list[bool] = []
    i, n = 0, len(text)
    if not text:
        raise ValueError("empty path")
    while True:
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError(f"path {text!r}: unclosed quote")
            seg, i = text[i + 1 : end], end + 1
            if i < n and text[i] != ".":
                raise ValueError(f"path {text!r}: a quoted segment must be followed by '.' or the end")
            quoted.append(True)
        else:
            end = text.find(".", i)
            end = n if end < 0 else end
            seg, i = text[i:end], end
            if '"' in seg:
                raise ValueError(f"path {text!r}: quote a whole segment, '\"a.b\"', not part of one")
            quoted.append(False)
        if not seg:
            raise ValueError(f"path {text!r}: empty segment (two dots, or a dot at an end)")
        for ph in _PLACEHOLDER.findall(seg):
            if ph != MEMBER:
                raise ValueError(f"path {text!r}: unknown placeholder {ph} (only {MEMBER})")
        segments.append(seg)
        if i >= n:
            break
        i += 1  # the dot
        if i >= n:
            raise ValueError(f"path {text!r}: empty segment (two dots, or a dot at an end)")
    return ParsedPath(tuple(segments), envelope=segments[0] in ENVELOPE_ROOTS and not quoted[0])


def check_path(text: str) -> str:
    """A pydantic validator: the path parses (the text itself is kept)."""
    parse_path(text)
    return text


def resolve_raw(report: Report, path: ParsedPath) -> Any:
    """The node a path names, as stored (models, dicts, lists, scalars); PathMissing when absent."""
    node: Any = report if path.envelope else report.experiments
    if path.envelope and path.segments[0] == "variant":
        if report.run.variant is None:
            raise PathMissing("variant is not in the report (the run recorded no per-student parameters)")
        node = {"variant": report.run.variant.values}
    for depth, part in enumerate(path.segments):
        nxt = _child(node, part)
        if nxt is _ABSENT:
            raise PathMissing(f"{_shown(path, depth + 1)} is not in the report")
        node = nxt
    return node


_ABSENT = object()


def _child(node: Any, part: str) -> Any:
    if isinstance(node, BaseModel):
        return getattr(node, part) if part in type(node).model_fields else _ABSENT
    if isinstance(node, dict):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return _ABSENT


def _shown(path: ParsedPath, depth: int) -> str:
    return str(ParsedPath(path.segments[:depth], path.envelope))


def summary_median(node: Any) -> Any:
    """An experiment or measurement stands for its summary median; anything else for itself."""
    summary = node.get("summary") if isinstance(node, dict) else getattr(node, "summary", None)
    if isinstance(summary, BaseModel):
        return getattr(summary, "median", None)
    if isinstance(summary, dict):
        return summary.get("median")
    return node


def resolve(report: Report, path: ParsedPath | str) -> Any:
    """A path's value for a check: a summary's median, a scalar, a string; never None."""
    parsed = parse_path(path) if isinstance(path, str) else path
    value = summary_median(resolve_raw(report, parsed))
    if value is None:
        raise PathMissing(f"{parsed} is empty in the report")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def number(report: Report, path: ParsedPath | str) -> float:
    value = resolve(report, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PathMissing(f"{path} is {type(value).__name__}, not a number")
    return float(value)


def series(node: Any, shown: str) -> list[float]:
    """The numbers behind a node: a list itself, or an experiment's or measurement's samples."""
    if isinstance(node, BaseModel) and "samples" in type(node).model_fields:
        node = node.samples  # type: ignore[attr-defined]
    elif isinstance(node, dict) and "samples" in node:
        node = node["samples"]
    if not isinstance(node, list):
        raise PathMissing(f"{shown} is {type(node).__name__}, not a series or samples")
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in node):
        raise PathMissing(f"{shown} holds something that is not a number")
    return [float(x) for x in node]
