#!/usr/bin/env bash
# Run a command against the kernel's REAL KVM on a machine without /dev/kvm.
#
# Boots a stock Debian 12 kernel under QEMU's software emulation (TCG) with an
# AMD SVM CPU; inside that VM kvm_amd loads and /dev/kvm appears. PAYLOAD_DIR
# is copied into a busybox initramfs at /payload (plus the shared libraries its
# ELF files need) and COMMAND runs there, with cwd /payload.
#
#   tests/kvm-in-qemu/run.sh [--timeout SECONDS] PAYLOAD_DIR -- COMMAND [ARGS...]
#   tests/kvm-in-qemu/run.sh --fetch-only
#
# Exit status: COMMAND's status inside the VM, or
#   2   usage / preflight error, or the kernel download failed
#   3   the VM ended without reporting a status (kernel panic, crash)
#   4   the VM came up but KVM did not (module load failed, no /dev/kvm)
#   124 timed out
# Environment:
#   MINIVMM_QEMU_CACHE    kernel cache dir (default: <repo>/build/kvm-in-qemu)
#   MINIVMM_QEMU_VERBOSE  1: show the whole boot log (no 'quiet', no filtering)
#   MINIVMM_QEMU_CPU      QEMU -cpu model (default: max; needs svm, e.g. EPYC,+svm)
# See README.md next to this file.
set -euo pipefail

PROG=kvm-in-qemu
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
CACHE=${MINIVMM_QEMU_CACHE:-$REPO_ROOT/build/kvm-in-qemu}
KDIR=$CACHE/kernel
VERBOSE=${MINIVMM_QEMU_VERBOSE:-0}
CPU=${MINIVMM_QEMU_CPU:-max}
TIMEOUT=300
# The module we want; its dependencies are read from each module's depends=.
TOP_MODULE=kvm_amd

die() { # die STATUS MESSAGE
    local rc=$1; shift
    echo "$PROG: error: $*" >&2
    exit "$rc"
}
usage() {
    cat <<'EOF'
usage: tests/kvm-in-qemu/run.sh [--timeout SECONDS] PAYLOAD_DIR -- COMMAND [ARGS...]
       tests/kvm-in-qemu/run.sh --fetch-only
Runs COMMAND (cwd /payload, a copy of PAYLOAD_DIR) in a QEMU/TCG VM whose
kernel has real KVM (kvm_amd on an emulated AMD SVM CPU). Exits with
COMMAND's status; 2 usage/download error, 3 VM crashed, 4 no /dev/kvm, 124 timeout.
EOF
}

# ---------------------------------------------------------------- arguments
FETCH_ONLY=0
PAYLOAD=""
HAVE_SEP=0
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --fetch-only) FETCH_ONLY=1; shift ;;
        --timeout) [ $# -ge 2 ] || die 2 "--timeout needs a value in seconds"
                   TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#--timeout=}; shift ;;
        --) HAVE_SEP=1; shift; break ;;
        -*) die 2 "unknown option '$1' (see --help)" ;;
        *) [ -z "$PAYLOAD" ] || die 2 "unexpected argument '$1' (put '--' before COMMAND)"
           PAYLOAD=$1; shift ;;
    esac
done
case $TIMEOUT in ''|*[!0-9]*|0) die 2 "--timeout wants a positive whole number of seconds, got '$TIMEOUT'" ;; esac

# ---------------------------------------------------------------- kernel cache
need_tool() { # need_tool CMD HINT
    command -v "$1" >/dev/null 2>&1 || die 2 "$1 not found; $2"
}

module_depends() { # module_depends FILE.ko -> dependency names, one a line
    tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' '\n' | sed '/^$/d'
}

