#!/usr/bin/env bash
# make gdb LAB=n TEST=name: runs lab n's guest NAME (build/guests/labN/NAME.bin) under minivmm's gdb stub, in the
# mode it starts in (as tests/diff/guests.txt gives it), and starts gdb on it with the guest's symbols.
#   scripts/gdb.sh BUILD_DIR LAB NAME [BACKEND]
set -u
build=${1:?usage: gdb.sh BUILD_DIR LAB NAME [BACKEND]}
lab=${2:-} name=${3:-} backend=${4:-auto}
if [ -z "$lab" ] || [ -z "$name" ]; then
    echo "usage: make gdb LAB=n TEST=name [BACKEND=soft|kvm], e.g. make gdb LAB=2 TEST=switch" >&2
    echo "the guests: $(cd "$build/guests" 2>/dev/null && ls lab*/*.bin | sed 's/\.bin$//' | tr '\n' ' ')" >&2
    exit 2
fi
guest=lab$lab/${name#lab"$lab"/}
if [ ! -f "$build/guests/$guest.bin" ]; then
    echo "make gdb: no guest $guest; lab $lab has: $(cd "$build/guests/lab$lab" 2>/dev/null && ls *.bin | sed 's/\.bin$//' | tr '\n' ' ')" >&2
    exit 2
fi
# The guest's own arguments (its start mode, its input files), as the differential test runs it.
read -r -a args <<<"$(awk -v g="$guest" '$1 == g { $1 = ""; print }' tests/diff/guests.txt)"
elf=$build/obj/guests/$guest.elf
log=$(mktemp)
"$build/bin/minivmm" run --backend "$backend" --gdb 0 --guest "$guest" "${args[@]}" 2> >(tee "$log" >&2) &
vmm=$!
trap 'kill "$vmm" 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^minivmm: waiting for gdb on 127.0.0.1:\([0-9]*\) .*/\1/p' "$log")
    [ -n "$port" ] || ! kill -0 "$vmm" 2>/dev/null && break
    sleep 0.1
done
[ -n "$port" ] || { echo "make gdb: minivmm did not start its gdb stub (see above)" >&2; exit 1; }
cmds=()
[ -f "$elf" ] && cmds+=(-ex "file $elf")
cmds+=(-ex "target remote 127.0.0.1:$port")
echo "gdb on $guest: 'monitor help' lists minivmm's commands; quitting gdb lets the guest run to its end" >&2
gdb -q "${cmds[@]}"
wait "$vmm"
