"""The runtime registry, the run context and the sandbox's log parser (no daemon needed)."""

from __future__ import annotations

import pytest

from vmlab.backends import DEFAULTS, RUNTIMES, default_runtime, runtime_kind, runtime_names
from vmlab.backends.context import RunContext, parse_accel
from vmlab.errors import UsageError


def test_every_kind_has_a_default_runtime_of_that_kind() -> None:
    assert set(DEFAULTS) == {"container", "sandbox", "vm"}
    for kind, name in DEFAULTS.items():
        assert runtime_kind(name) == kind
    assert runtime_names("sandbox") == ["docker-runsc"]


def test_every_runtime_module_offers_open_runtime() -> None:
    import importlib

    for info in RUNTIMES.values():
        assert callable(importlib.import_module(info.module).open_runtime), info.name


def test_unknown_names_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown runtime"):
        runtime_kind("firecracker")
    with pytest.raises(UsageError, match="unknown kind"):
        default_runtime("jail")
    with pytest.raises(UsageError, match="unknown accel"):
        parse_accel("xen")


def test_run_context_and_one_runtime_per_kind() -> None:
    ctx = RunContext.build("test:///default", accel=parse_accel("tcg"))
    assert (ctx.uri, ctx.accel, ctx.runtime_for("vm")) == ("test:///default", "tcg", "libvirt")
    assert RunContext.build(runtimes=["docker-runsc"]).runtime_for("sandbox") == "docker-runsc"
    with pytest.raises(UsageError, match="unknown runtime 'x'"):
        RunContext.build(runtimes=["docker", "x"])


def test_sentry_strace_lines_are_counted_per_call() -> None:
    from vmlab.backends.docker.sentry import count_sentry_log

    log = "\n".join(
        [
            "I1126 15:36:36.907060   16893 strace.go:561] [   3:   3] sh E close(0xa host:[7])",
            "I1126 15:36:36.907066   16893 strace.go:599] [   3:   3] sh X close(0xa host:[7]) = 0 (0x0)",
            "I1126 15:36:36.907100   16893 strace.go:561] [   3:   3] sh E write(0x1 host:[1], 0x7f, 0x3)",
            "I1126 15:36:36.907101   16893 strace.go:561] [  12:  12] od E write(0x1 host:[1], 0x7f, 0x3)",
            "I1126 15:36:36.907104   16893 strace.go:599] [   3:   3] sh X exit_group(0x0) = 0 (0x0)",
            "I1126 15:36:36.907104   16893 loader.go:1] not a strace line E nope(",
        ]
    )
    assert count_sentry_log(log) == {"close": 1, "write": 2, "total": 3}


@pytest.mark.parametrize("release", ["20221219", "20240729"])
def test_sentry_strace_of_each_runsc_release(release: str) -> None:
    """Real Sentry logs (`runsc --strace do /bin/sh -c 'echo hi; ...'`, first 60 strace lines) of Debian
    12's and Debian 13's runsc: every entry line counted once, exits never."""
    from pathlib import Path

    from vmlab.backends.docker.sentry import count_sentry_log

    text = (Path(__file__).parent / "data" / f"runsc-{release}-strace.txt").read_text()
    entries = [ln.split("strace.go:", 1)[1].split("] ", 2)[2].split(" ", 2) for ln in text.splitlines()]
    expected = sum(1 for _comm, kind, _rest in entries if kind == "E")
    counts = count_sentry_log(text)
    assert counts["total"] == expected == 30
    assert counts["brk"] >= 1 and counts["mmap"] >= 1


@pytest.mark.parametrize(
    ("text", "known"),
    [
        ("runsc version 0.0~20221219.0", True),
        ("runsc version 0.0~20240729.0", True),
        ("runsc version release-20250512.0", False),
        ("", True),
    ],
)
def test_runsc_version_note(text: str, known: bool) -> None:
    from vmlab.host.versions import runsc_version_note

    note = runsc_version_note(text)
    assert (note is None) is known
    if note:
        assert note.startswith("runsc 20250512 is outside") and "20221219, 20240729" in note
