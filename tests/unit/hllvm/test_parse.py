"""Parsers against real OpenJDK 17 output captured on this machine (data/*.txt).

Expected values are read off the fixture lines by eye (quoted in comments), or counted with plain
string operations independent of the parsers' regular expressions.
"""

from __future__ import annotations

from pathlib import Path

from vmlab.hllvm import parse as P


def test_print_compilation_every_jvm_line_parses(data: Path) -> None:
    for name in ("tiered", "c1only", "c2only"):
        text = (data / f"printcompilation-{name}-jdk17.txt").read_text()
        jvm_lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("VMLAB")]
        assert len(P.parse_print_compilation(text)) == len(jvm_lines), name


def test_print_compilation_hot_loop_tiered(data: Path) -> None:
    # The fixture's HotLoop::loop lines:
    #   52    5 %     3  HotLoop::loop @ 8 (46 bytes)
    #   53    6       3  HotLoop::loop (46 bytes)
    #   53    7 %     4  HotLoop::loop @ 8 (46 bytes)
    #   55    5 %     3  ... @ 8 made not entrant
    #   72  126       4  HotLoop::loop (46 bytes)
    #   73    7 %     4  ... @ 8 made not entrant
    #   74    6       3  ... made not entrant
    #   74  127 %     4  HotLoop::loop @ 8 (46 bytes)
    events = P.parse_print_compilation((data / "printcompilation-tiered-jdk17.txt").read_text())
    first = next(e for e in events if e.method == "HotLoop::loop")
    assert (first.ts_ms, first.compile_id, first.osr, first.tier, first.osr_bci, first.size) == (
        52, 5, True, 3, 8, 46,
    )  # fmt: skip
    s = P.summarize_method(events, "HotLoop::loop")
    assert s.osr == {"3": 1, "4": 2}
    assert s.compiles == {"3": 1, "4": 1}
    assert s.first_osr_ms == {"3": 52, "4": 53}
    assert s.first_compile_ms == {"3": 53, "4": 72}
    assert s.not_entrant == 3


def test_print_compilation_native_and_attributes(data: Path) -> None:
    #   42    4     n 0       jdk.internal.misc.Unsafe::getReferenceVolatile (native)
    text = (data / "printcompilation-tiered-jdk17.txt").read_text()
    native = [e for e in P.parse_print_compilation(text) if e.native]
    assert native and all(e.size is None and e.tier == 0 for e in native)
    assert len(native) == text.count("(native)")


def test_print_compilation_without_tiers_has_no_tier(data: Path) -> None:
    #   30    2 %           HotLoop::loop @ 8 (46 bytes)  -- C2 alone prints no tier column
    events = P.parse_print_compilation((data / "printcompilation-c2only-jdk17.txt").read_text())
    loop = [e for e in events if e.method == "HotLoop::loop"]
    assert loop and all(e.tier is None for e in loop)
    assert P.summarize_method(events, "HotLoop::loop").osr == {"c2": 2}


def test_print_compilation_interpreter_prints_none(data: Path) -> None:
    assert P.parse_print_compilation((data / "printcompilation-xint-jdk17.txt").read_text()) == []


def test_reps_and_checksum(data: Path) -> None:
    text = (data / "printcompilation-xint-jdk17.txt").read_text()
    # VMLAB rep=0 iters=100000 ns=1753681 / rep=1 ... ns=1853595 / checksum=214378947945218
    reps = P.parse_reps(text)
    assert [(r.rep, r.iters, r.ns) for r in reps] == [(0, 100000, 1753681), (1, 100000, 1853595)]
    assert reps[0].ns_per_iter == 17.53681
    assert P.parse_checksum(text) == 214378947945218


def test_flags_final_thresholds(data: Path) -> None:
    # OpenJDK 17 defaults (compiler_globals.hpp / c2_globals_x86.hpp)
    flags = P.parse_flags_final((data / "flagsfinal-jdk17.txt").read_text())
    assert flags["Tier3InvocationThreshold"].as_number() == 200
    assert flags["Tier4InvocationThreshold"].as_number() == 5000
    assert flags["Tier3BackEdgeThreshold"].as_number() == 60000
    assert flags["CompileThreshold"].as_number() == 10000
    assert flags["TieredCompilation"].as_number() is True
    assert flags["CompileThreshold"].kind == "pd product"
    text = (data / "flagsfinal-jdk17.txt").read_text()
    assert len(flags) == sum(1 for ln in text.splitlines() if "{" in ln and "=" in ln)


