#!/usr/bin/env python3
"""The README's benchmark tables, from one recorded run of scripts/bench.

    scripts/bench_table.py [RESULTS]              print the C++ table (libmariadb beside)
    scripts/bench_table.py --readme README.md     rewrite every table section of the README

RESULTS defaults to build/bench/results.json; the run's date and command line come from
run.json beside it (scripts/bench writes both). In the README each table stands between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; --readme replaces what is between them
with a line naming the run and the table made from its rows. A section whose rows the run
did not produce (a run of some workloads only) is left as it was, with its own run's line.
Nothing in those sections is edited by hand."""
import json
import os
import re
import sys

# The driver whose figures each table's ratio is about, in order of preference; the
# reference is the workload's first other driver (the benches list it first).
MAIN = ["ambisql", "ambisql.twisted", "ambisql.aio-trio", "ambisql-pool"]


def fmt(metric, v):
    if v is None:
        return ""
    if metric.startswith("x_"):
        return f"{v:.2f}x"
    if metric in ("qps", "rows_per_s", "lookups_per_s") or metric.endswith("_qps") or metric.endswith("_per_s"):
        if metric == "rows_per_s" and v >= 1e6:
            return f"{v / 1e6:.2f} M"
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if metric == "ns_per_op":
        return f"{v:,.0f} ns"
    if metric.startswith("client_cpu_s_per") or metric.startswith("server_cpu_s_per") or metric.endswith("_cpu_s"):
        return f"{v * 1e3:.2f} ms" if v >= 1e-3 else f"{v * 1e6:.2f} µs"
    if "instructions" in metric:
        return f"{v / 1e3:,.1f}k"
    if metric.endswith("_s") or metric in ("wall", "wall_s"):
        return f"{v:.3f} s" if v < 1 else f"{v:.2f} s"
    if float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.3g}"


def cpp_table(rows):
    """The C++ workloads, libmariadb beside (the format print() has always had)."""
    ref = {(r["workload"], r["metric"]): r["value"] for r in rows if r["driver"] == "libmariadb"}
    out = ["| workload | driver | metric | libmariadb | ambisql | ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["driver"] == "libmariadb":
            continue
        base = ref.get((r["workload"], r["metric"]))
        ratio = f"{r['value'] / base:.2f}x" if base else ""
        out.append(f"| {r['workload']} | {r['driver']} | {r['metric']} | {fmt(r['metric'], base) if base else ''} | "
                   f"{fmt(r['metric'], r['value'])} | {ratio} |")
    return out


def pivot_table(rows):
    """One line per workload and metric, one column per driver, and the main driver's ratio
    to the workload's reference."""
    drivers, by_workload, cells = [], {}, {}
    for r in rows:
        if r["driver"] not in drivers:
            drivers.append(r["driver"])
        wl = by_workload.setdefault(r["workload"], [])
        if r["driver"] not in wl:
            wl.append(r["driver"])
        cells[(r["workload"], r["metric"], r["driver"])] = r["value"]
    out = ["| workload | metric | " + " | ".join(drivers) + " | ratio |", "|---|---|" + "---|" * len(drivers) + "---|"]
    seen = set()
    for r in rows:
        key = (r["workload"], r["metric"])
        if key in seen:
            continue
        seen.add(key)
        wl = by_workload[r["workload"]]
        main = next((d for d in MAIN if d in wl), wl[-1])
        ref = next((d for d in wl if d != main), None)
        m, b = cells.get(key + (main,)), cells.get(key + (ref,)) if ref else None
        ratio = f"{m / b:.2f}x {main} / {ref}" if m is not None and b else ""
        out.append(f"| {r['workload']} | {r['metric']} | " +
                   " | ".join(fmt(r["metric"], cells.get(key + (d,))) for d in drivers) + f" | {ratio} |")
    return out


def is_cpp(w):
    return not (w.startswith(("py_", "aio_", "orm_", "core_", "twisted_", "trio_", "pool/", "galera/")))


# Section name -> (which workloads, how the table is made).
SECTIONS = {
    "cpp": (is_cpp, cpp_table),
    "pool": (lambda w: w.startswith("pool/"), pivot_table),
    "galera": (lambda w: w.startswith("galera/"), pivot_table),
    "python": (lambda w: w.startswith("py_"), pivot_table),
    "asyncio": (lambda w: w.startswith("aio_"), pivot_table),
    "sqlalchemy": (lambda w: w.startswith(("orm_", "core_")) and not w.endswith("_sqla2.0"), pivot_table),
    "sqlalchemy20": (lambda w: w.endswith("_sqla2.0"), pivot_table),
    "twisted": (lambda w: w.startswith(("twisted_", "trio_")), pivot_table),
}


def rewrite(readme, rows, run):
    text = open(readme).read()
    for name, (wanted, make) in SECTIONS.items():
        chosen = [r for r in rows if wanted(r["workload"])]
        if not chosen:
            continue
        body = "\n".join([f"Recorded by `{run['command']}` on {run['date']} (build/bench/results.json):", ""] +
                         make(chosen))
        pattern = re.compile(r"(<!-- bench:%s -->\n).*?(<!-- /bench:%s -->)" % (name, name), re.S)
        if not pattern.search(text):
            sys.exit("README has no section <!-- bench:%s --> for its rows" % name)
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    open(readme, "w").write(text)


def main():
    args = sys.argv[1:]
    readme = None
    if "--readme" in args:
        i = args.index("--readme")
        readme = args[i + 1]
        del args[i:i + 2]
    path = args[0] if args else "build/bench/results.json"
    rows = json.load(open(path))
    if readme:
        run = json.load(open(os.path.join(os.path.dirname(path), "run.json")))
        rewrite(readme, rows, run)
    else:
        print("\n".join(cpp_table([r for r in rows if is_cpp(r["workload"])])))


if __name__ == "__main__":
    main()
