#!/usr/bin/env bash
# Idempotent host set-up for vmlab: Debian packages, /dev/kvm permissions, group membership, daemons.
# A second run changes nothing and takes seconds. Run it as yourself: it uses sudo only for what needs
# root (packages, daemons, /dev/kvm, groups); the venv and VMLAB_HOME stay yours. Uses systemd where
# the host has it, and starts the daemons by hand where it does not (containers, CI runners).
# VMLAB_SETUP_TEST=1 (make test) also installs what only the test suite uses.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"  # usermod, dockerd, libvirtd: off a user's PATH

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
LOGDIR=/var/log/vmlab
WAIT_S=${VMLAB_DAEMON_WAIT:-60}
ME=${SUDO_USER:-$(id -un)}  # the student, also under `sudo make ...`

# What the kit uses at run time (and to build its images); nothing only the tests need. Where releases
# differ, the names are resolved from apt's lists below (src/vmlab/host/distro.py): the newest OpenJDK
# headless JDK, docker.io plus docker-cli where the CLI lives apart (Debian 13), runsc where the archive
# has it. `vmlab doctor` shows what was chosen.
PACKAGES=(
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
  qemu-system-x86 qemu-utils
  busybox-static dropbear-bin cpio kmod xz-utils zstd lz4  # lz4/zstd: kernels compressed that way
  strace linux-perf openssh-client
  build-essential bc flex bison libelf-dev  # the optional micro image's kernel build
  python3-venv python3-dev                  # the venv; Python.h for building libvirt-python
  valgrind gcc qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross  # the process-VM lab
  linux-libc-dev                            # <linux/kvm.h>: the kvm-api lab's C baseline (gcc above)
  automake autoconf dpkg-dev                                          # building a Valgrind tool
  jasmin-sable                                                        # the HLL-VM lab (+ the JDK)
)

# Only for `make test`: sshd serves the remote-URI test (qemu+ssh:// to this host); Chromium renders the
# class site in a test; vagrant validates the students' Vagrantfile.
TEST_PACKAGES=(openssh-server chromium vagrant vagrant-libvirt)

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Rootless Podman (the `podman` runtime, for normal users): only where asked (VMLAB_PODMAN=1) or for
# `make test`; a normal user also needs a subordinate uid range in /etc/subuid (useradd gives one).
PODMAN_PACKAGES=(podman uidmap fuse-overlayfs slirp4netns)

if [ "${VMLAB_SETUP_TEST:-}" = 1 ]; then PACKAGES+=("${TEST_PACKAGES[@]}" "${PODMAN_PACKAGES[@]}"); fi
if [ "${VMLAB_PODMAN:-}" = 1 ]; then PACKAGES+=("${PODMAN_PACKAGES[@]}"); fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

command -v python3 >/dev/null || die "python3 is missing: apt-get install python3 (set-up resolves package names with it)"
# A fresh root (mmdebstrap, a container image) has no package lists: nothing could be resolved.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  say "fetching the package lists (apt-get update)"
  $SUDO apt-get update -q >/dev/null
fi
mapfile -t RESOLVED < <(python3 "$HERE/../src/vmlab/host/distro.py" packages)
[ "${#RESOLVED[@]}" -gt 0 ] || die "could not resolve the release's package names (src/vmlab/host/distro.py)"
while IFS= read -r line; do say "$line"; done < <(python3 "$HERE/../src/vmlab/host/distro.py" notes)
PACKAGES+=("${RESOLVED[@]}")

