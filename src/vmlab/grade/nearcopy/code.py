"""Near-copies of code: Pygments tokens, normalised per language, winnowed with copydetect."""

from __future__ import annotations

import bisect
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab.grade.nearcopy.pair import NearCopy

# copydetect's similarity of one file to another: the characters of its normalised code covered by
# k-grams the other file has too, over the characters covered by all its (non-skeleton) k-grams. The
# score of a pair is the larger of the two directions (so a copy padded with extra code is caught), as
# copydetect's own report does when every file is both test and reference. Measured on honest pairs
# (docs/grading.md, Near-copies), the skeleton subtracted: independent kvm-api `own` solutions reach 0.71
# (two in-place hypercalls written differently), independent isa-emulation t1 engines 0.40; copies
# with comments, names, layout and number notation changed score 1.0 in every language tested.
CODE_THRESHOLD = 0.8

# k: the length in characters of normalised code a matching passage must reach (copydetect's "noise
# threshold"). copydetect's default 25 suits Python, C, Java and Jasmin, where names are one
# character and 25 characters are 3 to 5 statements. Assembler keeps mnemonics and registers, about
# 10 characters an instruction ("movdx,1016;"), so 20 is two instructions: a kvm-api solution of 5
# instructions (about 55 characters) still gives 35 k-grams, and no single shared instruction, such
# as every program's final "hlt;", counts. Machine code (.hex, .bin as hex digits): 12 characters are
# 6 bytes, about two instructions again (the hypercall solution is 18 bytes).
K_DEFAULT = 25
K_ASM = 20
K_MACHINE = 12
# Winnowing window 1 keeps every k-gram (copydetect's defaults: guarantee threshold 25 = noise
# threshold, window = 25 - 25 + 1): hand-in files are small, and with a wider window a 5-instruction
# program would keep only a handful of fingerprints, and skeleton subtraction would leave strays.
WINDOW = 1
# A match must cover at least this many k-grams' length of normalised code (assembler: 40 characters,
# about 4 instructions; Python: 50, about 6 statements): after the skeleton is subtracted a student
# may add only a line or two, and two such remainders (the same `hlt`, the same `return a, l, n`) are
# no evidence whatever their share of the rest.
MIN_OVERLAP_KGRAMS = 2
# Below this many characters the evidence line says "short": a whole solution that small (kvm-api's
# 5-instruction hypercall is 55) can be reinvented the same way. `vmlab grade` flags no such match
# (`class_near_copies`): a class of honest students converges on it.
SHORT = 100
# A k-gram held by more than this share of the class is common idiom, like the skeleton: it does not
# make two hand-ins candidates for comparison (the comparison itself still counts it). MOSS does the
# same; it also keeps the candidate search linear in practice. Below COMMON_MIN holders it never applies.
COMMON_SHARE = 0.1
COMMON_MIN = 20
# Candidates for a full comparison share at least this fraction of the threshold of the smaller file's
# distinctive k-grams, and at least MIN_SHARED of them (a copy of a 5-instruction program shares 36).
PREFILTER = 0.5
MIN_SHARED = 2
# Larger files are skipped: a hand-in is untrusted, and Pygments lexes about 0.5 MB/s.
MAX_FILE_BYTES = 512 * 1024

_SUFFIX_LANG = {
    ".py": "python",
    ".c": "c",
    ".h": "c",
    ".java": "java",
    ".j": "jasmin",
    ".asm": "nasm",
    ".nasm": "nasm",
    ".S": "gas",
    ".hex": "hex",
    ".bin": "bin",
}
# copydetect's own filter (names to V/F/O, strings to S, comments and whitespace dropped) is right for
# these: tested on each. It is wrong for assembler (Pygments' NASM and GAS lexers call every mnemonic
# Name.Function, so all instructions become "F"; GAS registers become "V"; label definitions stay as
# written) and for Jasmin (no lexer by suffix, and labels stay as written): those are normalised here.
_COPYDETECT_FILTERED = frozenset({"python", "c", "java"})


