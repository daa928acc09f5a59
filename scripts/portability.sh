#!/usr/bin/env bash
# `make portability`: the README's commands on a current Debian release, in a root of its own.
#
# Builds a Debian 13 ("trixie") root with mmdebstrap in a temporary directory, copies this checkout
# into it, and there runs `make demo`, the unit tests and a short integration subset (a guest, a
# container, a sandbox, each lab once), with the daemons (dockerd, libvirtd) started inside. Everything
# runs under its own PID and mount namespaces (unshare, pivot_root into the root): the daemons inside
# neither see nor signal the host's, the bind mounts (/dev, /sys) vanish with the namespace, and killing the namespace's first
# process ends every process inside. Whatever happens (failure, Ctrl-C), it removes what it made: the
# processes, the cgroups the inner daemons created, the root. Needs root, mmdebstrap and unshare.
#
# Environment: VMLAB_PORTABILITY_SUITE (default trixie), VMLAB_PORTABILITY_KEEP=1 keeps the root for a
# look after a failure (the processes still end), VMLAB_PORTABILITY_TESTS (the integration subset),
# VMLAB_PORTABILITY_LOG (default runs/portability/). Phases and their times go to the log.
set -euo pipefail

SUITE=${VMLAB_PORTABILITY_SUITE:-trixie}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOGDIR=${VMLAB_PORTABILITY_LOG:-$REPO/runs/portability}
# A guest (libvirt, TCG or KVM), a container and a sandbox (every runtime), the doctor, the tiny image,
# each lab once (hll-vm, process-vm, kvm-api, isa-emulation here; system-vm is make demo's compare).
# Published ports need Docker's bridge, which the inner dockerd does not have (--bridge=none).
TESTS=${VMLAB_PORTABILITY_TESTS:-"tests/integration/backends/test_every_runtime.py tests/integration/host/test_doctor.py tests/integration/images/test_tiny_image.py tests/integration/hllvm/test_lab_live.py tests/integration/procvm/test_live.py tests/integration/kvmapi/test_cli_lab.py tests/integration/isa/test_isa_lab.py --deselect tests/integration/backends/test_every_runtime.py::test_published_ports_bind_to_loopback_only"}
CGROUP_PARENT=vmlab-portability-$$