def test_inlining_by_morphism(data: Path) -> None:
    def area(name: str) -> set[tuple[str, str]]:
        ds = P.parse_print_inlining((data / f"printinlining-{name}-jdk17.txt").read_text())
        return {(d.method, d.message) for d in ds if d.method.endswith("::area") and d.depth == 0}

    assert ("CallSite$Square::area", "inline (hot)") in area("mono")
    bi = area("bi")
    assert {("CallSite$Square::area", "inline (hot)"), ("CallSite$Rect::area", "inline (hot)")} <= bi
    mega = area("mega")
    assert ("CallSite$Shape::area", "virtual call") in mega
    assert not any(msg == "inline (hot)" for _, msg in mega)


def test_inlining_skips_torn_lines(data: Path) -> None:
    # the mono fixture has a line torn by another compiler thread:
    #   "   ...   45  112     n 0  java.lang.invoke.MethodHandle::invokeBasic(...) (native)"
    #   "    @ 2092   jdk.internal.org.objectweb.asm.Frame::push (109 bytes)   callee is too large"
    ds = P.parse_print_inlining((data / "printinlining-mono-jdk17.txt").read_text())
    assert all(not d.method.startswith("112") for d in ds)
    assert any(d.bci == 2092 for d in ds)


def test_gc_log_g1(data: Path) -> None:
    text = (data / "gc-g1-jdk17.txt").read_text()
    collector, pauses = P.parse_gc_log(text)
    assert collector == "G1"
    assert len(pauses) == text.count(" Pause ")
    # [0.047s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 6M->1M(64M) 2.213ms
    assert pauses[0] == P.GcPause(0, 0.047, "Young (Normal)", "G1 Evacuation Pause", 6.0, 1.0, 64.0, 2.213)
    # [0.321s][info][gc] GC(31) Pause Remark 34M->11M(47M) 0.913ms   -- no cause printed
    remark = next(p for p in pauses if p.kind == "Remark")
    assert (remark.gc_id, remark.cause, remark.pause_ms) == (31, "", 0.913)


def test_gc_log_serial(data: Path) -> None:
    text = (data / "gc-serial-jdk17.txt").read_text()
    collector, pauses = P.parse_gc_log(text)
    assert collector == "Serial"
    # [0.050s][info][gc] GC(0) Pause Young (Allocation Failure) 17M->1M(61M) 2.778ms
    assert (pauses[0].kind, pauses[0].cause, pauses[0].before_mb) == ("Young", "Allocation Failure", 17.0)
    assert len(pauses) == text.count(" Pause ")


def test_gc_log_units_and_full() -> None:
    line = "[1.5s][info][gc] GC(7) Pause Full (System.gc()) 2048K->512K(1G) 12.5ms"
    _, (p,) = P.parse_gc_log(line)
    assert (p.kind, p.cause, p.before_mb, p.after_mb, p.heap_mb) == ("Full", "System.gc()", 2.0, 0.5, 1024.0)


def test_class_load_sources(data: Path) -> None:
    cds = (data / "classload-cds-jdk17.txt").read_text()
    loads = P.parse_class_load(cds)
    assert len(loads) == len(cds.splitlines())
    assert sum(1 for ld in loads if ld.origin == "cds") == cds.count("source: shared objects file")
    nocds = P.parse_class_load((data / "classload-nocds-jdk17.txt").read_text())
    assert not any(ld.origin == "cds" for ld in nocds)
    assert next(ld for ld in nocds if ld.name == "HotLoop").origin == "file"


def test_link_error_type_checker_and_inference() -> None:
    checker = (
        "Error: Unable to initialize main class BadAddType\n"
        "Caused by: java.lang.VerifyError: Bad type on operand stack\n"
        "Exception Details:\n  Location:\n    BadAddType.main([Ljava/lang/String;)V @2: iadd\n"
        "  Reason:\n    Type float (current frame, stack[0]) is not assignable to integer\n"
    )
    assert P.link_error(checker) == (
        "java.lang.VerifyError",
        "Bad type on operand stack",
        "Type float (current frame, stack[0]) is not assignable to integer",
    )
    old = (
        "Caused by: java.lang.VerifyError: (class: X, method: main signature: ([Ljava/lang/String;)V) "
        "Expecting to find integer on stack\n"
    )
    err, msg, reason = P.link_error(old) or ("", "", "")
    assert err == "java.lang.VerifyError" and msg.endswith("Expecting to find integer on stack")
    assert reason == ""
    assert P.link_error("hello\n") is None