def language_of(path: Path, text: str | None = None) -> str | None:
    """The language a file is compared as, by suffix; None: not compared.

    `.s` is NASM syntax in this kit (vmlab's assembler reads .asm and .s alike) unless the text uses
    AT&T registers (`%eax`), then it is GAS."""
    if path.suffix.lower() == ".s" and path.suffix != ".S":
        if text is None:
            text = path.read_text(encoding="utf-8", errors="replace")
        return "gas" if re.search(r"%[a-z]{2,3}\b", text) else "nasm"
    return _SUFFIX_LANG.get(path.suffix) or _SUFFIX_LANG.get(path.suffix.lower())


def _canonical_number(text: str) -> str:
    """0x3f8, 3f8h and 1016 are one number: written as decimal, so a changed notation does not hide."""
    t = text.lower().replace("_", "")
    try:
        if t.endswith("h") and not t.startswith("0x"):
            return str(int(t[:-1], 16))
        if t.endswith("b") and not t.startswith("0x"):
            return str(int(t[:-1], 2))
        if t.endswith(("q", "o")):
            return str(int(t[:-1], 8))
        return str(int(t, 0))
    except ValueError:
        return t


_PREFIXES = frozenset({"rep", "repe", "repz", "repne", "repnz", "lock"})


def _normalise_assembler(code: str, language: str) -> tuple[str, list[int]]:
    """Assembler or Jasmin as normalised text and the source line of each of its characters.

    Kept: mnemonics, registers, directives, punctuation (lower-cased except Jasmin, which is
    case-sensitive), numbers as decimal. Replaced: label definitions by L, other names by V (Jasmin:
    methods F, classes O as copydetect does), strings by S. Dropped: comments and whitespace; each
    source line with code ends in ";" so instruction boundaries survive reformatting."""
    from pygments import lexers, token  # type: ignore[import-untyped]

    lexer = lexers.get_lexer_by_name(language)
    out: list[str] = []
    line_of: list[int] = []
    line = 1
    pending = False  # the current line produced code: close it with ";"

    def emit(s: str) -> None:
        out.append(s)
        line_of.extend([line] * len(s))

    for ttype, value in lexer.get_tokens(code):
        newlines = value.count("\n")
        if ttype in token.Comment or ttype in token.Text or not value.strip():
            if newlines and pending:
                emit(";")
                pending = False
            line += newlines
            continue
        v = value.strip() if language == "jasmin" else value.strip().lower()
        if ttype in token.Name.Label:
            s = "L:" if v.endswith(":") else "L"
        elif ttype in token.Literal.Number:
            s = _canonical_number(v)
        elif ttype in token.Literal.String:
            s = "S"
        elif language == "jasmin" and ttype in token.Name.Function:
            s = "F"
        elif language == "jasmin" and ttype in token.Name.Class:
            s = "O"
        elif language == "gas" and ttype in token.Name.Constant:
            s = "$" + _canonical_number(v[1:]) if v.startswith("$") else "V"  # $imm, or a symbol
        elif ttype in token.Name.Function or ttype in token.Name.Builtin or ttype in token.Name.Attribute:
            s = v  # mnemonics, NASM registers, GAS directives
        elif language == "gas" and ttype in token.Name.Variable:
            s = v  # GAS registers (%eax)
        elif language == "jasmin" and ttype in token.Name.Namespace:
            s = v  # java/lang/
        elif ttype in token.Name and out and out[-1] in _PREFIXES:
            s = v  # NASM lexes "rep movsb" as a prefix and a name: the string instruction stays
        elif ttype in token.Name:
            s = "V"  # label references, equ constants, Jasmin field names
        else:
            s = v  # keywords (Jasmin instructions), operators, punctuation
        emit(s)
        pending = True
        line += newlines
    if pending:
        emit(";")
    return "".join(out), line_of


def _normalise_machine_code(raw: bytes, language: str) -> tuple[str, list[int]]:
    """Machine code as hex digits: .hex text without comments (; or #) and layout, .bin bytes as is.

    Positions map to the .hex line, or for .bin to the byte offset (evidence then names bytes)."""
    out: list[str] = []
    line_of: list[int] = []
    if language == "bin":
        for i, b in enumerate(raw):
            out.append(f"{b:02x}")
            line_of.extend([i, i])
        return "".join(out), line_of
    for n, text in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        digits = re.sub(r"[^0-9a-f]", "", re.split(r"[;#]", text, maxsplit=1)[0].lower())
        out.append(digits)
        line_of.extend([n] * len(digits))
    return "".join(out), line_of


