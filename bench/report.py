#!/usr/bin/env python3
"""Turns Google Benchmark's JSON (bench/run.sh) into OUT/table.txt and the .dat files bench/plot.gnuplot draws."""
import json
import sys
from collections import OrderedDict


def split_name(name):
    """'exit/out/kvm' -> ('exit/out', 'kvm'); '/manual_time' and the like are Google Benchmark's suffixes."""
    parts = [p for p in name.split("/") if p not in ("manual_time", "real_time") and not p.startswith("iterations:")]
    return "/".join(parts[:-1]), parts[-1]


def fmt_ns(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2f ms" % (v / 1e6)
    if v >= 1e3:
        return "%.2f us" % (v / 1e3)
    return "%.0f ns" % v


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py RESULTS.json OUT_DIR")
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    out = sys.argv[2]
    ctx = doc.get("context", {})
    rows = OrderedDict()  # base name -> {backend: benchmark}
    backends = []
    problems = []
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        base, be = split_name(b["name"])
        if be not in backends:
            backends.append(be)
        rows.setdefault(base, {})[be] = b
        if b.get("error_occurred"):
            problems.append("%s: %s" % (b["name"], b.get("error_message", "")))

    def mean_ns(b):
        if not b or b.get("error_occurred"):
            return None
        t = b["real_time"]
        return t * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]

    def field(b, key):
        return None if not b or b.get("error_occurred") else b.get(key)

    lines = []
    lines.append("minivmm benchmarks  %s  host %s" % (ctx.get("date", "?"), ctx.get("host_name", "?")))
    lines.append("kvm timings: %s;  TSC %s GHz;  backends skipped: %s"
                 % (ctx.get("kvm_timing", "?"), ctx.get("tsc_ghz", "?"), ctx.get("backends_skipped", "?")))
    lines.append("mean = host clock over a whole run / iterations; min, median, p99 = the guest's RDTSC per iteration")
    lines.append("(lifecycle: host clock per iteration; lab3: guest RDTSC per batch of 256 loads, per load)")
    head = "%-26s" % "benchmark"
    for be in backends:
        head += " | %-8s %10s %10s %10s %10s %5s" % (be, "mean", "min", "median", "p99", "ex/it")
    for section in ("exit/", "lifecycle/", "lab"):
        lines.append("")
        lines.append(head)
        lines.append("-" * len(head))
        for base, per in rows.items():
            if not base.startswith(section):
                continue
            line = "%-26s" % base
            for be in backends:
                b = per.get(be)
                if b is None:
                    line += " | %-8s %10s %10s %10s %10s %5s" % ("", "", "", "", "", "")
                elif b.get("error_occurred"):
                    line += " | %-8s %-49s" % ("", "skipped" if b.get("error_message", "").startswith("skipped:")
                                               else "ERROR")
                else:
                    epi = field(b, "exits_per_iter")
                    line += " | %-8s %10s %10s %10s %10s %5s" % (
                        "", fmt_ns(mean_ns(b)), fmt_ns(field(b, "min_ns")), fmt_ns(field(b, "median_ns")),
                        fmt_ns(field(b, "p99_ns")), "-" if epi is None else "%g" % epi)
            lines.append(line)
    lines.append("")
    lines.append("derived (means):")
    for be in backends:
        def m(base):
            return mean_ns(rows.get(base, {}).get(be))
        out_m, bare_m, none_m = m("exit/out"), m("exit/out_bare"), m("exit/none")
        if out_m is not None and bare_m is not None:
            lines.append("  %s: VMM exit path (exit/out - exit/out_bare): %s per exit" % (be, fmt_ns(out_m - bare_m)))
        if none_m is not None:
            for base in rows:
                if base.startswith("exit/") and base not in ("exit/none", "exit/out_bare") and m(base) is not None:
                    lines.append("  %s: %-16s above the no-exit floor: %s" % (be, base, fmt_ns(m(base) - none_m)))
    if problems:
        lines.append("")
        lines.append("not measured:")
        lines.extend("  " + p for p in problems)
    with open(out + "/table.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    # Data for gnuplot: one row per benchmark, columns per backend (NaN where absent).
    def dat(path, bases, label, key):
        with open(path, "w") as f:
            f.write("# %s %s\n" % (label, " ".join(backends)))
            for base in bases:
                vals = []
                for be in backends:
                    b = rows[base].get(be)
                    v = mean_ns(b) if key == "mean" else field(b, key)
                    vals.append("NaN" if v is None else "%g" % v)
                f.write("%s %s\n" % (base.split("/")[-1].replace("MiB", ""), " ".join(vals)))

    exits = [b for b in rows if b.startswith("exit/")]
    dat(out + "/exits.dat", exits, "kind median_ns:", "median_ns")
    dat(out + "/lab3.dat", [b for b in rows if b.startswith("lab3/")], "case median_ns:", "median_ns")
    dat(out + "/create.dat", [b for b in rows if b.startswith("lifecycle/create/")], "MiB mean_ns:", "mean")
    dat(out + "/touch.dat", [b for b in rows if b.startswith("lifecycle/touch/")], "MiB mean_ns:", "mean")
    with open(out + "/backends.txt", "w") as f:
        f.write(" ".join(backends) + "\n")


if __name__ == "__main__":
    main()
