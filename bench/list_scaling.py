"""`datamanifest list` wall time on stores of 1,000 and 10,000 objects (issue: < 1 s at 10,000).

Usage: python bench/list_scaling.py [--repeat 3] [--sizes 1000,10000]

Three stores per size, built directly in the on-disk layout (SCHEMA.md §7, §21):
``data``   N fetched file datasets (manifest entries, bytes, markers, state records);
``cached`` N produced artifacts (folder, config.toml, data file, marker, journal records);
``mixed``  N/2 of each.

Each figure is the best of R runs of a fresh process ``datamanifest list --json``, beside
the floor ``find STORE -printf '%s %A@\\n'`` (one stat per file, no parsing) and a process
that only imports datamanifest and parses the manifest (start-up).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from datamanifest.spec.cache import journal_line  # noqa: E402


def build(root: Path, n_data: int, n_cached: int) -> None:
    store, cache = root / "store", root / "cache"
    lines = ["[_META]", "schema = 1", "", "[_STORAGE]", 'datasets_dir = "store"',
             'datacache_dir = "cache"', "datasets_pools = []", ""]
    state = ["[_META]", "schema = 5", ""]
    for i in range(n_data):
        body = f"row {i}\n".encode()
        digest = hashlib.sha256(body).hexdigest()
        key = f"data.example.org/archive/{i // 100:03d}/file-{i}.csv"
        p = store / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        Path(f"{p}.complete").write_text(json.dumps({"checksum": f"sha256:{digest}",
                                                     "size": len(body)}))
        lines += [f"[ds-{i:05d}]", f'uri = "https://{key}"', f'checksum = "sha256:{digest}"', ""]
        state += [f'[datasets."{key}"]', f'storage_path = "store/{key}"',
                  f'checksum = "sha256:{digest}"', ""]
    (root / "datamanifest.toml").write_text("\n".join(lines))
    (root / ".datamanifest").mkdir()
    (root / ".datamanifest" / "state.toml").write_text("\n".join(state))
    journal = []
    for i in range(n_cached):
        h = hashlib.sha256(f"params {i}".encode()).hexdigest()
        folder = cache / f"bench.f{i % 10}" / h
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(f"i = {i}\n")
        body = json.dumps([i]).encode()
        (folder / "data.json").write_bytes(body)
        (folder / ".complete").write_text(json.dumps({"formats": {"json": {
            "file": "data.json", "checksum": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body)}}}))
        journal.append(journal_line(f"bench.f{i % 10}", h, f"cache/bench.f{i % 10}/{h}",
                                    ref="bench:f", fmt="json"))
    (root / ".datamanifest" / "state.journal").write_text("".join(journal))


def best_of(cmd: list[str], cwd: Path, repeat: int, shell: bool = False,
            runs: list[float] | None = None) -> tuple[float, bytes]:
    best, out = float("inf"), b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, shell=shell)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed:\n{proc.stderr.decode()}")
        best, out = min(best, dt), proc.stdout
        if runs is not None:
            runs.append(dt)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="1000,10000")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "datamanifest"]
    # an installed package has its bytecode compiled at install; this checkout may not
    # (PYTHONDONTWRITEBYTECODE), so compile it once rather than time the compiler
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "src")],
                   stdout=subprocess.DEVNULL, check=False)
    print(f"{'store':<8} {'objects':>8} {'list --json':>12} {'first run':>10} {'startup':>9} "
          f"{'find floor':>11} {'listed':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        for name, (nd, nc) in (("data", (n, 0)), ("cached", (0, n)), ("mixed", (n // 2, n // 2))):
            root = Path(tempfile.mkdtemp(prefix=f"dm-list-{name}-"))
            try:
                build(root, nd, nc)
                runs: list[float] = []
                t, out = best_of([*exe, "list", "--json"], root, args.repeat, runs=runs)
                listed = len(json.loads(out))
                assert listed == n, (listed, n)
                start, _ = best_of([sys.executable, "-c", "import datamanifest.cli, tomllib;"
                                    "tomllib.load(open('datamanifest.toml','rb'))"], root,
                                   args.repeat)
                floor, _ = best_of("find store cache -printf '%s %A@\\n' 2>/dev/null | wc -l",
                                   root, args.repeat, shell=True)
                print(f"{name:<8} {n:>8} {t:>11.3f}s {runs[0]:>9.3f}s {start:>8.3f}s "
                      f"{floor:>10.3f}s {listed:>7}")
            finally:
                shutil.rmtree(root, ignore_errors=True)
    print("target: list --json of 10,000 objects < 1 s (each figure: best of "
          f"{args.repeat} fresh processes; 'first run': the first of them, which parses the "
          f"state file's TOML and leaves its parse cache; machine: {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
