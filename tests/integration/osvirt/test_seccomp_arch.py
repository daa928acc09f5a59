"""The model's seccomp filter cannot be bypassed through another ABI of the same CPU (x86_64 only).

On x86_64 a process can make a system call three ways: `syscall` with the x86_64 number (mkdir = 83),
`syscall` with the x32 number (83 | __X32_SYSCALL_BIT 0x40000000), and `int 0x80` with the i386 number
(mkdir = 39, arch AUDIT_ARCH_I386). A filter that compares only the number lets the last two through.
Each case runs in a forked child of a fresh Python (the filter is for good), first without the filter
(what the kernel itself does, derived from its config: /boot/config-RELEASE or /proc/config.gz) and then
with the model's `seccomp_deny(["mkdir", "mkdirat"])`: the native call must fail with EPERM, the other
two must kill the child with SIGSYS, and no directory may appear.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.osvirt.conftest import SOLUTION

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="x32 and i386 are x86_64 ABIs")

# One child per call; prints {"rc": ..., "errno": ..., "made": ...} or dies from a signal.
CHILD = r"""
import ctypes, importlib.util, json, mmap, os, sys
spec = importlib.util.spec_from_file_location("box", sys.argv[1])
box = importlib.util.module_from_spec(spec); spec.loader.exec_module(box)
how, path, filt = sys.argv[2], sys.argv[3], sys.argv[4] == "1"
libc = ctypes.CDLL(None, use_errno=True)
if how == "i386":
    # code and path below 4 GiB (MAP_32BIT): int 0x80 takes 32-bit pointers
    mem = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)
    mem = ctypes.c_void_p(mem).value
    raw = path.encode() + b"\0"
    ctypes.memmove(mem + 64, raw, len(raw))
    # mov eax, 39; mov ebx, path; mov ecx, 0755; int 0x80; ret
    code = (b"\xb8\x27\x00\x00\x00" + b"\xbb" + (mem + 64).to_bytes(4, "little")
            + b"\xb9\xed\x01\x00\x00" + b"\xcd\x80" + b"\xc3")
    ctypes.memmove(mem, code, len(code))
    call = ctypes.CFUNCTYPE(ctypes.c_int)(mem)
if filt:
    box.seccomp_deny(["mkdir", "mkdirat"])
if how == "native":
    rc = libc.syscall(83, path.encode(), 0o755); err = ctypes.get_errno()
elif how == "x32":
    rc = libc.syscall(0x40000000 | 83, path.encode(), 0o755); err = ctypes.get_errno()
else:
    r = call(); rc, err = (r, 0) if r >= 0 else (-1, -r)
print(json.dumps({"rc": rc, "errno": err, "made": os.path.isdir(path)}))
"""


def _kernel_config() -> dict[str, str] | None:
    """CONFIG_* -> value of the running kernel, or None when it publishes no config."""
    boot = Path(f"/boot/config-{os.uname().release}")
    proc = Path("/proc/config.gz")
    if boot.is_file():
        text = boot.read_text()
    elif proc.is_file():
        text = gzip.decompress(proc.read_bytes()).decode()
    else:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


def _call(tmp_path: Path, how: str, filtered: bool) -> tuple[int, dict[str, object] | None, bool]:
    path = tmp_path / f"{how}-{int(filtered)}"
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(SOLUTION), how, str(path), "1" if filtered else "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, path.is_dir()


def test_native_call_is_denied_with_eperm(tmp_path: Path) -> None:
    rc, out, made = _call(tmp_path, "native", True)
    assert rc == 0 and out == {"rc": -1, "errno": errno.EPERM, "made": False} and not made


def test_x32_bit_does_not_bypass_the_filter(tmp_path: Path) -> None:
    config = _kernel_config()
    if config is None:
        pytest.skip("the kernel publishes no config (/boot/config-*, /proc/config.gz): x32 unknown")
    rc, out, made = _call(tmp_path, "x32", False)
    if config.get("CONFIG_X86_X32_ABI") == "y":  # the kernel runs x32 calls: the unfiltered mkdir works
        assert rc == 0 and out is not None and out["rc"] == 0 and made
    else:  # "# CONFIG_X86_X32_ABI is not set": the kernel answers ENOSYS, nothing is made
        assert rc == 0 and out == {"rc": -1, "errno": errno.ENOSYS, "made": False} and not made
    rc, out, made = _call(tmp_path, "x32", True)
    assert rc == -signal.SIGSYS and out is None and not made  # the filter kills: SECCOMP_RET_KILL_PROCESS


def test_i386_int80_does_not_bypass_the_filter(tmp_path: Path) -> None:
    config = _kernel_config()
    if config is None or config.get("CONFIG_IA32_EMULATION") != "y":
        pytest.skip("no CONFIG_IA32_EMULATION=y in the kernel's config: int 0x80 is not a system call here")
    if "ia32_emulation=0" in Path("/proc/cmdline").read_text() or (
        config.get("CONFIG_IA32_EMULATION_DEFAULT_DISABLED") == "y"
        and "ia32_emulation=1" not in Path("/proc/cmdline").read_text()
    ):
        pytest.skip("i386 emulation is switched off on the kernel's command line (ia32_emulation)")
    rc, out, made = _call(tmp_path, "i386", False)
    assert rc == 0 and out is not None and out["rc"] == 0 and made  # i386 mkdir works unfiltered
    rc, out, made = _call(tmp_path, "i386", True)
    assert rc == -signal.SIGSYS and out is None and not made
