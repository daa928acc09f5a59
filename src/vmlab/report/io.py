"""Loading and saving reports; every failure to load is one ReportError line, every failure to write
one OutputError line.

Every reader of a report.json or class.json goes through `read_bounded` / `read_json`: a hand-in is
untrusted, so its size and its JSON nesting are bounded before any parser recurses into it. Every
writer of vmlab's outputs goes through `write_atomic`: a full disk or a read-only folder leaves the
previous file as it was and no temp file beside it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmlab.errors import OutputError, ReportError
from vmlab.report.model import SCHEMA_VERSION, Report

# Real reports are KiBs (warm-up 4 KiB, the kvm-api example 58 KiB: raw samples of every run); 64 MiB
# is a thousand times that and still bounds what one hostile hand-in makes the grader hold in memory.
MAX_JSON_BYTES = 64 * 1024 * 1024
# Real reports nest at most 7 levels (experiments.startup.vm.stages.ready.samples), class.json 6, the
# report schema 8; 64 is far above them and far below where a recursive parser (json, pydantic,
# about 1000 frames) runs out of stack.
MAX_JSON_DEPTH = 64

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_CURLY_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_RUN = re.compile(rb"\[+|\]+")


def json_nesting(raw: bytes, limit: int = MAX_JSON_DEPTH) -> int | None:
    """How deep `raw` nests arrays and objects when that is more than `limit`, else None.

    A scan in C-speed passes, without recursion: escapes are dropped, then strings (between quotes),
    then everything but brackets; each pass of removing adjacent "[]" pairs peels one level. Where
    the text is not valid JSON the count may differ from a parser's, but never below what a parser
    would recurse into before it stops at the fault.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return None
    outside = b"".join(_ESCAPE.sub(b"", raw).split(b'"')[0::2])
    brackets = outside.translate(_CURLY_AS_SQUARE, _NOT_A_BRACKET)
    passes = 0
    while brackets and passes < limit:
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            break  # unbalanced: what is left is counted below
        brackets, passes = peeled, passes + 1
    if not brackets:
        return None
    depth = top = 0
    for run in _RUN.finditer(brackets):
        n = run.end() - run.start()
        depth += n if brackets[run.start()] == ord("[") else -n
        top = max(top, depth)
    total = top + passes
    return total if total > limit else None


