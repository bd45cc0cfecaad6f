"""Instructions per fresh ``ChibiEngine().render(spec, size)``, counted by valgrind's callgrind: a
before/after figure that does not move with the machine's load (wall-clock medians on the shared 2-core
machine move by 30-50 % between runs).

    .venv/bin/python bench/bench_instructions.py [--rev b1a40ae] [--size 128 512] [--warm 300] [--n 60]

For the working tree (and ``--rev``, checked out in a temporary ``git worktree``), a child process draws
``--warm`` random specs with instrumentation off (``--instr-atstart=no``: the caches fill, numba compiles),
then ``callgrind_control -i on`` switches it on and the child draws ``--n`` other fresh specs. The count
minus the interpreter's shutdown (``Py_FinalizeEx``, which frees the caches), divided by ``--n``, is
printed and saved in bench/results/instructions.json. Needs valgrind (on every machine of this project);
about 2-3 minutes a run. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "instructions.json"


def child(warm: int, n: int, size: int, ready: Path, go: Path) -> None:
    """Runs inside valgrind, with the tree to measure as the working directory."""
    sys.path.insert(0, os.getcwd())
    from bench.bench_render import random_spec
    from generation.chibi.engine import ChibiEngine

    engine = ChibiEngine()
    rng = random.Random(1)
    for _ in range(warm):
        engine.render(random_spec(rng), size)
    rng = random.Random(99)
    specs = [random_spec(rng) for _ in range(n)]
    ready.touch()
    while not go.exists():
        time.sleep(0.05)
    for spec in specs:
        engine.render(spec, size)


def measure(tree: Path, size: int, warm: int, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ready, go, out = Path(tmp, "ready"), Path(tmp, "go"), Path(tmp, "callgrind.out")
        cmd = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, str(Path(__file__).resolve()), "--child", str(warm), str(n), str(size), str(ready), str(go),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while not ready.exists():
            if proc.poll() is not None:
                raise SystemExit(
                    f"the child stopped before measuring:\n{proc.stderr.read() if proc.stderr else ''}"
                )
            time.sleep(0.5)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        go.touch()
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the child failed:\n{err}")
        total = int(re.search(r"Collected : (\d+)", err).group(1))  # type: ignore[union-attr]
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(out)], capture_output=True, text=True, check=True
        ).stdout
        shutdown = next(
            (
                int(line.split()[0].replace(",", ""))
                for line in annotated.splitlines()
                if ":Py_FinalizeEx " in line
            ),
            0,
        )
    return {"per_render_m": round((total - shutdown) / n / 1e6, 2), "total": total, "shutdown": shutdown}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", help="also measure this git revision (in a temporary worktree)")
    ap.add_argument("--size", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--warm", type=int, default=300, help="renders before counting")
    ap.add_argument("--n", type=int, default=60, help="fresh renders counted")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        warm, n, size, ready, go = args.child
        child(int(warm), int(n), int(size), Path(ready), Path(go))
        return
    targets = {"working tree": ROOT}
    worktree = None
    if args.rev:
        worktree = Path(tempfile.mkdtemp(prefix="chibify-rev-"))
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(worktree), args.rev], cwd=ROOT, check=True
        )
        targets = {args.rev: worktree, **targets}
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for size in args.size:
            for name, tree in targets.items():
                figure = measure(tree, size, args.warm, args.n)
                results.setdefault(name, {})[f"{size}px"] = figure
                print(
                    f"{name:>14}  {size:4d} px: {figure['per_render_m']:.2f} M instructions a fresh render",
                    flush=True,
                )
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python bench/bench_instructions.py " + " ".join(sys.argv[1:]),
                "method": __doc__.split("\n\n")[2].replace("\n", " "),
                "warm": args.warm,
                "n": args.n,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
