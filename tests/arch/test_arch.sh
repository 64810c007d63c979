#!/usr/bin/env bash
# The architecture's promises, checked: the core library names no lab, no VMM source file outgrows ~800 lines,
# and every C file is as clang-format (the checked-in .clang-format) writes it.
#   tests/arch/test_arch.sh [BUILD_DIR]
# Ends with: "arch: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' <<<"$2"; }

# 1. The core calls no lab by name: labs plug in through struct mvm_lab_ops (lab.h).
lib=$build/lib/libminivmm.a
if [ ! -f "$lib" ]; then
    skip=$((skip + 1)); echo "skip core-names-no-lab: $lib is not built"
else
    labsyms=$(nm -u "$lib" 2>/dev/null | awk '$1 == "U" && ($2 ~ /^(ref_)?lab[0-9]+_/) { print $2 }' | sort -u)
    if [ -z "$labsyms" ]; then ok core-names-no-lab; else bad core-names-no-lab "the core library calls lab code by name:
$labsyms"; fi
fi

# 2. One concern a file: no C file of the VMM over 800 lines.
long=$(wc -l minivmm/*.c | awk '$2 != "total" && $1 > 800 { print $2 ": " $1 " lines" }')
if [ -z "$long" ]; then ok vmm-files-under-800-lines; else bad vmm-files-under-800-lines "$long"; fi

# 3. The format: clang-format (Debian 12's, 14) with the repo's .clang-format, on every tracked C/C++ file.
if ! command -v clang-format >/dev/null 2>&1; then
    skip=$((skip + 1)); echo "skip clang-format: clang-format is not installed (package clang-format)"
else
    # Headers the assembler also reads (#included by a .S file) hold .macro bodies clang-format would mangle.
    asm_headers=$(git ls-files '*.S' | while read -r s; do
        sed -n 's/^#include "\(.*\)"/\1/p' "$s" | while read -r h; do
            for d in "$(dirname "$s")" guest-kernels minivmm; do [ -f "$d/$h" ] && echo "$d/$h" && break; done
        done
    done | sort -u)
    unformatted=$(git ls-files '*.c' '*.h' '*.cc' 2>/dev/null | grep -vxF "$asm_headers" | while read -r f; do
        [ -f "$f" ] && ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1 && echo "$f"
    done)
    if [ -z "$unformatted" ]; then ok clang-format; else bad clang-format "these differ from clang-format (run: clang-format -i FILE):
$unformatted"; fi
fi

echo "arch: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