@dataclass
class _Doc:
    """One file's copydetect fingerprint, and how to map a position in it back to a source line."""

    path: Path
    language: str
    fingerprint: Any  # copydetect.CodeFingerprint (untyped)
    hashes: frozenset[int]  # its k-gram hashes
    line_of: list[int] | None  # per normalised character; None: positions are in the raw text
    newlines: list[int]  # offsets of "\n" in the raw text (used when line_of is None)

    def line(self, pos: int) -> int:
        if self.line_of is not None:
            return self.line_of[min(max(pos, 0), len(self.line_of) - 1)] if self.line_of else 1
        return bisect.bisect_left(self.newlines, pos) + 1


def _fingerprint(path: Path, boilerplate: frozenset[int] = frozenset()) -> _Doc | None:
    """copydetect's fingerprint of one file with the given k-gram hashes removed; None: not code.

    k-gram hashes are Python's `hash` of the k-gram string, salted per process: compute boilerplate and
    hand-ins in one process, never store them."""
    from copydetect import CodeFingerprint  # type: ignore[import-untyped]
    from copydetect.utils import get_token_coverage  # type: ignore[import-untyped]

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.decode("utf-8", "replace")
    language = language_of(path, text)
    if language is None:
        return None
    k = K_MACHINE if language in ("hex", "bin") else K_ASM if language in ("nasm", "gas") else K_DEFAULT
    if language in _COPYDETECT_FILTERED:
        fp = CodeFingerprint(str(path), k, WINDOW, filter=True, language=language, fp=io.StringIO(text))
        line_of = None
    else:
        if language in ("hex", "bin"):
            norm, line_of = _normalise_machine_code(raw, language)
        else:
            norm, line_of = _normalise_assembler(text, language)
        fp = CodeFingerprint(str(path), k, WINDOW, filter=False, fp=io.StringIO(norm))
    if boilerplate:
        # Subtracted here, not through CodeFingerprint(boilerplate=...): copydetect 0.5.0 intersects
        # with np.intersect1d(assume_unique=True) on hashes that repeat, which drops every repeated
        # k-gram of the file as if it were boilerplate. Same result otherwise: the skeleton's k-grams
        # go from the index and from the token coverage a similarity is divided by.
        fp.hash_idx = {h: i for h, i in fp.hash_idx.items() if int(h) not in boilerplate}
        fp.hashes = set(fp.hash_idx)
        fp.token_coverage = get_token_coverage(fp.hash_idx, k, len(fp.filtered_code))
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    hashes = frozenset(int(h) for h in fp.hashes)
    return _Doc(path, language, fp, hashes, line_of, newlines)


def _all_kgrams(path: Path) -> frozenset[int]:
    """Every k-gram hash of a skeleton file (window 1, as copydetect builds boilerplate)."""
    doc = _fingerprint(path)
    return doc.hashes if doc is not None else frozenset()


def _input_of(key: str) -> str:
    """The input a file belongs to: "program", or "jasmin" for "jasmin/Good.j" of a dir input."""
    return key.split("/", 1)[0]


def _shown(name: str, doc: _Doc) -> str:
    """A dir input's file by its path in the input ("jasmin/Good.j"), a file input's by its name."""
    return name if "/" in name else doc.path.name


def _ranges(doc: _Doc, slices: Any) -> str:
    """Copied passages as source line ranges, e.g. "lines 3-9, 12-14" (.bin: byte ranges)."""
    spans: list[tuple[int, int]] = []
    for start, end in zip(slices[0], slices[1], strict=True):
        lo, hi = doc.line(int(start)), doc.line(int(end) - 1)
        if spans and lo <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
    unit = "bytes" if doc.language == "bin" else "lines"
    shown = ", ".join(f"{lo}-{hi}" if hi != lo else f"{lo}" for lo, hi in spans[:4])
    return f"{unit} {shown}{', ...' if len(spans) > 4 else ''}"