fetch_kernel() {
    [ -f "$KDIR/READY" ] && return 0
    need_tool apt-get "install apt (Debian) or run scripts/install-deps.sh"
    need_tool apt-cache "install apt (Debian)"
    need_tool dpkg-deb "install dpkg (Debian)"
    mkdir -p "$CACHE" || die 2 "cannot create cache dir $CACHE"
    exec 9>"$CACHE/.lock"
    flock 9                       # another run may be fetching right now
    if [ -f "$KDIR/READY" ]; then exec 9>&-; return 0; fi

    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1) || true
    [ -n "$pkg" ] || die 2 "apt-cache depends linux-image-amd64 named no kernel package (run apt-get update?)"
    echo "$PROG: fetching kernel package $pkg into $CACHE (once) ..." >&2

    local work
    work=$(mktemp -d "$CACHE/fetch.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    if ! (cd "$work" && apt-get download -q "$pkg" >"$work/apt.log" 2>&1); then
        tail -n 3 "$work/apt.log" >&2 || true
        die 2 "apt-get download $pkg failed (network? stale lists: apt-get update)"
    fi
    local debs=("$work"/*.deb) deb
    deb=${debs[0]}
    [ -f "$deb" ] || die 2 "apt-get download $pkg produced no .deb"
    local ver
    ver=$(dpkg-deb -f "$deb" Version)
    dpkg-deb -x "$deb" "$work/root" || die 2 "dpkg-deb -x $deb failed"
    rm -f "$deb"

    local new=$work/kernel
    mkdir -p "$new/modules"
    local vmlinuzes=("$work"/root/boot/vmlinuz-*) vmlinuz
    vmlinuz=${vmlinuzes[0]}
    [ -f "$vmlinuz" ] || die 2 "no boot/vmlinuz-* in $pkg"
    cp "$vmlinuz" "$new/vmlinuz"

    # Index all modules by name (file names use '-' or '_'; module names '_').
    declare -A modpath=()
    local f base
    while IFS= read -r f; do
        base=${f##*/}; base=${base%%.ko*}; base=${base//-/_}
        modpath[$base]=$f
    done < <(find "$work/root/lib/modules" -name '*.ko*' -type f)

    # Decompress the needed modules, then order them dependencies first.
    local order=() seen=" "
    add_module() {
        local m=$1 src dst d
        case $seen in *" $m "*) return 0 ;; esac
        seen="$seen$m "
        src=${modpath[$m]:-}
        [ -n "$src" ] || die 2 "module $m not found in $pkg"
        dst=$new/modules/$m.ko
        case $src in
            *.ko)     cp "$src" "$dst" ;;
            *.ko.xz)  xz -dc "$src" >"$dst" ;;
            *.ko.zst) zstd -qdc "$src" >"$dst" ;;
            *.ko.gz)  gzip -dc "$src" >"$dst" ;;
            *) die 2 "unknown module compression: $src" ;;
        esac || die 2 "cannot decompress $src"
        for d in $(module_depends "$dst"); do add_module "${d//-/_}"; done
        order+=("$m")
    }
    add_module "$TOP_MODULE"
    printf '%s\n' "${order[@]}" >"$new/modules/order"
    printf '%s %s\n' "$pkg" "$ver" >"$new/PACKAGE"
    rm -rf "$work/root"

    rm -rf "$KDIR"
    mv "$new" "$KDIR"
    touch "$KDIR/READY"
    rm -rf "$work"
    trap - EXIT
    exec 9>&-
    echo "$PROG: cached $pkg $ver (modules: ${order[*]})" >&2
}

if [ "$FETCH_ONLY" = 1 ]; then
    if [ -n "$PAYLOAD" ] || [ "$HAVE_SEP" = 1 ]; then die 2 "--fetch-only takes no PAYLOAD_DIR or COMMAND"; fi
    fetch_kernel
    echo "$PROG: kernel cached in $KDIR ($(cat "$KDIR/PACKAGE"))"
    exit 0
fi

