"""`datamanifest check` wall time on manifests of 100, 1,000 and 10,000 datasets.

Usage: python bench/check_scaling.py [--repeat 5] [--sizes 100,1000,10000] [--quick] [--json PATH]

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

import contract  # bench/contract.py: the --json entry

TARGET = 3.0  # check of 10,000 datasets within 3x of the floor


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per figure (best of)")
    ap.add_argument("--sizes", default="100,1000,10000",
                    help="datasets per manifest (comma-separated)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 1,000 datasets, one run (seconds, not minutes)")
    ap.add_argument("--json", metavar="PATH",
                    help="write the results.json entry here (bench/contract.py)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = "1000", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    t_start = time.perf_counter()
    print(f"{'datasets':>9}{'tomllib.load s':>16}{'check s':>10}{'ratio':>8}")
    measured: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="dm-check-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"m{n}.toml"
            write_manifest(path, n)
            parse = f"import tomllib; tomllib.load(open({str(path)!r}, 'rb'))"
            floor = best_of([sys.executable, "-c", parse], args.repeat)
            ours = best_of([sys.executable, "-m", "datamanifest", "check", str(path)], args.repeat)
            measured.append((n, floor, ours))
            print(f"{n:>9}{floor:>16.3f}{ours:>10.3f}{ours / floor:>8.2f}")
    print(f"target: ratio <= {TARGET:g} at 10,000 datasets")
    if args.json:
        contract.write(args.json, entry(measured, args.repeat, time.perf_counter() - t_start))
    return 0


def entry(measured: list[tuple[int, float, float]], repeat: int, seconds: float) -> dict:
    """The results.json entry (bench/contract.py) of one run."""
    command = contract.command_line()
    largest = max(n for n, _, _ in measured)
    charted = [m for m in measured if m[0] >= 1000]  # 100 datasets: start-up only
    figures = [contract.figure(
        f"check of {n:,} datasets", "s", round(ours, 4),
        floor="a process that only runs tomllib.load on the file", floor_value=round(floor, 4),
        target=f"<= {TARGET:g}x floor" if n == largest and n >= 10_000 else None,
        holds=(ours <= TARGET * floor) if n == largest and n >= 10_000 else None,
        command=command) for n, floor, ours in measured]
    return {
        "title": "datamanifest check on large manifests",
        "command": command,
        "duration": f"{seconds:.0f} s",
        "what": (f"Wall time of a fresh process, best of {repeat}, beside a process that only "
                 "parses the same file with `tomllib` (the floor: start-up plus parsing). "
                 f"Target: 10,000 datasets within {TARGET:g}x of the floor."),
        "columns": ["datasets", "`tomllib.load` process", "`datamanifest check`", "ratio"],
        "rows": [[f"{n:,}", f"{floor:.3f} s", f"{ours:.3f} s", f"{ours / floor:.2f}"]
                 for n, floor, ours in measured],
        "chart": {"unit": "seconds", "better": "lower", "groups": [
            {"label": f"{n:,} datasets", "bars": [
                {"label": "tomllib.load (floor)", "value": round(floor, 4)},
                {"label": "datamanifest check", "value": round(ours, 4), "ours": True}]}
            for n, floor, ours in (charted or measured)]},
        "figures": figures,
    }


if __name__ == "__main__":
    raise SystemExit(main())
