#!/usr/bin/env bash
# Linux's own KVM selftests (tools/testing/selftests/kvm of Debian's linux-source-6.1, built unchanged, out of tree)
# on the soft backend (preloaded: minivmm exec) and on real KVM (6.1, inside QEMU: tests/kvm-in-qemu), side by side.
#
#   scripts/selftests.sh [--all] [--kvm-rerun] [BUILD]   fetch and build if needed, run, print the table (make selftests)
#   scripts/selftests.sh --quick [BUILD]                   make test's part: soft only, against KVM's record
#
# The set: by default the 24 quick x86 tests of the project's issue; --all: every test that built. A test that
# passes on real KVM and not on soft fails this suite, unless KNOWN below lists it with the reason. Exit status 0
# when nothing failed. Real KVM's results do not depend on the kit: they are recorded in tests/selftests/kvm-6.1.txt
# and kept in BUILD/selftests/kvm-results.txt; a run measures in QEMU only tests that neither has, and --kvm-rerun
# measures them all again.
#
# --quick (make test) fetches and builds only the 24 tests, once (about a minute), runs them on soft and prints the
# table with real KVM's recorded results. Every test in tests/selftests/soft-pass.txt (those that passed on soft
# when the kit was committed) must pass: anything else there is a regression. The others are counted as skips,
# each with its reason. Without apt (or without the archive) it skips, saying so.
# Both end with one line: "selftests: N passed, N failed, N skipped". BUILD/selftests is build/selftests when BUILD
# has none (another build dir, such as the sanitizer build of make test, shares the fetched and built tests).
set -u
cd "$(dirname "$0")/.." || exit 2

QUICK_SET="x86_64/set_sregs_test x86_64/cpuid_test x86_64/userspace_io_test x86_64/userspace_msr_exit_test
x86_64/xapic_state_test x86_64/tsc_msrs_test kvm_create_max_vcpus x86_64/debug_regs x86_64/sync_regs_test
x86_64/kvm_clock_test x86_64/platform_info_test x86_64/xss_msr_test x86_64/triple_fault_event_test
x86_64/fix_hypercall_test x86_64/kvm_pv_test x86_64/set_boot_cpu_id x86_64/max_vcpuid_cap_test x86_64/state_test
x86_64/emulator_error_test x86_64/hyperv_cpuid x86_64/get_msr_index_features x86_64/smm_test
x86_64/svm_vmcall_test x86_64/cr4_cpuid_sync_test"

# Tests that pass on real KVM and may fail or skip on soft, with the reason. Keep it short: a gap the soft backend
# should close is a failure, not an entry here.
KNOWN="
x86_64/svm_vmcall_test	nested virtualization: the soft backend offers no SVM to its guests
x86_64/triple_fault_event_test	nested virtualization: 6.1's test needs SVM or VMX (KVM without nested skips it too)
x86_64/svm_int_ctl_test	nested virtualization: the soft backend offers no SVM to its guests
x86_64/svm_nested_shutdown_test	nested virtualization: the soft backend offers no SVM to its guests
x86_64/svm_nested_soft_inject_test	nested virtualization: the soft backend offers no SVM to its guests
x86_64/hyperv_svm_test	nested virtualization: the soft backend offers no SVM to its guests
x86_64/nested_exceptions_test	nested virtualization: the soft backend offers no SVM to its guests
x86_64/sev_migrate_tests	SEV: encrypted guests need the AMD secure processor
"

SOFT_TIMEOUT=${MINIVMM_SELFTEST_TIMEOUT:-60} # seconds per test on soft
KVM_TIMEOUT=60                               # per test inside QEMU (TCG under KVM is slow)
KSFT_SKIP=4

quick=0 all=0 rerun=0 build=build
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    --all) all=1 ;;
    --kvm-rerun) rerun=1 ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "selftests: unknown option '$a' (--all, --quick, --kvm-rerun)" >&2
        exit 2
        ;;
    *) build=$a ;;
    esac
done

# The kernel's tests do not depend on the kit's build: another build dir (O=build/san) shares build/'s.
dir=$build/selftests
[ ! -d "$dir" ] && [ -d build/selftests ] && dir=build/selftests
src=$dir/src/linux-source-6.1
out=$dir/out
kdir=$src/tools/testing/selftests/kvm
minivmm=$build/bin/minivmm
minivmm_abs=$(realpath "$minivmm" 2>/dev/null)
sres=$dir/soft-results.txt
say() { echo "selftests: $*" >&2; }