def read_bounded(
    path: Path, what: str = "report", *, shown: str | None = None, fix: str | None = None
) -> bytes:
    """The bytes of a regular file of at most MAX_JSON_BYTES; else one ReportError naming the fault.

    Opened without blocking and checked on the open file, so a FIFO or a device in place of a
    report is refused, never waited on or read forever.
    """
    name = shown or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ReportError(
                f"{what} {name} is a symlink to {os.readlink(path)}, which does not exist", hint=fix
            ) from None
        raise ReportError(f"{what} {name} does not exist", hint=fix) from None
    except OSError as e:
        raise ReportError(f"cannot read {what} {name}: {e.strerror}") from None
    too_big = f"(limit {MAX_JSON_BYTES}, {MAX_JSON_BYTES >> 20} MiB): not a vmlab {what}"
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ReportError(f"{what} {name} is a folder, not a file", hint=fix)
        if not stat.S_ISREG(st.st_mode):
            raise ReportError(f"{what} {name} is not a regular file (a FIFO, socket or device): not read")
        if st.st_size > MAX_JSON_BYTES:
            raise ReportError(f"{what} {name} is {st.st_size} bytes {too_big}")
        chunks: list[bytes] = []
        left = MAX_JSON_BYTES + 1  # bounded also when the file grows while it is read
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        raw = b"".join(chunks)
    except OSError as e:
        raise ReportError(f"cannot read {what} {name}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_JSON_BYTES:
        raise ReportError(f"{what} {name} is more than {MAX_JSON_BYTES} bytes {too_big}")
    return raw


def check_nesting(raw: bytes, what: str, name: str) -> None:
    depth = json_nesting(raw)
    if depth is not None:
        raise ReportError(
            f"{what} {name} nests JSON {depth} levels deep (limit {MAX_JSON_DEPTH}): not a vmlab {what}"
        )


def parse_json(raw: bytes, what: str, name: str, *, fix: str | None = None) -> Any:
    """JSON from bytes read by `read_bounded`: nesting checked first, UTF-8 only, one line per fault."""
    check_nesting(raw, what, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReportError(f"{what} {name} is not UTF-8 text (byte {e.start}): not a vmlab {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportError(
            f"{what} {name} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", hint=fix
        ) from None
    except RecursionError:  # unreachable after check_nesting; kept so no input can show a traceback
        raise ReportError(
            f"{what} {name} nests JSON more than {MAX_JSON_DEPTH} levels deep: not a vmlab {what}"
        ) from None


def read_json(path: Path, what: str = "report", *, shown: str | None = None, fix: str | None = None) -> Any:
    return parse_json(read_bounded(path, what, shown=shown, fix=fix), what, shown or str(path), fix=fix)


def load_report(path: Path) -> Report:
    raw = read_bounded(path, "report", fix="pass the path printed by the run")
    data = parse_json(raw, "report", str(path), fix="re-run the lab to write it again")
    if not isinstance(data, dict):
        raise ReportError(f"report {path} is not a JSON object")
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version}, newer than this vmlab reads ({SCHEMA_VERSION})",
            hint="update vmlab (git pull && make setup) to grade it",
        )
    if version == 1:
        data = upgrade_v1(data)
    elif version != SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version!r}, this vmlab reads 1 and {SCHEMA_VERSION}",
            hint="re-run the lab with this vmlab version",
        )
    try:
        return Report.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise ReportError(f"report {path} is invalid at {where}: {first['msg']}{more}") from None


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2 in code: check verdicts become outcomes; provenance v1 never had stays empty.

    v1's host.accel was what `auto` would pick on the host; v2 keeps an accelerator only where an
    experiment says its guests used one.
    """
    out = dict(data)
    out["schema_version"] = 2
    host = dict(out.get("host") or {})
    used = _accel_used(out.get("experiments") or {})
    host["accel"], host["accel_reason"] = used if used else (None, None)
    out["host"] = host
    out.setdefault("run", {"lab_sha256": "", "status": "complete"})
    checks = out.get("checks")
    if isinstance(checks, list):
        upgraded = []
        for c in checks:
            if isinstance(c, dict) and "passed" in c:
                c = dict(c)
                passed = bool(c.pop("passed"))
                c["outcome"] = "pass" if passed else "fail"
                c["score"] = 1.0 if passed else 0.0
            upgraded.append(c)
        out["checks"] = upgraded
    return out


def _accel_used(experiments: dict[str, Any]) -> tuple[str, str | None] | None:
    def entries() -> Any:
        for entry in experiments.values():
            if isinstance(entry, dict) and "unit" in entry:
                yield entry
            elif isinstance(entry, dict):
                yield from (e for e in entry.values() if isinstance(e, dict))

    for exp in entries():
        prov = exp.get("provenance") or {}
        if prov.get("backend") == "libvirt" and prov.get("accel"):
            return str(prov["accel"]), prov.get("accel_reason")
    return None


def save_report(report: Report, path: Path) -> Path:
    """Write atomically (temp file + rename) so a Ctrl-C or a full disk never leaves half a report."""
    return write_atomic(path, report.model_dump_json(indent=2) + "\n", mode=0o600)


@contextmanager
def writing(
    path: Path, *, elsewhere: str = "write elsewhere with -o", needed: int | None = None
) -> Iterator[None]:
    """Any OSError while writing `path` (a file or a folder) becomes one OutputError line naming it;
    `needed`, the bytes the write takes, is named with the free space when the disk is full."""
    try:
        yield
    except OSError as e:
        raise OutputError.from_os(e, path, elsewhere=elsewhere, needed=needed) from None


def write_atomic(
    path: Path, content: str | bytes, *, mode: int | None = None, elsewhere: str = "write elsewhere with -o"
) -> Path:
    """Write `content` to a temp file beside `path`, then rename it over `path`.

    On any failure (ENOSPC, EROFS, EACCES, EDQUOT, Ctrl-C) the previous file is untouched and the temp
    file removed; an OSError is one OutputError naming `path`. Without `mode` the file keeps the mode
    of the one it replaces, or a new one gets 0666 less the umask, as `write_text` would give it
    (reports pass 0600: they name the student).
    """
    data = content.encode() if isinstance(content, str) else content
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    with writing(path, elsewhere=elsewhere, needed=len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
            try:
                if mode is None and path.is_file():
                    os.fchmod(fd, path.stat().st_mode & 0o7777)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with _quiet():
                tmp.unlink(missing_ok=True)
            raise
    return path


PROBE_BYTES = 4096  # one page: enough for a full disk or a read-only folder to refuse it


def probe_writable(path: Path, *, elsewhere: str = "write elsewhere with -o") -> None:
    """Show that `path`'s folder takes a new file, before a run wipes or replaces anything there.

    Later writes can still fail (the disk fills up), and then say so in one line too; this only turns
    the common faults (read-only, not ours, already full) into one line before any work is lost.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.probe"
    with writing(path, elsewhere=elsewhere):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"\0" * PROBE_BYTES)
            finally:
                os.close(fd)
        finally:
            with _quiet():
                tmp.unlink(missing_ok=True)


@contextmanager
def _quiet() -> Iterator[None]:
    try:
        yield
    except OSError as e:  # removing a temp file on a read-only or vanished folder: nothing was written
        if e.errno not in (errno.EROFS, errno.ENOENT, errno.EACCES, errno.EPERM):
            raise
