"""Run every ``benchmarks/bench_*.py`` in turn (``make bench``); each prints its own side-by-side table.

Benchmarks time real work on the machine they run on; run them on an otherwise idle machine.
Pass names to run a subset: ``python benchmarks/run_all.py backends judges``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    scripts = sorted(here.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv]
    failed = []
    for script in scripts:
        sys.stdout.write(f"\n=== {script.name} ===\n")
        sys.stdout.flush()
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script)]).returncode
        sys.stdout.write(f"=== {script.name}: exit {rc}, {time.perf_counter() - t0:.0f} s ===\n")
        if rc != 0:
            failed.append(script.name)
    if failed:
        sys.stdout.write(f"failed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
