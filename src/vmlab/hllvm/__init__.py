"""The HLL-VM lab: the JVM (verifier, tiers, inline caches, GC) and CPython's adaptive interpreter."""
