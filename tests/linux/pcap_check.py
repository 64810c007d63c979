#!/usr/bin/env python3
"""Checks a pcap (given as hex) holds ICMP echo requests SRC -> DST: prints what it found; status 1 if none."""
import struct
import sys


def main():
    if len(sys.argv) != 4:
        print("usage: pcap_check.py HEX SRC DST")
        return 2
    data = bytes.fromhex(sys.argv[1]) if sys.argv[1] else b""
    src, dst = (bytes(int(x) for x in a.split(".")) for a in sys.argv[2:4])
    if len(data) < 24:
        print(f"the pcap is {len(data)} bytes: no pcap header (24 bytes)")
        return 1
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    if magic != 0xA1B2C3D4 or linktype != 1:
        print(f"pcap header: magic 0x{magic:08x} linktype {linktype}, expected 0xa1b2c3d4 and 1 (Ethernet)")
        return 1
    off, frames, echoes = 24, 0, 0
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8 : off + 12])[0]
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        frames += 1
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0xF) * 4
        if ip[9] == 1 and ip[12:16] == src and ip[16:20] == dst and ip[ihl] == 8:
            echoes += 1
    if off != len(data):
        print(f"the pcap's records do not end at its end ({off} != {len(data)} bytes)")
        return 1
    what = f"{frames} frames in the pcap, {echoes} ICMP echo requests {sys.argv[2]} -> {sys.argv[3]}"
    print(what)
    return 0 if echoes else 1


if __name__ == "__main__":
    sys.exit(main())
