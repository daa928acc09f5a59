"""Reaching a guest: readiness waits with backoff, the serial console log, SSH with a pinned host key."""
