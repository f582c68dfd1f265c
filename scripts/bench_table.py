#!/usr/bin/env python3
"""Prints build/bench/results.json as the README's markdown table (reference beside)."""
import json, sys

path = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results.json"
rows = json.load(open(path))
ref = {(r["workload"], r["metric"]): r["value"] for r in rows if r["driver"] == "libmariadb"}

def fmt(metric, v):
    if metric.startswith("x_"):
        return f"{v:.2f}x"
    if metric == "qps" or metric.endswith("_qps"):
        return f"{v:,.0f}"
    if metric == "rows_per_s":
        return f"{v / 1e6:.2f} M"
    if metric == "ns_per_op":
        return f"{v:,.0f} ns"
    if metric.startswith("client_cpu_s_per") or metric.startswith("server_cpu_s_per"):
        return f"{v * 1e6:.2f} µs"
    if metric.startswith("server_sleeps_per"):
        return f"{v:.2f}"
    return f"{v:.1f}"

print("| workload | driver | metric | libmariadb | ambisql | ratio |")
print("|---|---|---|---|---|---|")
for r in rows:
    if r["driver"] == "libmariadb":
        continue
    base = ref.get((r["workload"], r["metric"]))
    ratio = f"{r['value'] / base:.2f}x" if base else ""
    print(f"| {r['workload']} | {r['driver']} | {r['metric']} | {fmt(r['metric'], base) if base else ''} | "
          f"{fmt(r['metric'], r['value'])} | {ratio} |")