# ---------------------------------------------------------------- preflight
need_tool qemu-system-x86_64 "run scripts/install-deps.sh (package qemu-system-x86)"
need_tool cpio "run scripts/install-deps.sh (package cpio)"
need_tool gzip "install gzip"
need_tool timeout "install coreutils"
[ -n "$PAYLOAD" ] || die 2 "no PAYLOAD_DIR given (usage: run.sh [--timeout S] PAYLOAD_DIR -- COMMAND [ARGS...])"
[ -d "$PAYLOAD" ] || die 2 "PAYLOAD_DIR '$PAYLOAD' is not a directory"
if [ "$HAVE_SEP" = 0 ] || [ $# -eq 0 ]; then
    die 2 "no COMMAND given (usage: run.sh [--timeout S] PAYLOAD_DIR -- COMMAND [ARGS...])"
fi
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || die 2 "no static busybox found; run scripts/install-deps.sh (package busybox-static)"

fetch_kernel

# ---------------------------------------------------------------- initramfs
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvm-in-qemu.XXXXXX")
QPID="" APID=""
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    set +e
    if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; fi
    if [ -n "$APID" ]; then wait "$APID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$TMP/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,payload,lib/modules}

cp "$BUSYBOX" "$ROOT/bin/busybox"
"$BUSYBOX" --list-full | while IFS= read -r applet; do
    case $applet in bin/busybox|'') continue ;; esac
    ln -sf "/bin/busybox" "$ROOT/$applet" 2>/dev/null || true
done

while IFS= read -r m; do
    cp "$KDIR/modules/$m.ko" "$ROOT/lib/modules/"
done <"$KDIR/modules/order"
cp "$KDIR/modules/order" "$ROOT/lib/modules/order"

cp -a "$PAYLOAD/." "$ROOT/payload/"

# Shared libraries of every ELF file in the payload, at their host paths.
copy_host_file() { # copy_host_file /abs/path  (dereferenced, same path inside)
    local p=$1
    [ -e "$ROOT$p" ] && return 0
    mkdir -p "$ROOT$(dirname "$p")"
    cp -L "$p" "$ROOT$p"
}
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | tr -d '\0')" = $'\x7fELF' ]; }
NEED_LIBS=0
while IFS= read -r -d '' f; do
    is_elf "$f" || continue
    out=$(ldd "$f" 2>/dev/null) || continue      # static or foreign ELF: nothing to copy
    NEED_LIBS=1
    while IFS= read -r line; do
        case $line in
            *"=> not found"*) echo "$PROG: warning: ${f#"$PAYLOAD"/} needs ${line%% =>*} (not found on host)" | tr -d '\t' >&2 ;;
            *"=> /"*) lib=${line#*=> }; copy_host_file "${lib%% (*}" ;;
            *[[:space:]]/*) lib=${line#"${line%%/*}"}; copy_host_file "${lib%% (*}" ;;
        esac
    done <<<"$out"
done < <(find "$PAYLOAD/" -type f -print0)
if [ "$NEED_LIBS" = 1 ]; then
    copy_host_file /lib64/ld-linux-x86-64.so.2
    [ -f /etc/ld.so.cache ] && cp /etc/ld.so.cache "$ROOT/etc/ld.so.cache"
fi
# A few terminfo entries, for programs linked with ncurses.
for t in d/dumb l/linux v/vt100 v/vt102 x/xterm; do
    for d in /lib/terminfo /usr/share/terminfo; do
        if [ -f "$d/$t" ]; then copy_host_file "$d/$t"; break; fi
    done
done

# The command, quoted for sh: each argument in '...', with ' as '\''.
{
    printf 'set --'
    for a in "$@"; do printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done
    printf '\n'
} >"$ROOT/etc/minivmm-cmd"

cat >"$ROOT/init" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=vt100
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -t 1 ] || exec </dev/console >/dev/console 2>&1
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/pts /dev/shm
# Allow big lazy reservations (unicorn maps a 1 GiB code buffer; RAM is 1 GiB).
echo 1 >/proc/sys/vm/overcommit_memory
mount -t devpts devpts /dev/pts 2>/dev/null
fail() {
    echo "minivmm-qemu: $*"
    echo "MINIVMM-QEMU-ERROR=$*"
    poweroff -f
    sleep 10
}
while read -r m; do
    insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done </lib/modules/order
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm_amd (see dmesg above; CPU without SVM?)"
[ "$MINIVMM_VERBOSE" = 1 ] &&
    echo "minivmm-qemu: /dev/kvm ready, kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"
. /etc/minivmm-cmd
echo "MINIVMM-QEMU-START"
( cd /payload && exec "$@" ) </dev/null
rc=$?
echo "MINIVMM-QEMU-RC=$rc"
poweroff -f
sleep 10
EOF
chmod +x "$ROOT/init"

(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
    >"$TMP/initrd.gz" || die 2 "building the initramfs failed"
rm -rf "$ROOT"

# ---------------------------------------------------------------- boot
APPEND="console=ttyS0 panic=-1"
if [ "$VERBOSE" = 1 ]; then APPEND="$APPEND MINIVMM_VERBOSE=1"; else APPEND="$APPEND quiet"; fi

AWK=(awk)
if awk -W version 2>&1 | grep -q mawk; then AWK=(awk -W interactive); fi

# Console filter: drop CRs; until /init says START show only its own lines
# (and everything when verbose); hide the shutdown after the RC marker. The
# whole raw log goes to $TMP/console.log, the status to $TMP/rc.
# QEMU and the filter run in the background, joined by a FIFO, so that an
# INT/TERM to this script can stop QEMU at once (see cleanup).
mkfifo "$TMP/console"
# shellcheck disable=SC2016  # an awk program, not shell
"${AWK[@]}" -v verbose="$VERBOSE" -v logf="$TMP/console.log" -v rcfile="$TMP/rc" '
    { gsub(/\r/, "") }
    !started { gsub(/\033(\[[0-9;?]*[A-Za-z]|c)/, "") }
    { print > logf }
    done { next }
    !started && /MINIVMM-QEMU-ERROR=/ { e = $0; sub(/.*MINIVMM-QEMU-ERROR=/, "", e); print e > (rcfile ".err"); next }
    started && /MINIVMM-QEMU-RC=[0-9]+/ {
        i = index($0, "MINIVMM-QEMU-RC="); pre = substr($0, 1, i - 1); m = substr($0, i)
        if (pre != "") print pre
        print m; fflush()
        sub(/^MINIVMM-QEMU-RC=/, "", m); sub(/[^0-9].*/, "", m)
        print m > rcfile; close(rcfile)
        done = 1; next
    }
    !started && /MINIVMM-QEMU-START$/ {
        started = 1; print "" > (rcfile ".started"); close(rcfile ".started")
        if (!verbose) next
    }
    started || verbose || /^minivmm-qemu: / { print; fflush() }
