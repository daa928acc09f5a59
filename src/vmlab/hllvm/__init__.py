"""The HLL-VM lab: the JVM (verifier, tiers, inline caches, GC) and CPython's adaptive interpreter."""

LAB = "hll-vm"  # the lab's name, as its folder and lab.toml call it
