#!/usr/bin/env bash
# Caches Linux's virtio modules for the kernel tests/kvm-in-qemu caches (Debian builds virtio, virtio_ring,
# virtio_mmio and virtio_net as modules): `apt-get download` of the same package, `dpkg-deb -x`, the modules
# kept in load order (each one's depends= read from its .modinfo), nothing installed. Prints the cache
# directory on its last line. Status 2 when the kernel is not cached or the package cannot be fetched.
#
#   tests/linux/fetch-modules.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
KDIR=${MINIVMM_QEMU_CACHE:-build/kvm-in-qemu}/kernel
OUT=${MINIVMM_QEMU_CACHE:-build/kvm-in-qemu}/linux-modules
WANT="virtio_mmio virtio_net"
die() { echo "fetch-modules: $*" >&2; exit 2; }
[ -f "$KDIR/PACKAGE" ] || die "no cached kernel in $KDIR (tests/kvm-in-qemu/run.sh --fetch-only)"
read -r pkg ver <"$KDIR/PACKAGE"
if [ -f "$OUT/READY" ] && [ "$(cat "$OUT/READY")" = "$pkg $ver" ]; then
    realpath "$OUT"
    exit 0
fi
command -v dpkg-deb >/dev/null || die "no dpkg-deb"
work=$(mktemp -d "${TMPDIR:-/tmp}/mvm-modules.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$pkg=$ver" >apt.log 2>&1) || die "apt-get download $pkg=$ver failed: $(tail -n1 "$work/apt.log")"
dpkg-deb -x "$work"/*.deb "$work/root" || die "dpkg-deb -x failed"
mdir=$(echo "$work"/root/lib/modules/*)
# Depth-first over depends=, each module after what it needs.
order=()
shopt -s nullglob
add() {
    local m=$1 f d
    for d in "${order[@]}"; do [ "$d" = "$m" ] && return 0; done
    f=$(find "$mdir" -name "$m.ko" | head -n1)
    [ -n "$f" ] || die "module $m is not in $pkg (built in? then nothing to load)"
    for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '); do add "${d//-/_}"; done
    order+=("$m")
}
for m in $WANT; do add "$m"; done
rm -rf "$OUT"
mkdir -p "$OUT"
for m in "${order[@]}"; do cp "$(find "$mdir" -name "$m.ko" | head -n1)" "$OUT/"; echo "$m"; done >"$OUT/order"
echo "$pkg $ver" >"$OUT/READY"
realpath "$OUT"