' <"$TMP/console" &
APID=$!
timeout -k 5 "$TIMEOUT" \
    qemu-system-x86_64 -accel tcg -cpu "$CPU" -m 1024 -smp 1 \
        -nographic -no-reboot -nic none -monitor none -serial stdio \
        -kernel "$KDIR/vmlinuz" -initrd "$TMP/initrd.gz" -append "$APPEND" \
        </dev/null >"$TMP/console" 2>"$TMP/qemu.err" &
QPID=$!
QRC=0
wait "$QPID" || QRC=$?
QPID=""
wait "$APID" || true
APID=""

console_was_shown() { [ -e "$TMP/rc.started" ] || [ "$VERBOSE" = 1 ]; }
show_console_tail() {
    if [ -s "$TMP/qemu.err" ]; then sed 's/^/  qemu: /' "$TMP/qemu.err"; fi
    echo "  last console lines:"
    tail -n 25 "$TMP/console.log" 2>/dev/null | sed 's/^/  | /'
}
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
    echo "$PROG: error: timed out after ${TIMEOUT}s (the command or the VM hung; try --timeout or MINIVMM_QEMU_VERBOSE=1)" >&2
    console_was_shown || show_console_tail >&2
    exit 124
fi
if [ -s "$TMP/rc.err" ]; then
    {
        echo "$PROG: error: KVM did not come up in the VM: $(cat "$TMP/rc.err")"
        grep -iE 'kvm|svm' "$TMP/console.log" | grep -v MINIVMM | tail -n 5 | sed 's/^/  | /'
    } >&2
    exit 4
fi
if [ ! -s "$TMP/rc" ]; then
    {
        echo "$PROG: error: the VM ended without a MINIVMM-QEMU-RC marker (kernel panic or crash; qemu exit $QRC)"
        console_was_shown || show_console_tail
    }  >&2
    exit 3
fi
exit "$(cat "$TMP/rc")"
