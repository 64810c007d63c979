#!/usr/bin/env bash
# Installs what minivmm labs needs (idempotent; quiet and quick when all is there). The Makefile runs it
# before anything else on every top-level make, so a fresh machine's first `make demo` works.
#   Debian 12: apt; Unicorn >= 2.1 comes from Debian 13 (trixie), pinned so nothing else does.
#   Debian 13 and later: apt only.  Ubuntu 22.04/24.04: apt for the rest, Unicorn 2.1 built from
#   its upstream release (needs github.com) into /usr/local.  Anything else: the list, to install by hand.
# Needs root or sudo only when something is missing. Exit status: 0 ok, 1 could not install.
set -euo pipefail

PKGS_BUILD="build-essential pkg-config libcmocka-dev libncurses-dev python3 clang-format gdb"
PKGS_QEMU="qemu-system-x86 busybox-static cpio"
PKGS_TRACE="libbpf-dev bpftool clang llvm tmux"
PKGS_BENCH="libbenchmark-dev gnuplot-nox"
PKGS_FUZZ="libclang-rt-14-dev"
PKGS="$PKGS_BUILD $PKGS_QEMU $PKGS_TRACE $PKGS_BENCH $PKGS_FUZZ libunicorn-dev"
UNICORN_MIN=2.1
UNICORN_SRC_VERSION=2.1.1

# The commands the kit runs, and the package each comes from (for the message when one is missing).
TOOLS="cc:build-essential make:make pkg-config:pkg-config python3:python3 qemu-system-x86_64:qemu-system-x86
cpio:cpio busybox:busybox-static clang:clang tmux:tmux gnuplot:gnuplot-nox"

say() { echo "install-deps: $*" >&2; }

missing_pkgs() {
    local p out=""
    for p in $1; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || out="$out $p"
    done
    echo "$out"
}

unicorn_ok() { pkg-config --atleast-version=$UNICORN_MIN unicorn 2>/dev/null; }

# missing_tools: the commands above that are not on PATH, each with its package
missing_tools() {
    local t out=""
    for t in $TOOLS; do
        command -v "${t%%:*}" >/dev/null 2>&1 || out="$out ${t%%:*} (package ${t#*:})"
    done
    echo "$out"
}

. /etc/os-release 2>/dev/null || true
ID=${ID:-unknown} VERSION_CODENAME=${VERSION_CODENAME:-}

if ! command -v dpkg-query >/dev/null 2>&1; then
    if unicorn_ok && [ -z "$(missing_tools)" ]; then exit 0; fi
    say "this is not a Debian or Ubuntu system ($ID); install these yourself:"
    say "  a C compiler, make, pkg-config, cmocka, ncurses, python3, Unicorn >= $UNICORN_MIN, QEMU (x86_64),"
    say "  busybox (static), cpio, libbpf + bpftool + clang, tmux, Google Benchmark, gnuplot, gdb"
    say "  missing now:$(missing_tools)$(unicorn_ok || echo " unicorn>=$UNICORN_MIN")"
    say "then run make with MINIVMM_NO_DEPS=1"
    exit 1
fi

# On Ubuntu the Unicorn package is too old (2.0.1 or 1.x): everything else from apt, Unicorn from source.
apt_pkgs=$PKGS
[ "$ID" = ubuntu ] && apt_pkgs=${PKGS/libunicorn-dev/cmake curl}
# bpftool on Ubuntu is in linux-tools-$(uname -r); the BPF tracer is optional and its tests skip without it.
[ "$ID" = ubuntu ] && apt_pkgs=${apt_pkgs/bpftool/}

todo=$(missing_pkgs "$apt_pkgs")
if [ -z "$todo" ] && unicorn_ok; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    # sudo when it works without a password, or can ask for one on a terminal.
    if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
        SUDO=sudo
    else
        say "missing:${todo:-} $(unicorn_ok || echo "unicorn>=$UNICORN_MIN")"
        say "installing needs root: run 'sudo make deps' once (or ask your administrator for these packages),"
        say "then make works as your own user. MINIVMM_NO_DEPS=1 skips this check."
        exit 1
    fi
fi

case "$ID" in
debian | ubuntu) ;;
*)
    say "$ID is not Debian or Ubuntu; install these yourself: $PKGS (unicorn >= $UNICORN_MIN), then MINIVMM_NO_DEPS=1 make"
    exit 1
    ;;
esac

# Debian 12 ships unicorn 2.0.1, which cannot run guests whose virtual != physical.
if [ "$VERSION_CODENAME" = bookworm ]; then
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

say "installing with apt (the first time takes a few minutes):${todo:- (unicorn)}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $apt_pkgs; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    say "apt-get failed (above); nothing else was changed"
    exit 1
fi

if ! unicorn_ok && [ "$ID" = ubuntu ]; then
    say "building Unicorn $UNICORN_SRC_VERSION from its upstream release into /usr/local (about a minute)"
    src=$(mktemp -d)
    if ! { curl -fsSL "https://github.com/unicorn-engine/unicorn/archive/refs/tags/$UNICORN_SRC_VERSION.tar.gz" |
        tar -xz -C "$src" &&
        cmake -S "$src/unicorn-$UNICORN_SRC_VERSION" -B "$src/build" -DUNICORN_ARCH=x86 -DCMAKE_BUILD_TYPE=Release &&
        cmake --build "$src/build" -j"$(nproc)" && $SUDO cmake --install "$src/build" && $SUDO ldconfig; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        say "could not build Unicorn (above)"
        exit 1
    fi
    rm -rf "$src"
fi

if ! unicorn_ok; then
    say "unicorn >= $UNICORN_MIN is required (found $(pkg-config --modversion unicorn 2>/dev/null || echo none))"
    exit 1
fi
left=$(missing_tools)
if [ -n "$left" ]; then
    say "still missing after the install:$left"
    exit 1
fi
say "ok (unicorn $(pkg-config --modversion unicorn))"