def code_near_copies(
    subs: dict[str, dict[str, Path]],
    boilerplate: dict[str, list[Path]],
    threshold: float = CODE_THRESHOLD,
) -> list[NearCopy]:
    """Pairs of hand-ins whose files of one input are near-copies once the skeleton is subtracted.

    subs: hand-in key -> {input name, or "name/relpath" for a dir input -> the student's own file}.
    boilerplate: input name -> the skeleton files every student got. Files of one input are compared
    across hand-ins (of a dir input: every file with every file of the same language, so a renamed
    file is still found); the best file pair of each input is reported, one NearCopy per hand-in pair
    and input. Files in no known language (`language_of`) or over MAX_FILE_BYTES are skipped."""
    from copydetect import compare_files

    by_input: dict[str, list[tuple[str, str, Path]]] = defaultdict(list)
    for key, files in subs.items():
        for name, path in files.items():
            by_input[_input_of(name)].append((key, name, path))

    found: list[NearCopy] = []
    for input_name, entries in sorted(by_input.items()):
        skeleton = frozenset().union(*(_all_kgrams(p) for p in boilerplate.get(input_name, [])))
        docs: list[tuple[str, str, _Doc]] = []
        for key, name, path in entries:
            doc = _fingerprint(path, skeleton)
            if doc is not None and doc.hashes:
                docs.append((key, name, doc))
        best: dict[tuple[str, str], tuple[float, str, int]] = {}
        for i, j in _candidates(docs, threshold):
            (ka, na, da), (kb, nb, db) = sorted((docs[i], docs[j]), key=lambda d: (d[0], d[1]))
            if ka == kb or da.language != db.language:
                continue
            overlap, (sim_a, sim_b), (sl_a, sl_b) = compare_files(da.fingerprint, db.fingerprint)
            score = float(max(sim_a, sim_b))
            if score < threshold or overlap < MIN_OVERLAP_KGRAMS * da.fingerprint.k:
                continue
            of = "code outside the skeleton" if skeleton else "code"
            evidence = (
                f"{input_name}: {ka}'s {_shown(na, da)} {_ranges(da, sl_a)} ~ {kb}'s {_shown(nb, db)} "
                f"{_ranges(db, sl_b)} ({float(sim_a):.0%} and {float(sim_b):.0%} of their {of}, "
                f"{int(overlap)} characters of normalised code{', short' if overlap < SHORT else ''})"
            )
            if score > best.get((ka, kb), (-1.0, "", 0))[0]:
                best[(ka, kb)] = (score, evidence, int(overlap))
        found += [NearCopy(a, b, "code", round(s, 4), ev, overlap=n) for (a, b), (s, ev, n) in best.items()]
    return sorted(found, key=lambda n: (-n.score, n.a, n.b, n.evidence))


def _candidates(docs: list[tuple[str, str, _Doc]], threshold: float) -> list[tuple[int, int]]:
    """Index pairs of files worth comparing in full, found through an inverted index of k-grams.

    Only distinctive k-grams count (held by 2 to `cap` hand-ins; more is common idiom, COMMON_SHARE),
    and a pair is a candidate when it shares at least PREFILTER x threshold of the smaller file's
    distinctive k-grams. A copy's passages are long, so that share is close to its similarity;
    comparing every pair in full would take minutes for a class of 500."""
    import numpy as np

    holders: dict[int, list[int]] = defaultdict(list)
    for i, (_key, _name, doc) in enumerate(docs):
        for h in doc.hashes:
            holders[h].append(i)
    n = len(docs)
    cap = max(COMMON_MIN, int(COMMON_SHARE * len({key for key, _name, _doc in docs})))
    distinctive = np.zeros(n, dtype=np.int64)
    codes: list[int] = []
    for idx in holders.values():
        if 2 <= len(idx) <= cap:
            distinctive[idx] += 1
            codes.extend(x * n + y for m, x in enumerate(idx) for y in idx[m + 1 :])
    if not codes:
        return []
    pair, shared = np.unique(np.array(codes, dtype=np.int64), return_counts=True)
    first, second = pair // n, pair % n
    need = np.maximum(
        MIN_SHARED, np.ceil(PREFILTER * threshold * np.minimum(distinctive[first], distinctive[second]))
    )
    keep = shared >= need
    return list(zip(first[keep].tolist(), second[keep].tolist(), strict=True))
