"""`datamanifest list` wall time on stores of 1,000 and 10,000 objects (issue: < 1 s at 10,000).

Usage: python bench/list_scaling.py [--repeat 3] [--sizes 1000,10000] [--quick] [--json PATH]

Three stores per size, built directly in the on-disk layout (SCHEMA.md §7, §21):
``data``   N fetched file datasets (manifest entries, bytes, markers, state records);
``cached`` N produced artifacts (folder, config.toml, data file, marker, journal records);
``mixed``  N/2 of each.

Each figure is the best of R runs of a fresh process ``datamanifest list --json``, beside
the floor ``find STORE -printf '%s %A@\\n'`` (one stat per file, no parsing) and a process
that only imports datamanifest and parses the manifest (start-up). The peak RSS of
``list --json`` (the largest of its runs) is shown beside the start-up process's.
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

import contract  # noqa: E402  (bench/contract.py: the --json entry)
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


def run_once(cmd: list[str] | str, cwd: Path, shell: bool = False) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS (bytes) and stdout of one fresh process."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE, shell=shell)
        _, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        err = proc.stderr.read()
        proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{cmd} failed:\n{err.decode()}")
        out.seek(0)
        return dt, usage.ru_maxrss * 1024, out.read()  # ru_maxrss: KiB on Linux


def best_of(cmd: list[str] | str, cwd: Path, repeat: int, shell: bool = False,
            runs: list[float] | None = None) -> tuple[float, int, bytes]:
    """Best wall seconds of ``repeat`` fresh processes, the largest peak RSS, the stdout."""
    best, rss, out = float("inf"), 0, b""
    for _ in range(repeat):
        dt, peak, out = run_once(cmd, cwd, shell)
        best, rss = min(best, dt), max(rss, peak)
        if runs is not None:
            runs.append(dt)
    return best, rss, out


STORES = {"data": "fetched datasets", "cached": "produced artifacts",
          "mixed": "objects (half each)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per figure (best of)")
    ap.add_argument("--sizes", default="1000,10000", help="objects per store (comma-separated)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: stores of 300 objects, one run each")
    ap.add_argument("--json", metavar="PATH",
                    help="write the results.json entry here (bench/contract.py)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = "300", 1
    t_start = time.perf_counter()
    exe = [sys.executable, "-m", "datamanifest"]
    # an installed package has its bytecode compiled at install; this checkout may not
    # (PYTHONDONTWRITEBYTECODE), so compile it once rather than time the compiler
    if not args.quick:  # (a smoke run's figures are not compared)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "src")],
                       stdout=subprocess.DEVNULL, check=False)
    print(f"{'store':<8} {'objects':>8} {'list --json':>12} {'first run':>10} {'startup':>9} "
          f"{'find floor':>11} {'peak MB':>8} {'start MB':>9} {'listed':>7}")
    rows: list[dict] = []
    for n in (int(s) for s in args.sizes.split(",")):
        for name, (nd, nc) in (("data", (n, 0)), ("cached", (0, n)), ("mixed", (n // 2, n // 2))):
            root = Path(tempfile.mkdtemp(prefix=f"dm-list-{name}-"))
            try:
                build(root, nd, nc)
                runs: list[float] = []
                t, rss, out = best_of([*exe, "list", "--json"], root, args.repeat, runs=runs)
                listed = len(json.loads(out))
                if listed != n:
                    raise SystemExit(f"list --json listed {listed} objects, not {n}")
                start, start_rss, _ = best_of(
                    [sys.executable, "-c", "import datamanifest.cli, tomllib;"
                     "tomllib.load(open('datamanifest.toml','rb'))"], root, args.repeat)
                floor, _, _ = best_of("find store cache -printf '%s %A@\\n' 2>/dev/null | wc -l",
                                      root, args.repeat, shell=True)
                rows.append({"store": name, "n": n, "s": t, "first": runs[0], "start": start,
                             "floor": floor, "rss": rss, "start_rss": start_rss})
                print(f"{name:<8} {n:>8} {t:>11.3f}s {runs[0]:>9.3f}s {start:>8.3f}s "
                      f"{floor:>10.3f}s {rss / 1e6:>8.1f} {start_rss / 1e6:>9.1f} {listed:>7}")
            finally:
                shutil.rmtree(root, ignore_errors=True)
    print(f"target: list --json of 10,000 objects < {TARGET_S:g} s (each figure: best of "
          f"{args.repeat} fresh processes; peak RSS: the largest of them; "
          "'first run': the first of them, which parses the state file's TOML and leaves its "
          f"parse cache; machine: {os.cpu_count()} cores)")
    if args.json:
        contract.write(args.json, entry(rows, args.repeat, time.perf_counter() - t_start))
    return 0


TARGET_S = 1.0  # list --json of 10,000 objects (issue 10)


def entry(rows: list[dict], repeat: int, seconds: float) -> dict:
    """The results.json entry (bench/contract.py) of one run."""
    command = contract.command_line()
    largest = max(r["n"] for r in rows)
    judged = largest >= 10_000
    figures = []
    for r in rows:
        if r["n"] != largest:
            continue
        figures.append(contract.figure(
            f"list --json, {r['n']:,} {STORES[r['store']]}", "s", round(r["s"], 4),
            floor="find STORE -printf (one stat per file, no parsing)",
            floor_value=round(r["floor"], 4),
            target=f"< {TARGET_S:g} s" if judged else None,
            holds=(r["s"] < TARGET_S) if judged else None, command=command))
    for r in rows:  # the memory rows (issue 24, point 6; the issue sets no target for them)
        if r["n"] == largest:
            figures.append(contract.figure(
                f"peak RSS, list --json of {r['n']:,} {STORES[r['store']]}", "MB",
                round(r["rss"] / 1e6, 1),
                floor="a process that imports datamanifest.cli and parses the manifest",
                floor_value=round(r["start_rss"] / 1e6, 1), command=command))
    return {
        "title": f"datamanifest list on a store of {largest:,} objects",
        "command": command,
        "duration": f"{seconds:.0f} s",
        "what": (f"`datamanifest list --json` in a fresh process, best of {repeat}, beside the "
                 "floor `find` (one stat per file) and a process that only imports datamanifest "
                 "and parses the manifest (start-up); peak RSS is the largest of the runs. "
                 f"Target: under {TARGET_S:g} s at 10,000 objects."),
        "columns": ["store", "`list --json`", "start-up", "`find` floor", "peak RSS",
                    "start-up RSS"],
        "rows": [[f"{r['n']:,} {STORES[r['store']]}", f"{r['s']:.3f} s", f"{r['start']:.3f} s",
                  f"{r['floor']:.3f} s", f"{r['rss'] / 1e6:.0f} MB",
                  f"{r['start_rss'] / 1e6:.0f} MB"] for r in rows],
        "chart": {"unit": "seconds", "better": "lower", "bars": [
            {"label": f"{r['n']:,} {STORES[r['store']]}", "value": round(r["s"], 4), "ours": True}
            for r in rows if r["n"] == largest] + [
            {"label": "find floor (mixed)", "value": round(r["floor"], 4)}
            for r in rows if r["n"] == largest and r["store"] == "mixed"]},
        "figures": figures,
    }


if __name__ == "__main__":
    raise SystemExit(main())