# fetch: Debian's linux-source-6.1 (the version of the kernel the QEMU runner boots, when the cache names one).
fetch() {
    [ -f "$src/READY" ] && return 0
    local ver="" pkg
    if [ -f build/kvm-in-qemu/kernel/PACKAGE ]; then
        ver=$(awk '{ print $2 }' build/kvm-in-qemu/kernel/PACKAGE)
    fi
    mkdir -p "$dir/src"
    say "fetching linux-source-6.1${ver:+ $ver} with apt-get download (about 140 MB)"
    if ! (cd "$dir/src" && apt-get download -q "linux-source-6.1${ver:+=$ver}" >/dev/null 2>&1 ||
        apt-get download -q linux-source-6.1 >/dev/null); then
        say "apt-get download linux-source-6.1 failed (stale package lists? run apt-get update)"
        return 1
    fi
    pkg=$(ls -t "$dir"/src/linux-source-6.1_*.deb | head -n1)
    rm -rf "$src"
    # Only what `make headers` and the KVM selftests read: a fifteenth of the tree, unpacked in seconds.
    dpkg-deb --fsys-tarfile "$pkg" | tar -xO ./usr/src/linux-source-6.1.tar.xz | xz -dc -T2 |
        tar -x -C "$dir/src" --wildcards 'linux-source-6.1/Makefile' 'linux-source-6.1/Kconfig' \
            'linux-source-6.1/tools/*' 'linux-source-6.1/scripts/*' 'linux-source-6.1/include/uapi/*' \
            'linux-source-6.1/include/asm-generic/*' 'linux-source-6.1/arch/x86/*' ||
        { say "unpacking $pkg failed"; return 1; }
    basename "$pkg" >"$src/READY"
    rm -f "$pkg"
}

# build: the kernel's uapi headers (make headers), then the KVM selftests, unchanged, into $out. A test that does
# not build is left out of the table's runs and named.
build_tests() { # build_tests [TEST...]: those tests only (the quick run), else all
    local targets=() t
    for t in "$@"; do targets+=("$(realpath -m "$out/$t")"); done
    if [ ! -d "$src/usr/include/linux" ]; then
        say "make headers"
        make -s -C "$src" headers >"$dir/headers.log" 2>&1 || { say "make headers failed: $dir/headers.log"; return 1; }
    fi
    say "building tools/testing/selftests/kvm into $out (log: $dir/build.log)"
    mkdir -p "$out"
    make -k -j"$(nproc)" -C "$kdir" OUTPUT="$(realpath "$out")" "${targets[@]}" >"$dir/build.log" 2>&1
    local failed
    failed=$(sed -n "s|^make: \*\*\* .*$(realpath "$out")/\([^]]*\)\] Error.*|\1|p" "$dir/build.log" | sort -u | tr '\n' ' ')
    [ -n "$failed" ] && say "did not build (Debian's 6.1.y sources; see $dir/build.log): $failed"
    return 0
}

# the tests to run: the quick set, or every built x86 and generic test
test_list() {
    local t
    if [ "$all" = 1 ]; then
        (cd "$kdir" && make -s --no-print-directory -f Makefile -f - print-progs <<<'print-progs: ; @echo $(TEST_GEN_PROGS_x86_64)') |
            tr ' ' '\n' | sed '/^$/d; s|^x86_64/|x86_64/|' | while read -r t; do echo "$t"; done
    else
        tr ' ' '\n' <<<"$QUICK_SET" | sed '/^$/d'
    fi
}

# why.awk, on a test's output: why it ended. The assertion's message (the lines after its stack trace), else the
# skip line, else the last line. POSIX awk: it also runs under busybox inside QEMU.
WHY_AWK='
/^==== Test Assertion Failure ====/ { ina = 1; frames = 0; n = 0; next }
ina && (/^ *[0-9]+\t0x/ || /\(inlined by\)/) { frames = 1; next }
ina && frames && NF { sub(/^ +/, ""); msg = msg (n ? " " : "") $0; if (++n == 3) ina = 0; next }
/# SKIP/ { skip = $0 }
NF { last = $0 }
END { w = msg != "" ? msg : skip != "" ? skip : last; gsub(/\t/, " ", w); sub(/^ +/, "", w); print substr(w, 1, 150) }'
why() { awk "$WHY_AWK" "$1" | tr -d '\r'; }

verdict_of() { # verdict_of RC -> pass, skip, timeout or fail
    case $1 in
    0) echo pass ;;
    "$KSFT_SKIP") echo skip ;;
    124 | 137) echo timeout ;;
    *) echo fail ;;
    esac
}