# An existing Docker (docker-ce from docker.com: `docker` and `dockerd` present, docker.io absent) is
# kept: installing docker.io (or docker-cli) would conflict with it.
if ! installed docker.io && command -v docker >/dev/null && command -v dockerd >/dev/null; then
  say "Docker found ($(command -v dockerd)) without docker.io: using it"
  PACKAGES=("${PACKAGES[@]/docker.io/}")
  PACKAGES=("${PACKAGES[@]/docker-cli/}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if [ -n "$p" ] && ! installed "$p"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]} (run it by hand to see why)"
else
  say "Debian packages: all present"
fi

# The process-VM lab builds a Valgrind tool from Debian's source package of the installed version.
SOURCES=/etc/apt/sources.list.d/debian.sources
if [ -f "$SOURCES" ] && grep -q '^Types: deb$' "$SOURCES"; then
  say "enabling deb-src in $SOURCES (the process-VM lab builds Valgrind from its source package)"
  $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' "$SOURCES"
  $SUDO apt-get update -q >/dev/null
elif [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list \
    && ! grep -q '^deb-src ' /etc/apt/sources.list; then  # the one-line format (mmdebstrap, older hosts)
  say "enabling deb-src in /etc/apt/sources.list (the process-VM lab builds Valgrind from its source package)"
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $SUDO tee -a /etc/apt/sources.list >/dev/null
  $SUDO apt-get update -q >/dev/null
fi

# libvirt runs QEMU as libvirt-qemu (group kvm): /dev/kvm must be group-accessible.
if [ -e /dev/kvm ]; then
  if [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
    say "making /dev/kvm accessible to group kvm"
    $SUDO chgrp kvm /dev/kvm && $SUDO chmod 660 /dev/kvm
  fi
fi

# The image cache and run state live where libvirt's QEMU user can read them (see docs/host-facts.md).
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "${VMLAB_HOME:-/var/lib/vmlab}" && chmod 755 "${VMLAB_HOME:-/var/lib/vmlab}"
fi

$SUDO mkdir -p "$LOGDIR"
has_systemd() { [ -d /run/systemd/system ]; }

wait_for() {  # name, command...
  local name=$1; shift
  local deadline=$((SECONDS + WAIT_S))
  local delay=0.1
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      die "$name did not answer within ${WAIT_S}s (log: $LOGDIR/$name.log)"
    fi
    sleep $delay
    delay=$(awk -v d=$delay 'BEGIN { d *= 2; if (d > 2) d = 2; print d }')
  done
  say "$name answers"
}

docker_ok() { $SUDO docker version --format '{{.Server.Version}}'; }
libvirt_ok() { $SUDO virsh -c qemu:///system version; }

# The probe needs the client: without it a running dockerd would look dead (Debian 13's docker.io
# does not bring the `docker` command).
if ! command -v docker >/dev/null; then
  die "the docker command is missing: apt-get install docker-cli (Debian 13 and later; docker.io on Debian 12)"
fi

# The system daemon's pid: its pid file (it may not be the only dockerd: rootless Docker runs one per
# user), else the one dockerd running as root.
dockerd_pid() {
  local pid
  pid=$(cat "${VMLAB_DOCKER_PIDFILE:-/run/docker.pid}" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then echo "$pid"; return; fi
  pgrep -x -u 0 dockerd | head -n 1
}

# Extra dockerd options where it is started by hand, and a command it runs under (scripts/portability.sh:
# `unshare --net` with --bridge=none --iptables=false keeps a second daemon off the host's network: a
# dockerd started with --bridge=none deletes any interface named docker0 in its network namespace, the
# host's included when it shares it; measured).
read -r -a DOCKERD_ARGS <<< "${VMLAB_DOCKERD_ARGS:-}"
read -r -a DOCKERD_UNDER <<< "${VMLAB_DOCKERD_UNDER:-}"

if ! docker_ok >/dev/null 2>&1; then
  say "starting dockerd"
  if has_systemd; then
    $SUDO systemctl start docker
  else
    $SUDO setsid nohup "${DOCKERD_UNDER[@]}" dockerd "${DOCKERD_ARGS[@]}" >"$LOGDIR/dockerd.log" 2>&1 < /dev/null &
  fi
  wait_for dockerd docker_ok
else
  say "dockerd answers"
fi

# gVisor as a Docker runtime named runsc: merged into /etc/docker/daemon.json (other settings kept),
# then a SIGHUP makes dockerd reload its runtimes (no restart, no container stops). ptrace platform:
# --platform=kvm printed nothing on hosts without VT-x; --network=none: gVisor refuses to run with
# network in the root network namespace. The Sentry's log (boot command only) is where vmlab counts
# the system calls the sandbox's kernel handled (`runsc debug --strace`).
RUNSC_LOG=/var/log/runsc
register_runsc() {
  local runsc
  runsc=$(command -v runsc) || return 0
  $SUDO mkdir -p "$RUNSC_LOG" /etc/docker
  # A sandbox's log goes with the sandbox: its owner (a student in group docker) must be able to remove it.
  if getent group docker >/dev/null && [ "$(stat -c '%G %a' "$RUNSC_LOG")" != "docker 2775" ]; then
    $SUDO chgrp docker "$RUNSC_LOG" && $SUDO chmod 2775 "$RUNSC_LOG"
  fi
  if $SUDO python3 - "$runsc" "$RUNSC_LOG/" <<'PY'
import json, os, sys
path = "/etc/docker/daemon.json"
want = {"path": sys.argv[1], "runtimeArgs": ["--platform=ptrace", "--network=none",
        f"--debug-log={sys.argv[2]}", "--debug-command=boot"]}
try:
    with open(path) as f:
        cfg = json.load(f)
except FileNotFoundError:
    cfg = {}
if cfg.get("runtimes", {}).get("runsc") == want:
    sys.exit(1)  # registered already: nothing to reload
cfg.setdefault("runtimes", {})["runsc"] = want
tmp = path + ".vmlab-tmp"
with open(tmp, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
PY
  then
    say "registered runsc (gVisor) as a Docker runtime in /etc/docker/daemon.json; reloading dockerd"
    if has_systemd; then $SUDO systemctl reload docker; else $SUDO kill -HUP "$(dockerd_pid)"; fi
  fi
  wait_for "dockerd (runtime runsc)" sh -c "$SUDO docker info --format '{{json .Runtimes}}' | grep -q runsc"
}
register_runsc

if ! libvirt_ok >/dev/null 2>&1; then
  say "starting virtlogd and libvirtd"
  if has_systemd; then
    $SUDO systemctl start virtlogd libvirtd
  else
    pgrep -x virtlogd >/dev/null || $SUDO virtlogd -d
    pgrep -x libvirtd >/dev/null || $SUDO libvirtd -d
  fi
  wait_for libvirtd libvirt_ok
else
  say "libvirtd answers"
fi

# A normal user drives /dev/kvm, libvirt and Docker through these groups. A new membership applies
# to the next login only, so say so and stop: the rest of `make demo` would fail on the Docker socket.
if [ "$ME" != root ]; then
  added=()
  for g in kvm libvirt docker; do
    getent group "$g" >/dev/null || continue
    if ! id -nG "$ME" | tr ' ' '\n' | grep -qx "$g"; then
      $SUDO usermod -aG "$g" "$ME"
      added+=("$g")
    fi
  done
  if [ "${#added[@]}" -gt 0 ]; then
    say "added $ME to group(s) ${added[*]}"
  fi
  stale=()
  if [ -z "${SUDO_USER:-}" ]; then  # this shell's groups (under sudo they are root's: nothing to say)
    for g in kvm libvirt docker; do
      getent group "$g" >/dev/null || continue
      id -nG | tr ' ' '\n' | grep -qx "$g" || stale+=("$g")
    done
  fi
  if [ "${#stale[@]}" -gt 0 ]; then
    say "log out and back in so that group(s) ${stale[*]} apply to your shell, then run make again"
    exit 3
  fi
fi
