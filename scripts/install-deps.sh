#!/usr/bin/env bash
# Installs what minivmm labs needs on Debian 12 (idempotent; quiet when all is there).
# Unicorn >= 2.1 comes from Debian 13 (trixie), pinned so nothing else does.
set -euo pipefail

PKGS_BUILD="build-essential pkg-config libcmocka-dev libncurses-dev"
PKGS_QEMU="qemu-system-x86 busybox-static cpio"
PKGS_TRACE="libbpf-dev bpftool clang llvm tmux"
PKGS_BENCH="libbenchmark-dev gnuplot-nox"
PKGS="$PKGS_BUILD $PKGS_QEMU $PKGS_TRACE $PKGS_BENCH libunicorn-dev"

have_all() {
    local p
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || return 1
    done
    pkg-config --atleast-version=2.1 unicorn 2>/dev/null
}

if have_all; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: $PKGS" >&2; exit 1; }
    SUDO=sudo
fi

if ! grep -qs '^ID=debian' /etc/os-release; then
    echo "install-deps: not Debian; install these yourself: $PKGS (unicorn >= 2.1)" >&2
    exit 1
fi

# Debian 12 ships unicorn 2.0.1, which cannot run guests whose virtual != physical.
if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
    $SUDO tee /etc/apt/sources.list.d/minivmm-trixie.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO tee /etc/apt/preferences.d/minivmm-trixie >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: libunicorn-dev libunicorn2t64
Pin: release n=trixie
Pin-Priority: 990
PIN
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
pkg-config --atleast-version=2.1 unicorn || {
    echo "install-deps: unicorn >= 2.1 is required (found $(pkg-config --modversion unicorn 2>/dev/null || echo none))" >&2
    exit 1
}
echo "install-deps: ok (unicorn $(pkg-config --modversion unicorn))"