# soft: each test under minivmm exec; lines "TEST RC WHY" into $sres. A deadline (seconds since the script
# started, SECONDS) leaves the tests after it out, with a line "TEST - ..." each.
run_soft() {
    local t rc w log=$dir/soft-logs deadline=${1:-} lsan_supp
    lsan_supp=$(realpath tests/selftests/lsan-selftests.supp) # the tests' own leaks, under the sanitized build
    mkdir -p "$log"
    log=$(realpath "$log")
    : >"$sres"
    while read -r t; do
        [ -x "$out/$t" ] || { echo "$t - not built" >>"$sres"; continue; }
        if [ -n "$deadline" ] && [ "$SECONDS" -ge "$deadline" ]; then
            echo "$t - not run: the quick run has used its time" >>"$sres"
            continue
        fi
        rm -f "$log/$(basename "$t").gaps"
        # The status alone: a test killed by a signal is reported below, not by bash.
        rc=$({ (cd "$out/$(dirname "$t")" && MINIVMM_PRELOAD_LOG="$log/$(basename "$t").gaps" \
            LSAN_OPTIONS="suppressions=$lsan_supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
            timeout -s KILL "$SOFT_TIMEOUT" "$minivmm_abs" exec -- "./$(basename "$t")") \
            >"$log/$(basename "$t").log" 2>&1 </dev/null; echo $?; } 2>/dev/null)
        w=$(why "$log/$(basename "$t").log")
        if [ $rc -eq 137 ]; then
            w="no result in ${SOFT_TIMEOUT}s (killed)${w:+; last line: $w}"
        elif [ $rc -gt 128 ] && [ $rc -lt 160 ]; then
            w="crashed: SIG$(kill -l $((rc - 128)))${w:+; last line: $w}"
        fi
        echo "$t $rc $w" >>"$sres"
    done < <(test_list)
}

# kvm: one QEMU boot runs the tests that have no result yet; their lines join $dir/kvm-results.txt
run_kvm() {
    local res=$dir/kvm-results.txt todo="" t p=$dir/qemu-payload
    [ "$rerun" = 1 ] && rm -f "$res"
    touch "$res"
    while read -r t; do
        [ -x "$out/$t" ] && ! grep -q "^$t " "$res" && { [ "$rerun" = 1 ] || ! grep -q "^$t " "$RECORD"; } &&
            todo="$todo $t"
    done < <(test_list)
    [ -z "$todo" ] && return 0
    say "real KVM inside QEMU:$(wc -w <<<"$todo") tests (up to ${KVM_TIMEOUT}s each)"
    rm -rf "$p" && mkdir -p "$p"
    for t in $todo; do
        mkdir -p "$p/$(dirname "$t")"
        strip --strip-debug -o "$p/$t" "$out/$t"
    done
    cat >"$p/run.sh" <<EOF
#!/bin/sh
for t in $todo; do
    (cd "\$(dirname \$t)" && timeout -s KILL $KVM_TIMEOUT "./\$(basename \$t)" >/tmp/log 2>&1 </dev/null)
    rc=\$?
    echo "RESULT \$t \$rc \$(awk -f /payload/why.awk /tmp/log)"
done
EOF
    chmod +x "$p/run.sh"
    printf '%s\n' "$WHY_AWK" >"$p/why.awk"
    local n
    n=$(wc -w <<<"$todo")
    ./tests/kvm-in-qemu/run.sh --timeout $((n * KVM_TIMEOUT + 120)) "$p" -- ./run.sh 2>&1 | sed -u 's/\r$//' |
        tee "$dir/kvm-run.log" | sed -un 's/^RESULT \([^ ]*\) \([0-9]*\).*/  kvm: \1 status \2/p' >&2
    sed -n 's/^RESULT //p' "$dir/kvm-run.log" >>"$res"
    for t in $todo; do
        grep -q "^$t " "$res" || say "no result from QEMU for $t (see $dir/kvm-run.log)"
    done
}

# kvm_rc TEST: real KVM's status for TEST, measured here (BUILD/selftests/kvm-results.txt), else as recorded in
# the kit (tests/selftests/kvm-6.1.txt); empty when neither has it
RECORD=tests/selftests/kvm-6.1.txt
kvm_rc() {
    local r
    r=$([ -f "$dir/kvm-results.txt" ] && awk -v t="$1" '$1 == t { print $2 }' "$dir/kvm-results.txt" | tail -n1)
    [ -z "$r" ] && r=$(awk -v t="$1" '$1 == t { print $2 }' "$RECORD" | tail -n1)
    echo "$r"
}

