"""The Docker runtimes: `docker` (runc) and `docker-runsc` (gVisor), Docker's error translation, the
system-call counter, their health probes and the locked-down container of the grader's re-runs.

Importing this package imports nothing of the Docker SDK; its modules do (the registry imports them
only when a Docker runtime is asked for)."""
