#!/usr/bin/env bash
# The newcomer's check (CI runs it after `make test`): the committed tree, cloned into a fresh Debian 12
# root (debootstrap minbase plus git, make and ca-certificates, nothing else), runs, each the first time:
#   make demo;  MINIVMM_KVM_DEVICE=/nonexistent make test (a machine without KVM);  make grade LAB=1 (32/32);
#   make gradescope LAB=1 and its run_autograder on a submission, as Gradescope runs it (the score of local grading).
# The pristine root is built once and cached as a tarball in $MINIVMM_FRESH_CACHE (default
# /var/cache/minivmm-fresh). Needs root (chroot, mounts) and Debian's archive.
#   scripts/fresh-root-check.sh [REF]     (default HEAD)
# Ends with: "fresh-root: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
repo=$(pwd)
ref=${1:-HEAD}
pass=0 fail=0 skip=0
finish() { echo "fresh-root: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit; }

if [ "$(id -u)" != 0 ]; then
    echo "skip: the fresh-root check needs root (debootstrap, chroot and bind mounts)"
    skip=3; finish
fi
commit=$(git rev-parse --verify -q "$ref^{commit}") || { echo "fresh-root: no commit $ref"; fail=1; finish; }

cache=${MINIVMM_FRESH_CACHE:-/var/cache/minivmm-fresh}
tarball=$cache/bookworm-minbase-git-make.tgz
if [ ! -f "$tarball" ]; then
    echo "== building a pristine Debian 12 root (once; cached in $cache)"
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null ||
        { echo "fresh-root: cannot install debootstrap"; fail=1; finish; }
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/root.XXXXXX")
    if ! debootstrap --variant=minbase bookworm "$tmp" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
        ! chroot "$tmp" apt-get install -y -qq git make ca-certificates >>"$cache/debootstrap.log" 2>&1; then
        tail -n 20 "$cache/debootstrap.log"
        rm -rf --one-file-system "$tmp"
        echo "fresh-root: debootstrap failed (log above)"; fail=1; finish
    fi
    chroot "$tmp" apt-get clean
    chmod 755 "$tmp" # mktemp made it 0700, and tar records it as the root's mode
    tar -C "$tmp" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$tmp"
fi

root=$(mktemp -d /tmp/minivmm-fresh.XXXXXX)
mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null; done
    grep -q " $root/" /proc/mounts || rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -xzf "$tarball"
chmod 755 "$root" # a root directory of 0700 keeps every user but root out of / (a tarball cached before may say so)
cp /etc/resolv.conf "$root/etc/" 2>/dev/null
for m in proc sys dev dev/pts; do
    mkdir -p "$root/$m" && mount --bind "/$m" "$root/$m" && mounted+=("$root/$m")
done
git clone -q --no-checkout "$repo" "$root/home/kit" && git -C "$root/home/kit" checkout -q "$commit" ||
    { echo "fresh-root: cannot clone $commit"; fail=1; finish; }
echo "== fresh Debian 12 root at $root, commit $(git rev-parse --short "$commit")"

# step NAME CHECK_REGEX CMD: runs CMD in the fresh root as a newcomer would; passes on status 0 and, when given,
# the regex found in its output
step() {
    local name=$1 want=$2 cmd=$3 log rc
    log=$(mktemp)
    echo "== $name: $cmd"
    local t0=$SECONDS
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        TERM=dumb /bin/bash -c "cd /home/kit && $cmd" </dev/null >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && { [ -z "$want" ] || grep -qE "$want" "$log"; }; then
        pass=$((pass + 1))
        echo "ok: $name ($((SECONDS - t0)) s); last lines:"
        tail -n 3 "$log" | sed 's/^/    /'
    else
        fail=$((fail + 1))
        echo "FAIL: $name (status $rc, $((SECONDS - t0)) s${want:+, wanted /$want/}); its output ends:"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
}

step "first make demo" "exits by kind" "make demo"
step "make test without KVM" "^tests: [0-9]+ passed, 0 failed" "MINIVMM_KVM_DEVICE=/nonexistent make test"
step "make grade LAB=1" "^Total: 32/32" "make grade LAB=1"
# The Gradescope package end to end, as Gradescope runs it: the zip unpacked at /autograder, setup.sh once, then
# run_autograder on a submission (a partly wrong one, base = selector). Its score must be local grading's, test by test.
step "make gradescope LAB=1, run as Gradescope does" "^gradescope 30, local 30, the same per test" \
    "$(cat <<'GS'
set -e
make -s gradescope LAB=1 >/dev/null
rm -rf /autograder && mkdir -p /autograder/submission
python3 -c 'import shutil; shutil.unpack_archive("build/gradescope/lab1/autograder.zip", "/autograder")'
chmod +x /autograder/setup.sh /autograder/run_autograder # Python's unzip drops the modes; Gradescope's does not
sed 's/seg->base = (uint64_t)selector << 4;/seg->base = selector;/' solutions/lab1-realmode/lab1_realmode.c \
    >/autograder/submission/lab1_realmode.c
(cd /autograder && bash setup.sh >/dev/null)
/autograder/run_autograder >/dev/null || true
python3 tests/grading/grade.py 1 /autograder/submission --json /tmp/local.json >/dev/null || true
python3 - <<'CMP'
import json
g, l = (json.load(open(p)) for p in ("/autograder/results/results.json", "/tmp/local.json"))
per = lambda r: [(t["name"], t["score"]) for t in r["tests"]]
print(f"gradescope {g['score']}, local {l['score']}, " + ("the same per test" if per(g) == per(l) else "NOT the same per test"))
CMP
GS
)"
finish
