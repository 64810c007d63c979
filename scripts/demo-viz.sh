#!/usr/bin/env bash
# The demos' visualizer step: a guest live under mvm-top in a terminal, one printed summary frame otherwise.
#   scripts/demo-viz.sh BUILD_DIR GUEST [minivmm run arguments...]
set -u
build=${1:?usage: demo-viz.sh BUILD_DIR GUEST [args]}
guest=${2:?usage: demo-viz.sh BUILD_DIR GUEST [args]}
shift 2
if [ -t 0 ] && [ -t 1 ]; then
    echo "   $guest runs live under mvm-top: its exits and its output on one screen."
    echo "   Keys: r replay slowly, space pause, s step, f filter, h help, q quit."
    read -r -p "   Press Enter to start. " _ || true
    "$build/bin/mvm-top" run -- --guest "$guest" "$@" || true
else
    "$build/bin/mvm-top" run --summary -- --guest "$guest" "$@" 2>/dev/null | sed 's/^/   /' || true
fi
