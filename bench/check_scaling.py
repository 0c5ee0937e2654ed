"""`datamanifest check` wall time on manifests of 100, 1,000 and 10,000 datasets.

Usage: python bench/check_scaling.py [--repeat 5] [--sizes 100,1000,10000]

Each figure is the best of N runs of a fresh process, beside a process that only
does `tomllib.load` of the same file (the floor: interpreter start-up plus parsing).
Target: check of 10,000 datasets within 3x of the floor.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_manifest(path: Path, n: int) -> None:
    lines = ["# generated for bench/check_scaling.py", "[_META]", "schema = 1", "",
             "[_STORAGE]", 'datasets_dir = "datasets"', ""]
    for i in range(n):
        lines += [
            f"[dataset-{i:05d}]",
            f'uri = "https://data{i % 7}.example.org/archive/{i // 100:03d}/file-{i}.nc"',
            f'checksum = "sha256:{i:064x}"',
            f'description = "Synthetic dataset number {i}"',
            f'aliases = ["ds{i}"]',
            f'requires = ["dataset-{i - 1:05d}"]' if i % 10 else "requires = []",
            "",
        ]
    path.write_text("\n".join(lines))


def best_of(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed:\n{proc.stdout.decode()}{proc.stderr.decode()}")
        best = min(best, dt)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="100,1000,10000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'datasets':>9}{'tomllib.load s':>16}{'check s':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory(prefix="dm-check-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"m{n}.toml"
            write_manifest(path, n)
            floor = best_of([sys.executable, "-c",
                             f"import tomllib; tomllib.load(open({str(path)!r}, 'rb'))"], args.repeat)
            ours = best_of([sys.executable, "-m", "datamanifest", "check", str(path)], args.repeat)
            print(f"{n:>9}{floor:>16.3f}{ours:>10.3f}{ours / floor:>8.2f}")
    print("target: ratio <= 3.0 at 10,000 datasets")


if __name__ == "__main__":
    main()
