"""Does the JVM accept a class? Assemble a Jasmin file when needed, run the class, read the verdict.

The class is started with the real launcher (`java -cp DIR Name`): the launcher links the main class
before looking up `main`, and linking runs the verifier, so a broken class is refused before any of its
code runs. Jasmin (Debian's jasmin-sable 2.5) writes class-file version 45/46, below 50, so its classes
go to HotSpot's type-inferring verifier, whose messages read "(class: X, method: m signature: ...)
Expecting to find integer on stack". Jasmin exits 0 even when a file does not assemble; the failure is
its "FILE:LINE: JAS Error ..." line on stderr and a missing .class file.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmlab.errors import UsageError
from vmlab.hllvm.jvm import AssembleFailed, JvmFailed, require, run_java
from vmlab.hllvm.parse import link_error

_EXPECT = re.compile(r"^\s*;\s*expect:\s*(?P<expect>.+?)\s*$", re.MULTILINE)
_JAS_ERROR = re.compile(
    r"^(?P<where>[^\s:]+:\d+): (?P<msg>.*JAS Error.*)$|^(?P<other>.*Error.*)$", re.MULTILINE
)


@dataclass
class Verdict:
    """What the JVM said about one class."""

    source: str  # the file as given (name only)
    class_name: str
    status: str  # "accepted" or "rejected"
    error: str = ""  # java.lang.VerifyError, java.lang.ClassFormatError, ...
    message: str = ""  # the error's message as the JVM printed it
    reason: str = ""  # the type checker's "Reason:" line, when it gave one
    major: int | None = None  # class-file major version: which verifier ran (>= 50 type checking)
    stdout: str = ""
    exit_code: int = 0
    expect: str | None = None  # "accepted" or a message substring, from a `; expect:` line
    notes: list[str] = field(default_factory=list)

    @property
    def expect_met(self) -> bool | None:
        if self.expect is None:
            return None
        if self.expect == "accepted":
            return self.status == "accepted"
        return self.status == "rejected" and self.expect in f"{self.message} {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expect_met": self.expect_met}


def expectation(source_text: str) -> str | None:
    """The `; expect: ...` comment of a Jasmin file: `accepted` or a VerifyError message substring."""
    m = _EXPECT.search(source_text)
    return m["expect"] if m else None


def assemble(j_file: Path, out_dir: Path) -> list[Path]:
    """Run Jasmin on one file; the class files it wrote, or AssembleFailed with Jasmin's own line."""
    jasmin = require("jasmin")
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.rglob("*.class"))
    try:
        p = subprocess.run(
            [str(jasmin), "-d", str(out_dir), str(j_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise JvmFailed(f"jasmin {j_file.name} ran longer than 60 s") from None
    made = sorted(set(out_dir.rglob("*.class")) - before)
    text = p.stderr + p.stdout
    if p.returncode != 0 or "JAS Error" in text or re.search(r"Found \d+ errors", text) or not made:
        m = _JAS_ERROR.search(text)
        line = (m["where"] + ": " + m["msg"]) if m and m["where"] else (m["other"] if m else "")
        line = line.strip() or next((ln for ln in text.splitlines() if ln.strip()), "no class file written")
        raise AssembleFailed(
            f"{j_file.name} does not assemble: {line.strip()}", hint="fix the line Jasmin names and retry"
        )
    return made


def class_info(data: bytes) -> tuple[str, int]:
    """(binary class name with dots, major version) read from the class file (JVMS 4.1, 4.4)."""
    if len(data) < 10 or data[:4] != b"\xca\xfe\xba\xbe":
        raise UsageError("not a class file (no CAFEBABE magic)", hint="give a .class or a .j file")
    _minor, major, count = struct.unpack_from(">HHH", data, 4)
    pos = 10
    utf8: dict[int, str] = {}
    classes: dict[int, int] = {}
    i = 1
    try:
        while i < count:
            tag = data[pos]
            if tag == 1:
                (length,) = struct.unpack_from(">H", data, pos + 1)
                utf8[i] = data[pos + 3 : pos + 3 + length].decode("utf-8", "replace")
                pos += 3 + length
            elif tag == 7:
                classes[i] = struct.unpack_from(">H", data, pos + 1)[0]
                pos += 3
            elif tag in (8, 16, 19, 20):  # String, MethodType, Module, Package
                pos += 3
            elif tag == 15:  # MethodHandle
                pos += 4
            elif tag in (3, 4, 9, 10, 11, 12, 17, 18):  # 4-byte payloads
                pos += 5
            elif tag in (5, 6):  # Long, Double take two slots (JVMS 4.4.5)
                pos += 9
                i += 1
            else:
                raise UsageError(f"class file has an unknown constant pool tag {tag}")
            i += 1
        (this_idx,) = struct.unpack_from(">H", data, pos + 2)
        return utf8[classes[this_idx]].replace("/", "."), major
    except (struct.error, IndexError, KeyError):
        raise UsageError("class file is truncated or malformed", hint="rebuild it") from None


def run_class(class_file: Path, *, source: str | None = None, expect: str | None = None) -> Verdict:
    """Load and run one class in a fresh JVM; rejection by the verifier is a verdict, not an error."""
    data = class_file.read_bytes()
    name, major = class_info(data)
    with tempfile.TemporaryDirectory(prefix="vmlab-verify-") as tmp:
        dest = Path(tmp) / (name.replace(".", "/") + ".class")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(class_file, dest)
        run = run_java(["-Xshare:auto", "-cp", tmp, name], timeout_s=30, check=False)
    verdict = Verdict(
        source=source or class_file.name,
        class_name=name,
        status="accepted",
        major=major,
        stdout=run.stdout,
        exit_code=run.returncode,
        expect=expect,
    )
    found = link_error(run.stderr)
    if found is not None:
        verdict.status = "rejected"
        verdict.error, verdict.message, verdict.reason = found
    elif "Main method not found" in run.stderr:
        verdict.notes.append("no main method: the class was linked (so verified), not run")
    elif run.returncode != 0:
        last = next((ln for ln in reversed(run.stderr.splitlines()) if ln.strip()), "")
        verdict.notes.append(f"verified, but main ended with exit {run.returncode}: {last.strip()[:160]}")
    return verdict


def verify_file(path: Path, work: Path | None = None) -> list[Verdict]:
    """A .class file as it is, or a .j file assembled first (one verdict per class it defines)."""
    if not path.is_file():
        raise UsageError(f"{path} does not exist", hint="give a .j or .class file")
    if path.suffix == ".class":
        return [run_class(path)]
    if path.suffix != ".j":
        raise UsageError(f"{path.name}: expected a .j (Jasmin) or .class file")
    expect = expectation(path.read_text(errors="replace"))
    with tempfile.TemporaryDirectory(prefix="vmlab-jasmin-", dir=work) as tmp:
        classes = assemble(path, Path(tmp))
        return [run_class(c, source=path.name, expect=expect) for c in classes]
