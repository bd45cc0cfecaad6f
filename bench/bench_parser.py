"""Prompt parser accuracy and speed on tests/generation/prompts_table.json.

Run: ``.venv/bin/python -m bench.bench_parser`` (prints and writes bench/results/parser.json).
Accuracy is per field (each expected field of each row) and per row (every expected field right). The
``parse`` rows were used while developing the parser; the ``held_out`` rows were written afterwards and not
tuned on, so their figure is the honest one.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from generation import catalog
from generation.prompt import parse_prompt
from generation.spec import AvatarSpec

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tests" / "generation" / "prompts_table.json"
OUT = ROOT / "bench" / "results" / "parser.json"


def field_value(spec: AvatarSpec, fld: str) -> Any:
    if fld == "items":
        return sorted(spec.items)
    value: Any = spec
    for part in fld.split("."):
        value = getattr(value, part)
    return value


def expected_value(fld: str, value: Any) -> Any:
    if fld == "items":
        return sorted(value)
    if fld.endswith("color") and isinstance(value, str):
        return catalog.parse_color(value)
    return value


def check_row(row: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Wrong fields of one table row: field -> (expected, got)."""
    spec = parse_prompt(row["prompt"], seed=1).spec
    wrong = {}
    for fld, want in row["expect"].items():
        got = field_value(spec, fld)
        if got != expected_value(fld, want):
            wrong[fld] = (want, got)
    return wrong


def main() -> dict[str, Any]:
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    rows = table["parse"]
    held_out = table.get("held_out", [])
    held_ok = sum(not check_row(r) for r in held_out)
    per_field: dict[str, list[int]] = {}
    rows_ok = 0
    failures = []
    for row in rows:
        wrong = check_row(row)
        for fld in row["expect"]:
            ok_total = per_field.setdefault(fld, [0, 0])
            ok_total[0] += fld not in wrong
            ok_total[1] += 1
        if wrong:
            failures.append(
                {"prompt": row["prompt"], "wrong": {k: [str(a), str(b)] for k, (a, b) in wrong.items()}}
            )
        else:
            rows_ok += 1
    parse_prompt("warm up", seed=1)
    times = []
    for _ in range(5):
        for row in rows:
            t0 = time.perf_counter()
            parse_prompt(row["prompt"], seed=1)
            times.append(time.perf_counter() - t0)
    fields_ok = sum(v[0] for v in per_field.values())
    fields_total = sum(v[1] for v in per_field.values())
    result = {
        "rows": len(rows),
        "row_accuracy": round(rows_ok / len(rows), 4),
        "field_accuracy": round(fields_ok / fields_total, 4),
        "per_field": {k: round(v[0] / v[1], 4) for k, v in sorted(per_field.items())},
        "per_field_counts": {k: v[1] for k, v in sorted(per_field.items())},
        "parse_ms_median": round(statistics.median(times) * 1000, 4),
        "parse_ms_p95": round(sorted(times)[int(len(times) * 0.95)] * 1000, 4),
        "failures": failures,
        "held_out_rows": len(held_out),
        "held_out_row_accuracy": round(held_ok / len(held_out), 4) if held_out else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"rows fully correct: {rows_ok}/{len(rows)} ({result['row_accuracy']:.1%})")
    print(f"fields correct:     {fields_ok}/{fields_total} ({result['field_accuracy']:.1%})")
    for k, v in result["per_field"].items():
        print(f"  {k:18s} {v:.1%} of {per_field[k][1]}")
    if held_out:
        print(f"held-out rows (written after tuning, never tuned on): {held_ok}/{len(held_out)}")
    print(f"parse time: median {result['parse_ms_median']} ms, p95 {result['parse_ms_p95']} ms")
    for f in failures:
        print("FAIL", f["prompt"], f["wrong"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
