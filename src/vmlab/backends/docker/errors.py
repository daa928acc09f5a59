"""Docker's errors become vmlab's here alone: one line, the daemon named when it is gone, a busy
daemon told apart from a dead one, containerd's absence told apart from dockerd's. The Docker runtimes,
the system-call counter and the grader's re-run containers all translate through `translate()`."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

import docker.errors
import requests

from vmlab.errors import BackendError

log = logging.getLogger("vmlab")
T = TypeVar("T")
# what the Docker SDK raises: its own errors, and requests' (an OSError) when the socket is gone
DOCKER_ERRORS: tuple[type[Exception], ...] = (docker.errors.DockerException, requests.RequestException)


class DaemonGone(BackendError):
    """dockerd stopped answering in the middle of an operation."""


class DaemonSlow(BackendError):
    """dockerd is there but did not answer in time, also after retries: a busy host, not a dead one."""


class ContainerdGone(BackendError):
    """dockerd answers but its containerd, which runs the containers, does not (killed or crashed).

    Measured on the CI host (Docker 20.10, containerd 1.6, no systemd): after a SIGKILL of dockerd's
    containerd, `docker ps` and create still answer (dockerd's own state), start and exec fail at once
    ("dial unix .../containerd.sock: connect: connection refused"), `rm -f` fails after ~12 s ("did not
    receive an exit event"); running containers survive (their shims do) and dockerd starts a new
    containerd ~10 s after the old one died.
    """


# make setup starts dockerd only where none answers, so a restart is stop-then-setup without systemd
RESTART_DOCKERD = (
    "restart dockerd (systemctl restart docker; without systemd, stop dockerd and run make setup)"
)
# How long a removal waits for containerd to come back: dockerd restarts it ~10 s after its death.
CONTAINERD_WAIT_S = 40.0
# What dockerd says when its containerd is gone, seen here: the socket refused, a gRPC call cut as it
# ran ("failed to retrieve labels: transport is closing: unavailable", "connection closed:
# unavailable"), a kill with no exit event. ": unavailable" is gRPC's code Unavailable, which dockerd
# appends to what its one gRPC peer, containerd, failed with.
_CONTAINERD_DOWN = ("containerd.sock", "transport is closing", "did not receive an exit event")


def containerd_down(e: Exception) -> bool:
    """Whether a Docker error says containerd (not dockerd) did not answer."""
    text = str(getattr(e, "explanation", None) or e).strip()
    return isinstance(e, docker.errors.APIError) and (
        text.endswith(": unavailable") or any(s in text for s in _CONTAINERD_DOWN)
    )


# A read timeout is dockerd alive but busy (two compares beside a test run did it): idempotent calls
# are tried this many times in all before it is reported, as slow, not dead.
SLOW_ATTEMPTS = 3


def _timed_out(e: Exception) -> bool:
    return isinstance(e, requests.Timeout) or "Read timed out" in str(e)


def _no_answer(e: Exception) -> bool:
    """dockerd itself did not answer: a connection error, never an HTTP answer. docker's APIError is a
    requests.HTTPError too, so an answer saying "connection refused" (containerd's or runsc's socket
    behind dockerd) must not be taken for a dockerd that is gone."""
    if isinstance(e, docker.errors.APIError):
        return False
    return isinstance(e, requests.RequestException) or "Connection refused" in str(e)


def translate(e: Exception, what: str) -> BackendError:
    """The one place Docker errors become vmlab errors (one line, the daemon named when it is gone,
    and a read timeout told apart from a daemon that is gone)."""
    if _timed_out(e):
        limit = re.search(r"read timeout=([\d.]+)", str(e))
        within = f" within {limit.group(1)} s" if limit else " in time"
        return DaemonSlow(
            f"{what}: dockerd did not answer{within} (it runs, but is busy)",
            hint="retry when the host is less busy (other runs, a test suite)",
        )
    if _no_answer(e):
        return DaemonGone(
            f"{what}: dockerd does not answer (it stopped or was killed)",
            hint="start dockerd again (make setup); its containers are removed when it is back",
        )
    if containerd_down(e):
        return ContainerdGone(
            f"{what}: containerd, which runs dockerd's containers, does not answer (it was killed or "
            "crashed; dockerd itself answers)",
            hint=f"dockerd starts containerd again within ~10 s: run again then; if it stays away, "
            f"{RESTART_DOCKERD}",
        )
    explanation = getattr(e, "explanation", None) or str(e)
    return BackendError(f"{what}: {str(explanation).splitlines()[0][:200]}")


def call(fn: Callable[[], T], what: str, attempts: int = SLOW_ATTEMPTS) -> T:
    """fn(), an idempotent Docker call, with errors translated; a read timeout or a dropped connection
    is tried again (up to `attempts` in all) before it is reported: DaemonSlow for a timeout,
    DaemonGone only when dockerd still does not answer. A busy dockerd drops pooled keep-alive
    connections under load (seen with two compares at once: "listing containers failed" though dockerd
    was alive), which is not a dead daemon. Never for calls that change state twice."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DOCKER_ERRORS as e:
            if _no_answer(e) and attempt < attempts:
                log.info("%s: dockerd did not answer (attempt %d of %d): %s", what, attempt, attempts, e)
                time.sleep(0.2 * attempt)
                continue
            err = translate(e, what)
            if isinstance(err, DaemonSlow):
                err = DaemonSlow(
                    err.message.replace(" (it runs", f", {attempts} times (it runs"), hint=err.hint
                )
            raise err from e
    raise AssertionError("unreachable")
