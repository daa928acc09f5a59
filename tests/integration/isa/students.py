"""Student solutions for each task, made from the skeletons: one correct, one subtly wrong per task.

Each is the skeleton with its TODOs filled in, so a skeleton that changes its interface breaks these
(the anchors are asserted). The wrong ones carry the mistakes students make:
- t1: BACK7 tests L >= 0;
- t2: a predecoded BACK7 tests L before decrementing it;
- t3: `select` also fuses pairs that start with BACK7, so a taken jump runs the next instruction too;
- t4: the fall-through exit forgets to count the BACK7;
- t5: the stub chains but never patches its slot (right answers, wrong number of chainings);
- t6: the loop's end is checked once per unrolled group, not after each copy of the body.
"""

from __future__ import annotations

from pathlib import Path

SKELETONS = Path(__file__).resolve().parents[3] / "labs" / "isa-emulation" / "skeleton"
FILES = {
    "t1": "t1_interpret.py",
    "t2": "t2_threaded.py",
    "t3": "t3_super.py",
    "t4": "t4_translate.py",
    "t5": "t5_chain.py",
    "t6": "t6_superblock.py",
}

T1 = """\
        if op == 1:
            a = 0
        elif op == 2:
            a += 3
        elif op == 3:
            a -= 1
        elif op == 4:
            l = a
        else:
            l -= 1
            if l {cmp} 0:
                ip -= 7
"""

T2_HANDLERS = {
    'raise NotImplementedError("task 2: INC3A")': "return ip + 1, a + 3, l",
    'raise NotImplementedError("task 2: DECA")': "return ip + 1, a - 1, l",
    'raise NotImplementedError("task 2: SETL")': "return ip + 1, a, a",
    'raise NotImplementedError("task 2: BACK7 (ip is the BACK7\'s own position here)")': (
        "l -= 1\n    return (ip - 6 if l > 0 else ip + 1), a, l"
    ),
}
T2_PREDECODE = """\
    def make(op: int, nxt: int, tgt: int) -> Predecoded:
        if op == 0:
            return lambda a, l: (-1, a, l)
        if op == 1:
            return lambda a, l: (nxt, 0, l)
        if op == 2:
            return lambda a, l: (nxt, a + 3, l)
        if op == 3:
            return lambda a, l: (nxt, a - 1, l)
        if op == 4:
            return lambda a, l: (nxt, a, a)
        return lambda a, l: ((tgt if l{dec} > 0 else nxt), a, l - 1)

    return [make(op, i + 1, i - 6) for i, op in enumerate(code)]"""

T3_SELECT = """\
    ok = [(p, c) for p, c in pairs.items() if {keep}]
    ok.sort(key=lambda pc: -pc[1])
    return [p for p, _ in ok[:top]]"""
T3_FUSED = """\
    one = single(first, next_ip - 1, target)
    two = single(second, next_ip, target)

    def handler(a: int, l: int, n: int) -> tuple[int, int, int, int]:
        _, a, l, n = one(a, l, n)
        return two(a, l, n)

    return handler"""

T4 = """\
    lines = ["def block(a, l, n):"]
    ip = start
    while code[ip] not in (0, 5):
        lines.append(["", "    a = 0", "    a += 3", "    a -= 1", "    l = a"][code[ip]])
        ip += 1
    size = ip + 1 - start
    if code[ip] == 0:
        lines.append(f"    return -1, a, l, n + {{size}}")
    else:
        lines.append("    l -= 1")
        lines.append(f"    if l > 0: return {{ip - 6}}, a, l, n + {{size}}")
        lines.append(f"    return {{ip + 1}}, a, l, n + {{size{fall}}}")
    namespace: dict[str, object] = {{}}
    exec(compile("\\n".join(lines) + "\\n", f"<block {{start}}>", "exec"), namespace)
    return namespace["block"]  # type: ignore[return-value]"""

T5 = """\
            fn = self.block(target)
            {patch}
            self.chainings += 1
            return fn, a, l, n"""

T6 = """\
    end = head
    while code[end] not in (0, 5):
        end += 1
    if code[end] != 5 or end - 6 != head:
        return None
    body = code[head:end]
    size = end + 1 - head

    def superblock(a: int, l: int, n: int) -> tuple[Chained, int, int, int]:
        for _ in range(unroll):
            for op in body:
                if op == 2:
                    a += 3
                elif op == 1:
                    a = 0
                elif op == 3:
                    a -= 1
                else:
                    l = a
            l -= 1
            n += size{inner}
        return superblock, a, l, n

    return superblock"""

T6_EXIT = """
            if l <= 0:
                return leave, a, l, n"""
T6_LATE = """
        if l <= 0:
            return leave, a, l, n"""


def _sub(src: str, old: str, new: str) -> str:
    assert old in src, f"the skeleton no longer has {old!r}"
    return src.replace(old, new)


def solution(task: str, *, wrong: bool = False) -> str:
    src = (SKELETONS / FILES[task]).read_text()
    if task == "t1":
        todo = (
            "        # TODO task 1: CLRA, INC3A, DECA, SETL and BACK7. Careful with BACK7: IP has already "
            "moved past it.\n"
            '        raise NotImplementedError(f"opcode {op} at {ip - 1} is not implemented yet")\n'
        )
        return _sub(src, todo, T1.format(cmp=">=" if wrong else ">"))
    if task == "t2":
        for old, new in T2_HANDLERS.items():
            src = _sub(src, old, new)
        return _sub(
            src,
            '    raise NotImplementedError("task 2: predecode")',
            T2_PREDECODE.format(dec="" if wrong else " - 1"),
        )
    if task == "t3":
        keep = "True" if wrong else "p[0] not in (0, 5)"
        src = _sub(src, '    raise NotImplementedError("task 3: select")', T3_SELECT.format(keep=keep))
        return _sub(src, '    raise NotImplementedError("task 3: fused")', T3_FUSED)
    if task == "t4":
        return _sub(
            src, '    raise NotImplementedError("task 4: translate")', T4.format(fall=" - 1" if wrong else "")
        )
    if task == "t5":
        old = '            raise NotImplementedError("task 5: chain this exit to the block at `target`")'
        return _sub(src, old, T5.format(patch="pass" if wrong else "slots[name] = fn"))
    if task == "t6":
        old = '    raise NotImplementedError("task 6: form_superblock")'
        return _sub(src, old, T6.format(inner=T6_LATE if wrong else T6_EXIT))
    raise KeyError(task)


def write(tmp: Path, task: str, *, wrong: bool = False) -> Path:
    path = tmp / f"{task}_{'wrong' if wrong else 'ok'}.py"
    path.write_text(solution(task, wrong=wrong))
    return path
