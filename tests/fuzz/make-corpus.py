#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus, tests/fuzz/corpus/TARGET/, from the built guests and traces they record.

usage: make-corpus.py BUILD   (BUILD holds bin/minivmm and guests/; `make fuzz-corpus` runs it)
Input layouts are those the targets document: tests/fuzz/fuzz_guest.h, fuzz_image.c, fuzz_ucall.c, fuzz_live.c.
"""
import glob
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
MODES = {"real": 0, "protected": 1, "long": 2}
# The mode each guest starts in: tests/diff/guests.txt's --mode, else this table, else by its lab's C guests'
# bits (labs/*/lab.mk: 32 protected, 64 long), else real.
GUEST_MODES = {"lab2/limitfault": "protected", "lab2/switch": "real", "bench/exits64": "long", "bench/mem64": "long"}


def guest_modes():
    modes = dict(GUEST_MODES)
    repo = os.path.dirname(os.path.dirname(ROOT))
    for mk in sorted(glob.glob(os.path.join(repo, "labs", "*", "lab.mk"))):
        with open(mk) as f:
            for m in re.finditer(r"_GUESTS\s*:?=\s*(\S+):(32|64)", f.read()):
                modes.setdefault(m.group(1) + "/*", "protected" if m.group(2) == "32" else "long")
    with open(os.path.join(repo, "tests", "diff", "guests.txt")) as f:
        for line in f:
            words = line.split()
            if words and not words[0].startswith("#") and "--mode" in words:
                modes[words[0]] = words[words.index("--mode") + 1]
    return modes
TRACED = [("lab1/hello", "real"), ("lab1/halt", "real"), ("probes/strio16", "real"), ("lab3/hello64", "long")]


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def guest_seeds(build):
    modes = guest_modes()
    gdir = os.path.join(build, "guests")
    for lab in sorted(os.listdir(gdir)):
        for fname in sorted(os.listdir(os.path.join(gdir, lab))):
            if not fname.endswith(".bin"):
                continue
            name = lab + "/" + fname[:-4]
            with open(os.path.join(gdir, lab, fname), "rb") as f:
                image = f.read()
            mode = modes.get(name, modes.get(lab + "/*", "real"))
            put("guest", "%s_%s.bin" % (lab, fname[:-4]), bytes([MODES[mode], 0, 0, 0]) + image)
    # Fixed findings (findings/README.md) stay as seeds: long blocks of temporary-leaking instructions, whose
    # translation crashed Unicorn 2.1.1 before minivmm/soft_uc_tb.c bounded blocks.
    put("guest", "finding_x87-long-block.bin", bytes([0, 0, 0, 0]) + b"\xd8\xc0" * 240 + b"\xf4")
    put("guest", "finding_x87-fill-protected.bin", bytes([1, 2, 0, 0]) + b"\xd8\xc0")
    put("guest", "finding_mov-cr0-fill-protected.bin", bytes([1, 2, 0, 0]) + b"\x0f\x20\xc0")


def trace_seeds(build):
    with tempfile.TemporaryDirectory() as tmp:
        for guest, mode in TRACED:
            path = os.path.join(tmp, "t")
            subprocess.run([os.path.join(build, "bin", "minivmm"), "run", "--backend", "soft", "--mode", mode,
                            "-q", "--trace", path, "--guest", guest], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            with open(path, "rb") as f:
                put("trace", guest.replace("/", "_") + ".trace", f.read())


def live_seeds():
    # A feed header (capacity 64, so the target pads the file to size), then a few events.
    def header(cap, head, finished, backend=b"soft"):
        h = b"MVMLIVE1" + struct.pack("<IIII", 1, 64, cap, 0) + struct.pack("<Q", 1000)
        h += backend.ljust(16, b"\0") + struct.pack("<QI", head, finished)
        return h.ljust(128, b"\0")

    ev = struct.pack("<QQQQQQIIIBBBB", 10, 20, 30, 0x1000, 0x3f8, 0x48, 2, 0, 1, 0, 1, 3, 1)
    put("live", "small.bin", header(64, 3, 1) + ev * 3)
    put("live", "lapped.bin", header(64, 200, 0) + ev * 64)
    put("live", "heads.bin", header(64, 5, 0) + ev * 2 + struct.pack("<QQQ", 70, 1 << 63, 2))


def image_seeds(build):
    with open(os.path.join(build, "guests", "lab1", "hello.bin"), "rb") as f:
        hello = f.read()

    def hdr(flags, slots, load, entry):
        s = b"".join(struct.pack("<HH", page, pages - 1) for page, pages in slots)
        return bytes([flags]) + s.ljust(12, b"\0") + struct.pack("<QQ", load, entry)

    put("image", "fits.bin", hdr(1 | 4, [(0, 64)], 0x1000, 0x1000) + hello)
    put("image", "edge.bin", hdr(1 | 4, [(0, 2)], 0x2000 - len(hello), 0x1000) + hello)
    put("image", "past-end.bin", hdr(1, [(0, 2)], 0x2000 - len(hello) + 1, 0) + hello)
    put("image", "two-slots.bin", hdr(2 | 4, [(0, 64), (0x70, 16)], 0x6f000, 0x70000) + hello)
    put("image", "top.bin", hdr(3 | 4, [(0, 64), (0xffff, 1), (0x100, 1)], 0xfffffffffffff000, 0xffffffff80001000)
        + hello)
    put("image", "empty.bin", hdr(1, [(0, 1)], 0x1000, 0x1000))


def ucall(cmd, line=0, actual=0, expected=0, msg=b""):
    return struct.pack("<IIQQ", cmd, line, actual, expected) + msg.ljust(64, b"\0")[:64]


def ucall_seeds():
    put("ucall", "decode-done.bin", b"\0" + ucall(1))
    put("ucall", "decode-assert.bin", b"\0" + ucall(2, 42, 1, 2, b"x == y"))
    put("ucall", "decode-sync.bin", b"\0" + ucall(3, 0, 7))
    put("ucall", "decode-print.bin", b"\0" + ucall(4, msg=b"hello from the guest" + b"!" * 60))
    put("ucall", "decode-bad.bin", b"\0" + ucall(99))

    def port(data, size_sel, cr0, efer, cr3, ram):
        return b"\1" + struct.pack("<IBIHI", data, size_sel, cr0, efer, cr3) + ram

    ram = bytearray(0x2000)
    ram[0x1000:0x1000 + 88] = ucall(4, msg=b"print")
    put("ucall", "port-phys.bin", port(0x1000, 3, 0x11, 0, 0, bytes(ram)))
    put("ucall", "port-byte.bin", port(0x1000, 0, 0x11, 0, 0, bytes(ram)))
    put("ucall", "port-outside.bin", port(0xfffff000, 3, 0x11, 0, 0, b""))
    # Long mode: PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000, one 2 MiB page at 0; the struct at 0x4ff0 crosses
    # into the next page. The same PDPT in slot 510 of PML4 511 gives the higher-half alias.
    ram = bytearray(0x5100)
    struct.pack_into("<Q", ram, 0x1000, 0x2003)
    struct.pack_into("<Q", ram, 0x1000 + 511 * 8, 0x2003)
    struct.pack_into("<Q", ram, 0x2000, 0x3003)
    struct.pack_into("<Q", ram, 0x2000 + 510 * 8, 0x3003)
    struct.pack_into("<Q", ram, 0x3000, 0x83)
    ram[0x4ff0:0x4ff0 + 88] = ucall(1)
    put("ucall", "port-long.bin", port(0x4ff0, 3, 0x80000011, 0x500, 0x1000, bytes(ram)))
    put("ucall", "port-higher-half.bin", port(0x80004ff0, 3, 0x80000011, 0x500, 0x1000, bytes(ram)))
    put("ucall", "port-paging-32.bin", port(0x4ff0, 3, 0x80000011, 0, 0x1000, bytes(ram)))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    for target in ("guest", "trace", "live", "image", "ucall"):
        shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)
    guest_seeds(build)
    trace_seeds(build)
    live_seeds()
    image_seeds(build)
    ucall_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("fuzz-corpus: %-6s %3d seeds, %6d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main()
