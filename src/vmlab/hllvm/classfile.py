"""A small class-file writer: enough of JVMS chapter 4 to build a class with one `main` method.

Why write class files by hand: javac never emits code the verifier rejects, so to watch the verifier
work we need bytes javac would refuse to produce. The writer knows the constant pool (Utf8, Integer,
Class, String, Fieldref, Methodref, NameAndType), one method with a Code attribute, and nothing else
(no fields, no interfaces, no StackMapTable).

Which verifier runs depends on the class-file major version (JVMS 4.10): 50 and later are checked by
the type-checking verifier, which needs a StackMapTable frame at every branch target; 52 without
branches needs no frames, so straight-line code is checked by type checking. Classes with a version
below 50 go to the older type-inferring verifier, which computes the frames itself. The bad-branch
class therefore uses version 49: the question it asks is "does the target fall on an instruction",
which the type checker would answer only after complaining that the frame is missing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ACC_PUBLIC = 0x0001
ACC_STATIC = 0x0008
ACC_SUPER = 0x0020

# Opcodes used by the built-in classes (JVMS 6.5).
OP = {
    "iconst_1": 0x04,
    "iconst_2": 0x05,
    "fconst_1": 0x0C,
    "ldc": 0x12,
    "istore_1": 0x3C,
    "iload_1": 0x1B,
    "pop": 0x57,
    "iadd": 0x60,
    "goto": 0xA7,
    "return": 0xB1,
    "getstatic": 0xB2,
    "invokevirtual": 0xB6,
    "invokestatic": 0xB8,
}

_UTF8, _INTEGER, _CLASS, _STRING, _FIELDREF, _METHODREF, _NAMEANDTYPE = 1, 3, 7, 8, 9, 10, 12


@dataclass
class ConstantPool:
    """Entries are deduplicated, so asking twice for the same constant returns the same index."""

    entries: list[bytes] = field(default_factory=list)
    _index: dict[bytes, int] = field(default_factory=dict)

    def _add(self, entry: bytes) -> int:
        if entry not in self._index:
            self.entries.append(entry)
            self._index[entry] = len(self.entries)  # constant pool indices start at 1
        return self._index[entry]

    def utf8(self, text: str) -> int:
        data = text.encode("utf-8")  # modified UTF-8 equals UTF-8 for the ASCII names used here
        return self._add(struct.pack(">BH", _UTF8, len(data)) + data)

    def integer(self, value: int) -> int:
        return self._add(struct.pack(">Bi", _INTEGER, value))

    def class_(self, name: str) -> int:
        return self._add(struct.pack(">BH", _CLASS, self.utf8(name)))

    def string(self, text: str) -> int:
        return self._add(struct.pack(">BH", _STRING, self.utf8(text)))

    def name_and_type(self, name: str, descriptor: str) -> int:
        return self._add(struct.pack(">BHH", _NAMEANDTYPE, self.utf8(name), self.utf8(descriptor)))

    def fieldref(self, owner: str, name: str, descriptor: str) -> int:
        return self._add(
            struct.pack(">BHH", _FIELDREF, self.class_(owner), self.name_and_type(name, descriptor))
        )

    def methodref(self, owner: str, name: str, descriptor: str) -> int:
        return self._add(
            struct.pack(">BHH", _METHODREF, self.class_(owner), self.name_and_type(name, descriptor))
        )

    def to_bytes(self) -> bytes:
        return struct.pack(">H", len(self.entries) + 1) + b"".join(self.entries)


@dataclass
class Method:
    name: str
    descriptor: str
    code: bytes
    max_stack: int
    max_locals: int
    access: int = ACC_PUBLIC | ACC_STATIC


def class_bytes(
    name: str, methods: list[Method], pool: ConstantPool, *, major: int = 52, minor: int = 0
) -> bytes:
    """Serialise a class extending java.lang.Object (JVMS 4.1 layout, 4.7.3 Code attribute)."""
    this_idx = pool.class_(name)
    super_idx = pool.class_("java/lang/Object")
    code_name = pool.utf8("Code")
    method_blobs = []
    for m in methods:
        code_attr = (
            struct.pack(">HHI", m.max_stack, m.max_locals, len(m.code))
            + m.code
            + struct.pack(">HH", 0, 0)  # no exception table, no attributes of the Code attribute
        )
        method_blobs.append(
            struct.pack(">HHHH", m.access, pool.utf8(m.name), pool.utf8(m.descriptor), 1)
            + struct.pack(">HI", code_name, len(code_attr))
            + code_attr
        )
    # the pool is complete only now: every index above was allocated before serialising it
    return (
        struct.pack(">IHH", 0xCAFEBABE, minor, major)
        + pool.to_bytes()
        + struct.pack(">HHH", ACC_PUBLIC | ACC_SUPER, this_idx, super_idx)
        + struct.pack(">HH", 0, 0)  # interfaces, fields
        + struct.pack(">H", len(methods))
        + b"".join(method_blobs)
        + struct.pack(">H", 0)  # class attributes
    )


def _println(pool: ConstantPool, text: str) -> bytes:
    """getstatic System.out; ldc "text"; invokevirtual PrintStream.println(String)."""
    out = pool.fieldref("java/lang/System", "out", "Ljava/io/PrintStream;")
    msg = pool.string(text)
    println = pool.methodref("java/io/PrintStream", "println", "(Ljava/lang/String;)V")
    assert msg < 256, "ldc takes a one-byte index"
    return struct.pack(">BHBBBH", OP["getstatic"], out, OP["ldc"], msg, OP["invokevirtual"], println)


@dataclass(frozen=True)
class BuiltinClass:
    """A generated class and what the JVM should say about it."""

    name: str
    data: bytes
    major: int
    expect: str  # "accepted" or the substring the VerifyError message must contain
    why: str


def _main_class(name: str, body: bytes, *, max_stack: int, max_locals: int = 1, major: int = 52) -> bytes:
    pool = ConstantPool()
    main = Method("main", "([Ljava/lang/String;)V", body, max_stack=max_stack, max_locals=max_locals)
    return class_bytes(name, [main], pool, major=major)


def builtin_classes() -> list[BuiltinClass]:
    """One valid class and three broken ones.

    Expected messages are HotSpot's wording (classfile/verifier.cpp for the type checker,
    libverify's check_code.c for the inference verifier), quoted here as the oracle.
    """
    classes: list[BuiltinClass] = []

    pool = ConstantPool()
    body = (
        bytes([OP["iconst_1"], OP["iconst_2"], OP["iadd"], OP["istore_1"]])
        + _println(pool, "verified and ran")
        + bytes([OP["return"]])
    )
    main = Method("main", "([Ljava/lang/String;)V", body, max_stack=2, max_locals=2)
    classes.append(
        BuiltinClass(
            "GoodAdd",
            class_bytes("GoodAdd", [main], pool),
            52,
            "accepted",
            "1 + 2 stored in a local, then a println: every instruction gets the types it needs",
        )
    )

    # fconst_1 pushes a float; iadd pops two ints. Type checker (version 52): "Bad type on operand stack".
    bad_type = bytes([OP["fconst_1"], OP["iconst_1"], OP["iadd"], OP["pop"], OP["return"]])
    classes.append(
        BuiltinClass(
            "BadAddType",
            _main_class("BadAddType", bad_type, max_stack=2),
            52,
            "Bad type on operand stack",
            "iadd finds a float under the int: the type checker refuses the frame",
        )
    )

    # iadd with one value on the stack: the second pop underflows.
    underflow = bytes([OP["iconst_1"], OP["iadd"], OP["pop"], OP["return"]])
    classes.append(
        BuiltinClass(
            "StackUnderflow",
            _main_class("StackUnderflow", underflow, max_stack=2),
            52,
            "Operand stack underflow",
            "iadd needs two ints, only one was pushed",
        )
    )

    # Offsets: 0 iconst_1, 1 goto (bytes 1..3), 4 pop, 5 return. goto +2 is relative to the goto
    # itself (JVMS 6.5 goto), so it targets 1 + 2 = 3: the goto's own second operand byte.
    bad_branch = bytes([OP["iconst_1"], OP["goto"], 0x00, 0x02, OP["pop"], OP["return"]])
    classes.append(
        BuiltinClass(
            "BadBranch",
            _main_class("BadBranch", bad_branch, max_stack=1, major=49),
            49,
            "Illegal target of jump or branch",
            "goto lands inside its own operand bytes, not on an instruction (version 49: inference verifier)",
        )
    )
    # The same bytes at version 52: the type checker first wants a StackMapTable frame at the target.
    classes.append(
        BuiltinClass(
            "BadBranchTypeCheck",
            _main_class("BadBranchTypeCheck", bad_branch, max_stack=1, major=52),
            52,
            "Expecting a stackmap frame at branch target 3",
            "the same goto at version 52: the type checker asks for a stack map frame before anything else",
        )
    )
    return classes