# table: test, kvm, soft, and the verdict of this suite; the counts; the summary line
table() {
    local t krc srest srt kv sv why reason pass=0 fail=0 skip=0 kres=$dir/kvm-results.txt
    declare -A kc=() sc=()
    printf '%-42s %-8s %-8s %s\n' test kvm soft "soft's reason / note"
    : >"$dir/soft-pass.txt.new"
    while read -r t srt srest; do
        if [ "$srt" = - ]; then
            printf '%-42s %-8s %-8s %s\n' "$t" - - "not built"
            continue
        fi
        sv=$(verdict_of "$srt")
        krc=$(kvm_rc "$t")
        kv=$([ -n "$krc" ] && verdict_of "$krc" || echo "?")
        kc[$kv]=$((${kc[$kv]:-0} + 1))
        sc[$sv]=$((${sc[$sv]:-0} + 1))
        [ "$sv" = pass ] && echo "$t" >>"$dir/soft-pass.txt.new"
        why=$([ "$sv" = pass ] && echo "" || echo "$srest")
        reason=$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' <<<"$KNOWN")
        if [ "$sv" = pass ]; then
            pass=$((pass + 1))
        elif [ "$kv" = pass ] && [ -n "$reason" ]; then
            skip=$((skip + 1))
            why="known: $reason"
        elif [ "$kv" = pass ] || { [ "$kv" = "?" ] && [ "$sv" != skip ]; }; then
            fail=$((fail + 1))
            sv=$(tr '[:lower:]' '[:upper:]' <<<"$sv")
        else
            skip=$((skip + 1))
        fi
        printf '%-42s %-8s %-8s %s\n' "$t" "$kv" "$sv" "$why"
    done <"$sres"
    mv "$dir/soft-pass.txt.new" "$dir/soft-pass.txt"
    echo
    echo "kvm:  ${kc[pass]:-0} pass, ${kc[skip]:-0} skip, ${kc[fail]:-0} fail, ${kc[timeout]:-0} timeout${kc[?]:+, ${kc[?]} not measured}"
    echo "soft: ${sc[pass]:-0} pass, ${sc[skip]:-0} skip, ${sc[fail]:-0} fail, ${sc[timeout]:-0} timeout"
    echo "(upper case: passes on real KVM, not on soft, and not a known gap; soft's refused ioctls and capabilities:"
    echo " $dir/soft-logs/TEST.gaps)"
    echo "selftests: $pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
}

if [ "$quick" = 1 ]; then
    # make test's part: the issue's 24 tests, fetched and built once (about a minute), run on soft against real
    # KVM's recorded results. Each test in tests/selftests/soft-pass.txt must pass; the others are reported.
    [ -x "$minivmm" ] && [ -f "$build/lib/libminivmm-kvm.so" ] || { say "build the kit first (make)"; exit 2; }
    missing=$(tr ' ' '\n' <<<"$QUICK_SET" | sed '/^$/d' | while read -r t; do [ -x "$out/$t" ] || echo "$t"; done)
    if [ -n "$missing" ]; then
        if ! command -v apt-get >/dev/null || ! fetch; then
            echo "skip: Linux's KVM selftests are not built here and linux-source-6.1 could not be fetched with apt"
            echo "selftests: 0 passed, 0 failed, 1 skipped"
            exit 0
        fi
        # shellcheck disable=SC2086 # one word a test
        build_tests $missing || exit 2
    fi
    expect=tests/selftests/soft-pass.txt
    SOFT_TIMEOUT=20 sres=$dir/soft-results-quick.txt
    run_soft 150 # each test within 20 s, none started after 150 s: a few minutes at the very worst
    pass=0 fail=0 skip=0
    printf '%-42s %-8s %-8s %s\n' test kvm soft "soft's reason / note"
    while read -r t srt srest; do
        kv=$(k=$(kvm_rc "$t") && [ -n "$k" ] && verdict_of "$k" || echo "?")
        if [ "$srt" = - ]; then
            sv=-
        else
            sv=$(verdict_of "$srt")
        fi
        note=$([ "$sv" = pass ] || echo "$srest")
        if grep -qx "$t" "$expect"; then
            if [ "$sv" = pass ]; then pass=$((pass + 1)); else
                fail=$((fail + 1)) sv=$(tr '[:lower:]' '[:upper:]' <<<"$sv")
                note="passed on soft when this kit was committed: $note"
            fi
        elif [ "$sv" = pass ]; then
            pass=$((pass + 1)) note="(not yet in $expect: add it)"
        else
            skip=$((skip + 1))
            reason=$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' <<<"$KNOWN")
            if [ -n "$reason" ]; then note="known: $reason"
            elif [ "$kv" = pass ]; then note="not yet on soft: $note"; fi
        fi
        printf '%-42s %-8s %-8s %s\n' "$t" "$kv" "$sv" "$note"
    done <"$sres"
    echo "(kvm: real KVM 6.1 inside QEMU, $RECORD; upper case: a regression; logs: $dir/soft-logs)"
    echo "selftests: $pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
fi

[ -x "$minivmm" ] && [ -f "$build/lib/libminivmm-kvm.so" ] || { say "build the kit first (make)"; exit 2; }
fetch || exit 2
build_tests || exit 2
run_kvm
run_soft
table