say() { printf '[portability] %s\n' "$*" >&2; }
die() { printf '[portability] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap, namespaces, mounts): sudo make portability"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: apt-get install mmdebstrap"
command -v unshare >/dev/null || die "unshare is missing: apt-get install util-linux"

mkdir -p "$LOGDIR"
LOG=$LOGDIR/$SUITE-$(date -u +%Y%m%dT%H%M%SZ).log
WORK=$(mktemp -d /tmp/vmlab-portability.XXXXXX)
ROOT=$WORK/root
NS_PID=""
T0=$SECONDS

# /dev is the host's, bind-mounted: set-up inside chgrps /dev/kvm to the root's kvm group, whose gid
# need not be the host's (trixie's packages allocate their own). The root gets the host's kvm gid
# before any package is installed, and the host's owner and mode are put back at the end regardless.
KVM_STAT=$(stat -c '%u:%g %a' /dev/kvm 2>/dev/null || true)
KVM_GID=$(getent group kvm | cut -d: -f3 || true)

cgroups_now() { find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort; }
cgroups_now > "$WORK/cgroups.before"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$NS_PID" ] && kill -0 "$NS_PID" 2>/dev/null; then
    say "ending every process in the root's PID namespace"
    kill -KILL "$NS_PID" 2>/dev/null || true  # the namespace's init: the kernel ends all inside
    wait 2>/dev/null || true
  fi
  # Empty cgroups the inner dockerd and libvirtd made (new since the start; rmdir fails on a busy one).
  cgroups_now | comm -13 "$WORK/cgroups.before" - | sort -r | while read -r d; do
    case "$d" in *"$CGROUP_PARENT"* | */machine* | */libvirt*) rmdir "$d" 2>/dev/null || true ;; esac
  done
  # Evidence of gVisor's log format on this release (the Sentry's strace lines), kept with the log.
  if compgen -G "$ROOT/var/log/runsc/*.boot.txt" >/dev/null; then
    grep -h "strace.go" "$ROOT"/var/log/runsc/*.boot.txt 2>/dev/null | head -n 400 > "${LOG%.log}-runsc-strace.txt" || true
  fi
  if [ -n "$KVM_STAT" ] && [ "$(stat -c '%u:%g %a' /dev/kvm 2>/dev/null)" != "$KVM_STAT" ]; then
    chown "${KVM_STAT% *}" /dev/kvm && chmod "${KVM_STAT#* }" /dev/kvm && say "put /dev/kvm back as it was"
  fi
  if grep -q " $ROOT" /proc/mounts; then  # only if a mount leaked out of the namespace
    grep " $ROOT" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  if [ "${VMLAB_PORTABILITY_KEEP:-}" = 1 ] && [ "$rc" -ne 0 ]; then
    say "kept the root for a look: $ROOT (rm -rf $WORK when done)"
  elif grep -q " $ROOT" /proc/mounts; then
    say "a mount under $ROOT is still there: not removing it (umount, then rm -rf $WORK)"
  else
    rm -rf --one-file-system "$WORK"
  fi
  say "log: $LOG ($((SECONDS - T0)) s in all, exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

phase() { printf '[portability] %s +%ds %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - T0))" "$*" | tee -a "$LOG" >&2; }

phase "building a $SUITE root (mmdebstrap --variant=minbase) in $ROOT"
mmdebstrap --variant=minbase --include=python3,python3-venv,make,git,ca-certificates "$SUITE" "$ROOT" \
  >>"$LOG" 2>&1 || die "mmdebstrap failed (see $LOG)"

# The package registries answer only with the host's CA bundle and pip configuration.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
if [ -n "$KVM_GID" ] && ! chroot "$ROOT" getent group kvm >/dev/null; then
  chroot "$ROOT" groupadd --system --gid "$KVM_GID" kvm 2>>"$LOG" || say "could not give the root the host's kvm gid $KVM_GID"
fi
# The checkout as it is (tracked and new files, without the venv, runs or caches).
mkdir -p "$ROOT/vmlab"
(cd "$REPO" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$ROOT/vmlab" -xf -
rm -rf "$ROOT/vmlab/.venv" "$ROOT/vmlab/runs"

cat > "$ROOT/portability-inner.sh" <<EOF
#!/bin/bash
# Runs inside the root, as the namespace's process tree (see scripts/portability.sh).
set -uo pipefail
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
unset PIP_FIND_LINKS  # the host's wheel directory is not in the root: pip.conf alone, as a new user has
export VMLAB_DOCKERD_ARGS="--bridge=none --iptables=false --cgroup-parent=/$CGROUP_PARENT"
export VMLAB_DOCKERD_UNDER="unshare --net"  # its own network: --bridge=none deletes a docker0 it sees
T0=\$SECONDS
step() { printf '[portability] %s +%ds inside: %s\n' "\$(date -u +%H:%M:%S)" "\$((SECONDS - T0))" "\$*"; }
# Daemons ended with an earlier namespace leave pid files that block the next start.
rm -f /run/docker.pid /run/docker/containerd/containerd.pid /run/libvirtd.pid /run/virtlogd.pid
cd /vmlab
rc=0
step "make demo"
make demo || { echo "[portability] FAILED: make demo (exit \$?)"; exit 10; }
step "unit tests"
.venv/bin/pytest -q -p no:cacheprovider tests/unit || { echo "[portability] FAILED: unit tests"; rc=11; }
step "integration subset: $TESTS"
.venv/bin/pytest -q -p no:cacheprovider $TESTS || { echo "[portability] FAILED: integration subset"; rc=12; }
step "done (exit \$rc)"
exit \$rc
EOF
chmod +x "$ROOT/portability-inner.sh"

phase "running make demo, the unit tests and the integration subset inside (own PID and mount namespace)"
# The bind mounts are made inside the new mount namespace: they end with it.
# shellcheck disable=SC2016
# env --default-signal: a job started in the background inherits SIGINT ignored, and Python's Ctrl-C
# handling (and its test) would see SIG_IGN.
unshare --pid --fork --mount --propagation private --mount-proc="$ROOT/proc" env --default-signal=INT bash -c '
  R=$1
  # The root a mount point of its own: dockerd remounts / (MS_SLAVE) when it imports an image, which
  # fails with EINVAL on a plain directory. Recursive: it keeps the /proc that --mount-proc made.
  mount --rbind "$R" "$R" && mount --rbind /dev "$R/dev" && mount --rbind /sys "$R/sys" || exit 20
  # pivot_root, not chroot: a chrooted process may not create user namespaces (EPERM), which runsc
  # does for its gofer. The host tree is then detached from this namespace altogether.
  cd "$R" && mkdir -p .oldroot && pivot_root . .oldroot || exit 21
  exec /usr/sbin/chroot . /bin/bash -c "umount -l /.oldroot && rmdir /.oldroot && exec /portability-inner.sh"
' portability "$ROOT" > >(tee -a "$LOG" | grep --line-buffered '^\[\(portability\|setup\)\]\|passed\|failed\|error' >&2) 2>&1 &
UNSHARE=$!
for _ in $(seq 50); do
  NS_PID=$(pgrep -P "$UNSHARE" | head -n 1 || true)
  [ -n "$NS_PID" ] && break
  sleep 0.1
done
set +e
wait "$UNSHARE"
rc=$?
set -e
phase "inner run finished: exit $rc"
exit "$rc"
