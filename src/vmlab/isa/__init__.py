"""The ISA-emulation lab: the course's homework machine, its generator and a family of emulators.

Every engine runs the same guest program and must produce the same final registers and the same count
of executed guest instructions; they differ only in how they get there (decode-and-dispatch,
threaded-code analogues, binary translation to Python code objects, optionally to x86-64).
"""
