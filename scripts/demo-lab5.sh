#!/usr/bin/env bash
# `make demo-lab5`: lab 5's guests: virtio-net over virtio-mmio, one exit per batch, notification suppression, broken rings, a pcap.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_init "$@"

run() { # run GUEST [ARGS]: its output, how it ended, its exits by kind
    local g=$1
    shift
    "$bin" run --mode long --guest "$g" --exits "$tmp/exits.txt" "$@" 2>"$tmp/summary.txt" | sed 's/^/   | /'
    sed 's/^minivmm: /   /; s/^virtio-net: /   device: /' "$tmp/summary.txt"
    echo "   kicks (QueueNotify writes): $(grep -c 'MMIO write gpa=0x000000003fd00050' "$tmp/exits.txt" || true)," \
        "other register accesses: $(grep '^MMIO' "$tmp/exits.txt" | grep -vc 'gpa=0x000000003fd00050' || true)"
}

section "lab5/net_b1: 32 frames, one kick each, no EVENT_IDX"
run lab5/net_b1
echo "   One exit per frame, and one more per receive refill: the device never said 'don't kick'."

section "lab5/net: 32 frames in batches of 8, EVENT_IDX, written to a pcap"
run lab5/net --net-pcap "$tmp/net.pcap"
echo "   4 transmit kicks for 32 frames. With EVENT_IDX the receive refills need no kick: the"
echo "   device's avail_event still points where it last asked (it had buffers all along)."
if command -v tcpdump >/dev/null; then
    echo "   the pcap (tcpdump -r, first 3 frames):"
    tcpdump -r "$tmp/net.pcap" -e -n -c 3 2>/dev/null | grep -v '^[[:space:]]*0x' | sed 's/^/     /'
else
    echo "   the pcap: $(stat -c %s "$tmp/net.pcap") bytes (install tcpdump to read it: tcpdump -r FILE -e -n)"
fi

section "lab5/net_indirect: one batch of 32, each frame an indirect table, interrupts off"
run lab5/net_indirect

section "lab5/probe: the transport, register by register"
run lab5/probe

section "lab5/hostile: broken rings; the device refuses each one, logs it, and recovers after a reset"
run lab5/hostile
cat <<'TXT'

   The guest writes rings; the VMM reads them. Every address goes through
   vm_gpa_to_hva, chains are bounded by the queue size, indices are checked:
   a broken ring costs the guest a reset, never the host anything.
   labs/lab5-virtio/README.md is the handout; make grade LAB=5 grades it;
   make bench runs lab5/* (exits per packet by batch size, first-packet latency).
TXT
