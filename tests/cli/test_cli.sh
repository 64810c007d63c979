#!/usr/bin/env bash
# CLI tests: every bad input gets one clear line and the documented exit status; guests' verdicts map to statuses;
# no file the tools are given is ever harmed, and nothing hangs (each case runs under `timeout 10`: a hang fails).
#   tests/cli/test_cli.sh BUILD_DIR [BACKEND]
set -u
build=${1:?usage: test_cli.sh BUILD_DIR [BACKEND]}
backend=${2:-auto}
bin=$build/bin/minivmm
top=$build/bin/mvm-top
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# check NAME WANT_STATUS WANT_TEXT -- ARGS...: runs minivmm (or $prog), checks status and that stderr+stdout
# contain WANT_TEXT. A run that outlives `timeout 10` fails as a hang.
check() {
    local name=$1 want_rc=$2 want_text=$3
    shift 4
    local out rc
    out=$(timeout 10 "${prog:-$bin}" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$want_text" <<<"$out"; then
        ok "$name"
    elif [ "$rc" -eq 124 ]; then
        fail "$name: hung (killed after 10 s)"
    else
        fail "$name: expected status $want_rc and text '$want_text', got status $rc and:"
        sed 's/^/     | /' <<<"$out" | head -n 8
    fi
}

# same NAME FILE COPY: FILE is still byte-for-byte COPY (a regular file, not replaced by a link or a feed).
same() {
    if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$2" "$3"; then
        ok "$1"
    else
        fail "$1: $2 was changed or replaced"
        ls -l "$2" 2>&1 | sed 's/^/     | /'
    fi
}

: >"$tmp/empty.bin"
head -c 3000000 /dev/zero >"$tmp/big.bin"
printf '\xf4' >"$tmp/hlt.bin"

check help 0 "usage: minivmm run" -- --help
check no-args 2 "usage:" --
check unknown-command 2 "unknown command 'fly'" -- fly
check unknown-flag 2 "unknown option '--frobnicate'" -- run --frobnicate "$tmp/hlt.bin"
check flag-without-value 2 "needs a value" -- run "$tmp/hlt.bin" --mem
check missing-file 2 "No such file or directory" -- run "$tmp/nope.bin"
check directory-image 2 "not a regular file" -- run "$tmp"
check empty-image 2 "empty file" -- run "$tmp/empty.bin"
check image-too-big 2 "do not fit in guest RAM" -- run --backend "$backend" "$tmp/big.bin"
check entry-outside-ram 2 "entry 0x300000 is outside guest RAM" -- run --entry 0x300000 "$tmp/hlt.bin"
check bad-mem 2 "--mem: '12Q'" -- run --mem 12Q "$tmp/hlt.bin"
check bad-number 2 "--max-exits: 'lots'" -- run --max-exits lots "$tmp/hlt.bin"
check bad-backend 2 "unknown backend 'vmware'" -- run --backend vmware "$tmp/hlt.bin"
check bad-mode 2 "--mode 'unreal'" -- run --mode unreal "$tmp/hlt.bin"
check unknown-guest 2 "no built-in guest 'lab9/nothing'" -- run --guest lab9/nothing
check image-and-guest 2 "not both" -- run --guest lab1/hello "$tmp/hlt.bin"
MINIVMM_KVM_DEVICE=$tmp/no-kvm check no-dev-kvm 2 "cannot open /dev/kvm" -- run --backend kvm "$tmp/hlt.bin"

# Verdicts, on the backend under test.
check halt-passes 0 "halted after 1 exits (HLT 1)" -- run --backend "$backend" "$tmp/hlt.bin"
check hello-done 0 "done after 23 exits (IO 23)" -- run --backend "$backend" --guest lab1/hello
check assert-fails 1 "GUEST_ASSERT failed at line 10: two plus two is five (got 0x4, expected 0x5)" -- \
    run --backend "$backend" --guest probes/assert16
check triple-fault 3 "KVM_EXIT_SHUTDOWN" -- run --backend "$backend" --guest probes/triple16
check hang-times-out 4 "stopped after 200 ms of wall time" -- run --backend "$backend" --timeout 200 --guest probes/spin16
check exit-limit 4 "stopped after 5 exits" -- run --backend "$backend" --max-exits 5 --guest lab1/hello
check exit-dump 0 "IO out port=0x03f8 size=1 count=1 data=48" -- run --backend "$backend" -q --exits - --guest lab1/hello
# --share DIR (lab 4's file service): a directory, or a usage error; without it the guest's open gets -ENODEV.
mkdir "$tmp/share" && printf 'from the cli test\n' >"$tmp/share/hello.txt"
check share-missing 2 "--share $tmp/nope: No such file or directory" -- \
    run --backend "$backend" --mode long --guest lab4/files --share "$tmp/nope"
check share-not-a-dir 2 "--share $tmp/hlt.bin: Not a directory" -- \
    run --backend "$backend" --mode long --guest lab4/files --share "$tmp/hlt.bin"
check share-none 1 "open hello.txt: descriptor 0 (run with --share DIR" -- run --backend "$backend" --mode long --guest lab4/files
check share-files 0 "3 escapes refused" -- run --backend "$backend" --mode long --guest lab4/files --share "$tmp/share"
if grep -qx "from the cli test" "$tmp/share/from-guest.txt" 2>/dev/null; then ok share-write-back; else
    fail "share-write-back: lab4/files should have written from-guest.txt into --share $tmp/share"; fi
# An existing regular file is overwritten as usual.
printf 'old line\n%.0s' $(seq 100) >"$tmp/dump.txt"
if timeout 10 "$bin" run --backend "$backend" -q --exits "$tmp/dump.txt" --guest lab1/hello >/dev/null 2>&1 &&
    [ "$(wc -l <"$tmp/dump.txt")" -eq 23 ] && ! grep -q "old line" "$tmp/dump.txt"; then
    ok exit-dump-file
else
    fail "exit-dump-file: expected the 23 lines of the dump, and only them, in the file"
fi

# A FIFO is refused at once, never waited on (it used to hang past --timeout), and stays a FIFO.
mkfifo "$tmp/fifo"
check fifo-image 2 "guest image $tmp/fifo: is a FIFO or pipe, not a regular file" -- run --backend "$backend" "$tmp/fifo"
check fifo-exits 2 "--exits $tmp/fifo: is a FIFO or pipe; give a regular file" -- \
    run --backend "$backend" --exits "$tmp/fifo" "$tmp/hlt.bin"
check fifo-final-regs 2 "--final-regs $tmp/fifo: is a FIFO or pipe" -- \
    run --backend "$backend" --final-regs "$tmp/fifo" "$tmp/hlt.bin"
check fifo-trace 2 "--trace $tmp/fifo: is a FIFO or pipe" -- run --backend "$backend" --trace "$tmp/fifo" "$tmp/hlt.bin"
check fifo-trace-live 2 "--trace-live $tmp/fifo: is a FIFO or pipe; refusing to replace it" -- \
    run --backend "$backend" --trace-live "$tmp/fifo" "$tmp/hlt.bin"
if [ -p "$tmp/fifo" ]; then ok fifo-still-a-fifo; else fail "fifo-still-a-fifo: the FIFO was replaced"; fi
mkfifo "$tmp/top.fifo"
prog=$top check mvm-top-replay-fifo 1 "$tmp/top.fifo: is a FIFO or pipe, not a regular file" -- \
    replay "$tmp/top.fifo" --summary
prog=$top check mvm-top-live-fifo 1 "live feed $tmp/top.fifo: is a FIFO or pipe" -- live "$tmp/top.fifo" --summary
check exits-other-device 2 "--exits /dev/zero: is a character device other than /dev/null or a terminal" -- \
    run --backend "$backend" --exits /dev/zero "$tmp/hlt.bin"
check exits-directory 2 "--exits $tmp: is a directory" -- run --backend "$backend" --exits "$tmp" "$tmp/hlt.bin"
check exits-dev-null 0 "halted" -- run --backend "$backend" --exits /dev/null --final-regs /dev/null "$tmp/hlt.bin"
# The exit dump on standard output never lands inside a line of the guest's console ("HIO out port=...").
check exits-stdout-console-lines-whole 0 "Hello from real mode!" -- run --backend "$backend" --guest lab1/hello --exits -

# --trace-live replaces only an old feed of its own: never another file, a symlink or a device.
printf 'precious data\n' >"$tmp/precious.txt"
cp "$tmp/precious.txt" "$tmp/precious.orig"
check live-over-regular-file 2 "is not a minivmm live feed (no MVMLIVE1 magic); refusing to replace it" -- \
    run --backend "$backend" --trace-live "$tmp/precious.txt" "$tmp/hlt.bin"
same live-over-regular-file-untouched "$tmp/precious.txt" "$tmp/precious.orig"
ln -s "$tmp/precious.txt" "$tmp/link.live"
check live-over-symlink 2 "--trace-live $tmp/link.live: is a symbolic link" -- \
    run --backend "$backend" --trace-live "$tmp/link.live" "$tmp/hlt.bin"
if [ -L "$tmp/link.live" ]; then ok live-symlink-kept; else fail "live-symlink-kept: the link was replaced"; fi
same live-symlink-target-untouched "$tmp/precious.txt" "$tmp/precious.orig"
check live-new 0 "halted" -- run --backend "$backend" --trace-live "$tmp/feed.live" "$tmp/hlt.bin"
check live-over-old-feed 0 "halted" -- run --backend "$backend" --trace-live "$tmp/feed.live" "$tmp/hlt.bin"
if [ "$(head -c 8 "$tmp/feed.live" 2>/dev/null)" = MVMLIVE1 ] && [ -z "$(ls "$tmp" | grep 'feed\.live\.')" ]; then
    ok live-feed-made
else
    fail "live-feed-made: no feed at $tmp/feed.live, or a temporary file was left beside it"
fi
# Nor the feed of a VMM that is still running.
timeout 10 "$bin" run --backend "$backend" -q --timeout 5000 --trace-live "$tmp/busy.live" --guest probes/spin16 \
    >/dev/null 2>&1 &
busy=$!
for _ in $(seq 100); do [ -s "$tmp/busy.live" ] && break; sleep 0.05; done
check live-over-running-feed 2 "live feed $tmp/busy.live: is the feed of a running minivmm" -- \
    run --backend "$backend" --trace-live "$tmp/busy.live" "$tmp/hlt.bin"
kill "$busy" 2>/dev/null
wait "$busy" 2>/dev/null
# A device node of our own making (as root), never the host's /dev/null: a broken build would replace it.
if mknod "$tmp/null" c 1 3 2>/dev/null; then
    check live-over-device 2 "--trace-live $tmp/null: is a character device; refusing to replace it" -- \
        run --backend "$backend" --trace-live "$tmp/null" "$tmp/hlt.bin"
    if [ -c "$tmp/null" ]; then ok live-device-kept; else fail "live-device-kept: the device node was replaced"; fi
else
    echo "skip live-over-device (mknod needs root)"
fi

# An output that is an input, or another output, is refused before anything is opened for writing.
cp "$tmp/hlt.bin" "$tmp/img.bin"
cp "$tmp/hlt.bin" "$tmp/img.orig"
check exits-is-image 2 "--exits $tmp/img.bin: is the guest image $tmp/img.bin; an output never overwrites an input" -- \
    run --backend "$backend" --exits "$tmp/img.bin" "$tmp/img.bin"
same exits-is-image-untouched "$tmp/img.bin" "$tmp/img.orig"
ln -s img.bin "$tmp/img-link"
ln "$tmp/img.bin" "$tmp/img-hardlink"
check regs-is-image-via-symlink 2 "--final-regs $tmp/img-link: is the guest image" -- \
    run --backend "$backend" --final-regs "$tmp/img-link" "$tmp/img.bin"
check trace-is-image-via-hard-link 2 "--trace $tmp/img-hardlink: is the guest image" -- \
    run --backend "$backend" --trace "$tmp/img-hardlink" "$tmp/img.bin"
check image-is-exits-via-symlink 2 "is the guest image" -- run --backend "$backend" --exits "$tmp/img.bin" "$tmp/img-link"
same image-via-links-untouched "$tmp/img.bin" "$tmp/img.orig"
check exits-is-regs 2 "--final-regs $tmp/out.txt: is also the --exits file" -- \
    run --backend "$backend" --exits "$tmp/out.txt" --final-regs "$tmp/out.txt" "$tmp/hlt.bin"

# An output that cannot be opened or written: a message naming it, and a non-zero status.
check regs-missing-dir 2 "--final-regs $tmp/no/such/dir: No such file or directory" -- \
    run --backend "$backend" --final-regs "$tmp/no/such/dir" "$tmp/hlt.bin"
check exits-dev-full 5 "--exits /dev/full: write failed: No space left on device" -- \
    run --backend "$backend" -q --exits /dev/full --guest lab1/hello
check regs-dev-full 5 "--final-regs /dev/full: write failed: No space left on device" -- \
    run --backend "$backend" -q --final-regs /dev/full "$tmp/hlt.bin"
check trace-dev-full 5 "trace file /dev/full: write failed: No space left on device" -- \
    run --backend "$backend" -q --trace /dev/full "$tmp/hlt.bin"
check write-error-keeps-guest-status 1 "--exits /dev/full: write failed" -- \
    run --backend "$backend" -q --exits /dev/full --guest probes/assert16
out=$(timeout 10 "$bin" run --backend "$backend" -q --guest lab1/hello 2>&1 >/dev/full)
rc=$?
if [ "$rc" -eq 5 ] && grep -qF "minivmm: standard output: " <<<"$out" && grep -qF "write" <<<"$out"; then
    ok stdout-dev-full
else
    fail "stdout-dev-full: expected status 5 and a message, got status $rc and: $out"
fi
# A regular file that stops growing (the file size limit, as on a full disk): a message, not a silent short
# trace, and no crash (events after the failure used to overrun the block buffer). 2000 OUTs: a 128 KiB trace.
printf '\xb9\xd0\x07\xe6\x80\xe2\xfc\xf4' >"$tmp/loop.bin" # mov cx, 2000; 1: out 0x80, al; loop 1b; hlt
out=$( (ulimit -f 64; trap '' XFSZ; exec timeout 10 "$bin" run --backend "$backend" -q --trace "$tmp/cut.trace" \
    "$tmp/loop.bin") 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 5 ] && grep -qF "trace file $tmp/cut.trace: write failed: File too large" <<<"$out"; then
    ok trace-file-too-large
else
    fail "trace-file-too-large: expected status 5 and a message, got status $rc and: $out"
fi

# --timeout counts from the start: a load that takes longer than the limit ends the run (status 4).
printf '\xf4' >"$tmp/sparse.bin"
truncate -s 512M "$tmp/sparse.bin"
check timeout-covers-loading 4 "--timeout: 5 ms passed while opening or loading files" -- \
    run --backend "$backend" --mem 1G --timeout 5 "$tmp/sparse.bin"
rm -f "$tmp/sparse.bin"

# An image over 0x7ffff000 bytes, the most one read() returns (it failed with "short read"): a sparse file,
# loaded in full into 4G of RAM when the machine has that much to spare. The one case allowed more than 10 s.
avail_kb=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo)
if [ "${avail_kb:-0}" -gt $((8 << 20)) ]; then
    printf '\xf4' >"$tmp/huge.bin"
    truncate -s 2200M "$tmp/huge.bin"
    out=$(timeout 120 "$bin" run --backend "$backend" --mem 4G --timeout 0 "$tmp/huge.bin" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && grep -qF "halted after 1 exits" <<<"$out"; then
        ok image-over-2g
    else
        fail "image-over-2g: expected the 2200M image to load and halt, got status $rc and: $out"
    fi
    rm -f "$tmp/huge.bin"
else
    echo "skip image-over-2g (needs 8 GiB of available memory)"
fi
truncate -s 4G "$tmp/huge.bin"
check image-over-4g 2 "guest image $tmp/huge.bin: 4294967296 bytes at gpa 0x1000 do not fit in guest RAM" -- \
    run --backend "$backend" --mem 4G "$tmp/huge.bin"
rm -f "$tmp/huge.bin"
check help-files 0 "a FIFO, socket, directory" -- run --help

# Pauses (lab 6): the flags' errors, a --pause-at pause with each clock semantics, and SIGUSR1/SIGUSR2. lab6/pause
# reads its clock for 1 s of guest time and says, at the one re-publish of its page, whether time stood or jumped.
check pause-at-alone 2 "--pause-at needs --pause-for MS" -- run --guest lab6/pause --mode long --pause-at 100
check pause-for-alone 2 "--pause-for needs --pause-at MS" -- run --guest lab6/pause --mode long --pause-for 100
check pause-zero 2 "--pause-at: '0' is not a number of milliseconds" -- run --guest lab6/pause --pause-at 0 \
    --pause-for 1
check pause-bad-clock 2 "--pause-clock: 'rewind'" -- run --guest lab6/pause --pause-at 1 --pause-for 1 \
    --pause-clock rewind
check help-pause 0 "SIGUSR1 pauses the running VM" -- run --help
pause_run() { # pause_run NAME CLOCK WANT: a 300 ms pause 200 ms in
    local out rc
    out=$(timeout 10 "$bin" run --backend "$backend" --guest lab6/pause --mode long --pause-at 200 --pause-for 300 \
        --pause-clock "$2" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && grep -qF "paused 1 time, " <<<"$out" && grep -qF "$3" <<<"$out" &&
        grep -qF " 0 backwards, " <<<"$out" && grep -qF " 1 republished" <<<"$out"; then
        ok "$1"
    else
        fail "$1: expected status 0, one pause, one re-publish and '$3'; got status $rc and:"
        sed 's/^/     | /' <<<"$out" | head -n 8
    fi
}
pause_run pause-at-stop stop "it stood still over the pause"
pause_run pause-at-jump jump "it jumped with the pause"
# A migration to a 3 GHz TSC in that pause (lab6/migrate: 10 million page reads): the page's new scale says 3 GHz
# and no read went backwards; a KVM without TSC scaling says so before the guest runs.
check migrate-alone 2 "--migrate-tsc-khz needs --pause-at MS" -- run --guest lab6/migrate --migrate-tsc-khz 3000000
check migrate-bad-rate 2 "--migrate-tsc-khz: 'fast' is not a TSC rate" -- run --guest lab6/migrate --pause-at 1 \
    --pause-for 1 --migrate-tsc-khz fast
out=$(timeout 30 "$bin" run --backend "$backend" --guest lab6/migrate --mode long --pause-at 300 --pause-for 100 \
    --migrate-tsc-khz 3000000 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -qF "(a 3000000 kHz TSC)" <<<"$out" && grep -qF " 0 backwards, " <<<"$out" &&
    grep -qF " 1 republished" <<<"$out" && grep -qF "resumed at a TSC of 3000000 kHz" <<<"$out"; then
    ok migrate-tsc-rate
elif [ "$rc" -eq 5 ] && grep -qF "cannot scale the TSC (KVM_CAP_TSC_CONTROL is 0" <<<"$out" &&
    ! grep -qF "reads with no exit" <<<"$out"; then
    ok "migrate-tsc-rate: refused before the run ($backend cannot scale the TSC)"
else
    fail "migrate-tsc-rate: expected status 0 with the page rescaled to 3 GHz and no read backwards, or the"
    echo "     refusal of a KVM without TSC scaling; got status $rc and:"
    sed 's/^/     | /' <<<"$out" | head -n 8
fi
"$bin" run --backend "$backend" --guest lab6/pause --mode long >"$tmp/sig.out" 2>&1 & # signalled itself: no timeout
pid=$!
sleep 0.3
kill -USR1 "$pid" 2>/dev/null
sleep 0.4
kill -USR2 "$pid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null && echo "hung: killed after 10 s" >>"$tmp/sig.out"
wait "$pid"
rc=$?
if [ "$rc" -eq 0 ] && grep -qF "paused 1 time, " "$tmp/sig.out" && grep -qF "stood still over the pause" "$tmp/sig.out"; then
    ok pause-signals
else
    fail "pause-signals: SIGUSR1 then SIGUSR2 must pause the VM once (guest time standing still); status $rc:"
    sed 's/^/     | /' "$tmp/sig.out" | head -n 8
fi

# Built-in guests carry their start mode (NAME.mode beside NAME.bin): --mode only for raw images.
check list-shows-modes 0 "lab3/hello64             long" -- list
check list-switch-real 0 "lab2/switch              real" -- list
check own-mode-long 0 "printed from a higher-half address" -- run --backend "$backend" --guest lab3/hello64
check own-mode-protected 0 "" -- run --backend "$backend" --guest lab2/hello32
check mode-other-warns 3 "warning: lab3/hello64 starts in long mode; --mode real runs it in real mode" -- \
    run --backend "$backend" --guest lab3/hello64 --mode real -q --max-exits 1000

# --final-regs: the hidden part of every segment, the descriptor tables, CR0/CR4/EFER decoded.
check final-regs-hidden 0 "cs  0008 base=0000000000000000 limit=ffffffff type=" -- \
    run --backend "$backend" --guest lab2/switch -q --final-regs -
check final-regs-tables 0 "gdt base=" -- run --backend "$backend" --guest lab2/switch -q --final-regs -
check final-regs-real 0 "cr0=60000010 (real mode" -- run --backend "$backend" --guest lab1/halt -q --final-regs -

# Deterministic runs: guest time from the instruction count; two runs leave identical trace files.
check deterministic-needs-soft 2 "deterministic runs need --backend soft" -- \
    run --backend kvm --deterministic --guest lab1/hello
det_ok=1
for g in lab1/hello lab3/pagefault lab5/net; do
    for i in 1 2; do
        timeout 20 "$bin" run --deterministic --guest "$g" -q --trace "$tmp/det$i.trace" --exits "$tmp/det$i.exits" \
            --final-regs "$tmp/det$i.regs" >"$tmp/det$i.out" 2>&1 || { det_ok=0; echo "     | $g run $i: status $?"; }
    done
    for f in trace exits regs out; do
        cmp -s "$tmp/det1.$f" "$tmp/det2.$f" || { det_ok=0; echo "     | $g: the two runs' $f files differ"; }
    done
done
if [ "$det_ok" -eq 1 ]; then ok "deterministic: two runs, identical traces (timestamps included), exits, registers"; else fail "deterministic runs differ (above)"; fi
# The guest's TSC really is the instruction count: a second run reads the same TSC values (lab6/readcost prints
# the cycles it measured), and without --deterministic the file differs from run to run.
"$bin" run --guest lab1/hello -q --backend soft --trace "$tmp/nd1.trace" >/dev/null 2>&1
"$bin" run --guest lab1/hello -q --backend soft --trace "$tmp/nd2.trace" >/dev/null 2>&1
if ! cmp -s "$tmp/nd1.trace" "$tmp/nd2.trace"; then ok "without --deterministic the timestamps are the host's (traces differ)"; else fail "two ordinary runs gave identical traces: the comparison above proves nothing"; fi

# A test binary built with O=DIR finds its guests in DIR/guests, whatever the current directory.
mkdir -p "$tmp/o/tests"
cp "$build/tests/test_lab1" "$tmp/o/tests/" && ln -s "$(cd "$build" && pwd)/guests" "$tmp/o/guests"
out=$(cd / && env -u MINIVMM_GUEST_DIR MINIVMM_BACKEND=soft timeout 60 "$tmp/o/tests/test_lab1" 2>&1)
if grep -q "PASSED" <<<"$out" && ! grep -q "cannot read guest image" <<<"$out"; then
    ok "test binary in O=DIR/tests finds DIR/guests from /"
else
    fail "test binary in O=DIR/tests did not find DIR/guests:"; sed 's/^/     | /' <<<"$out" | tail -n 5
fi

echo "cli ($backend): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
