"""Tree checksums of a Zarr-like store: `datamanifest tree` beside zarr-checksum and a floor.

Usage: python bench/tree_checksum.py [--small 10000] [--tiny 100000] [--big 100]
                                     [--big-mib 64] [--repeat 3] [--quick] [--json PATH]

Three trees are built in a temporary folder:
  small: N files of 4 KiB in 100 folders (like Zarr chunks);
  tiny:  N files of 1 KiB in 100 folders;
  big:   M files of 64 MiB (0 leaves it out).
For each, best of R runs (warm page cache), as separate processes:
  datamanifest tree --algorithm dandi-zarr   vs  zarrsum local (zarr-checksum, same value)
  datamanifest tree --algorithm tree-sha256
  floor: find DIR -type f | xargs md5sum  /  sha256sum
Prints seconds, the ratios, and peak RSS (MB). Targets (issue 24): dandi-zarr >= 3x faster
than zarr-checksum on the small and tiny trees, memory flat in the number of files.
--quick: 2,000 and 5,000 files, no big tree, one run (a smoke test of a few seconds).
--json PATH: the benchmark's entry for bench/results.json, with its `figures` rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: str | list[str], shell: bool = False) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read().decode()
    p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {cmd}")
    return dt, usage.ru_maxrss, out


def best(cmd, repeat: int, shell: bool = False) -> tuple[float, int, str]:
    runs = [run(cmd, shell) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def build(root: Path, n_files: int, size: int, folders: int) -> None:
    block = os.urandom(size) if size <= 4 * 1024 * 1024 else None
    for i in range(n_files):
        d = root / f"c{i % folders:03d}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"{i}", "wb") as f:
            if block is not None:
                f.write(block[:8] + i.to_bytes(8, "little") + block[16:])
            else:
                chunk = os.urandom(4 * 1024 * 1024)
                for j in range(size // len(chunk)):
                    f.write(chunk[:8] + (i * 1000 + j).to_bytes(8, "little") + chunk[16:])


def compile_package() -> None:
    """Compile the bytecode of the datamanifest the children import, as an install does: from a
    source checkout under PYTHONDONTWRITEBYTECODE=1, every run would compile the modules of
    the tree command anew (~25 ms of a run of ~0.15 s), which an installed package never does
    (zarr-checksum, in site-packages, has its bytecode)."""
    import compileall

    where = subprocess.run([sys.executable, "-c", "import datamanifest, os; "
                            "print(os.path.dirname(datamanifest.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    compileall.compile_dir(where, quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000, help="files of 4 KiB")
    ap.add_argument("--tiny", type=int, default=100_000, help="files of 1 KiB")
    ap.add_argument("--big", type=int, default=100, help="files of --big-mib MiB (0: none)")
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a smoke test of a few seconds")
    ap.add_argument("--json", metavar="PATH", help="write the results.json entry here")
    args = ap.parse_args()
    if args.quick:
        args.small, args.tiny, args.big, args.repeat = 2000, 5000, 0, 1
    zarrsum = shutil.which("zarrsum") or str(Path(sys.executable).parent / "zarrsum")
    dm = [sys.executable, "-m", "datamanifest", "tree", "-q"]
    compile_package()
    command = " ".join([".venv/bin/python", "bench/tree_checksum.py", *sys.argv[1:]])
    measured: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dm-tree-") as tmp:
        trees = {
            f"{args.small:,} x 4 KiB": (Path(tmp) / "small", args.small, 4096, 100),
            f"{args.tiny:,} x 1 KiB": (Path(tmp) / "tiny", args.tiny, 1024, 100),
            f"{args.big:,} x {args.big_mib} MiB": (Path(tmp) / "big", args.big,
                                                   args.big_mib * 1024 * 1024, 10),
        }
        for label, (root, n, size, folders) in trees.items():
            if n <= 0:
                continue
            build(root, n, size, folders)
            subprocess.run(f"find {root} -type f -print0 | xargs -0 cat > /dev/null",
                           shell=True)  # warm cache
            ours_d, rss_d, out_d = best(dm + ["--algorithm", "dandi-zarr", "-o", "/dev/null",
                                              str(root)], args.repeat)
            ours_s, rss_s, _ = best(dm + ["--algorithm", "tree-sha256", "-o", "/dev/null",
                                          str(root)], args.repeat)
            zs, rss_z, out_z = best([zarrsum, "local", str(root)], args.repeat)
            md5, _, _ = best(f"find {root} -type f -print0 | xargs -0 md5sum > /dev/null",
                             args.repeat, shell=True)
            sha, _, _ = best(f"find {root} -type f -print0 | xargs -0 sha256sum > /dev/null",
                             args.repeat, shell=True)
            ours_value = out_d.strip().split(":", 1)[1]
            theirs = out_z.strip().split()[-1]
            measured[label] = {"n": n, "dandi": ours_d, "sha": ours_s, "zarrsum": zs, "md5": md5,
                               "sha256sum": sha, "rss": max(rss_d, rss_s) / 1024,
                               "rss_zarrsum": rss_z / 1024, "same": ours_value == theirs}
            print(f"\n{label} in {folders} folders (best of {args.repeat}, warm cache)")
            print(f"  {'':42}{'seconds':>9}{'peak MB':>9}")
            print(f"  {'datamanifest tree --algorithm dandi-zarr':42}{ours_d:>9.3f}"
                  f"{rss_d / 1024:>9.0f}")
            print(f"  {'zarrsum local (zarr-checksum)':42}{zs:>9.3f}{rss_z / 1024:>9.0f}")
            print(f"  {'floor: find | xargs md5sum':42}{md5:>9.3f}")
            print(f"  {'datamanifest tree --algorithm tree-sha256':42}{ours_s:>9.3f}"
                  f"{rss_s / 1024:>9.0f}")
            print(f"  {'floor: find | xargs sha256sum':42}{sha:>9.3f}")
            print(f"  same dandi-zarr value: {ours_value == theirs} ({ours_value})")
            print(f"  speed-up over zarr-checksum: {zs / ours_d:.2f}x (target >= 3 on the "
                  "small files)")
            print(f"  vs floor: dandi-zarr/md5sum {ours_d / md5:.2f}x, tree-sha256/sha256sum "
                  f"{ours_s / sha:.2f}x")
            shutil.rmtree(root)
    if args.json:
        Path(args.json).write_text(json.dumps(entry(measured, command, args), indent=1) + "\n")


def entry(measured: dict[str, dict], command: str, args) -> dict:
    """The benchmark's entry for bench/results.json (the bench JSON contract of issue 24)."""
    figures, rows, groups = [], [], []
    first = None
    for label, m in measured.items():
        many = m["n"] >= 1000 and label.endswith(("4 KiB", "1 KiB"))
        ratio = m["zarrsum"] / m["dandi"]
        figures.append({
            "case": f"{label}, dandi-zarr", "unit": "s", "ours": round(m["dandi"], 3),
            "peer": "zarr-checksum (zarrsum local)", "peer_value": round(m["zarrsum"], 3),
            "floor": "find | xargs md5sum", "floor_value": round(m["md5"], 3),
            "target": ">= 3x peer" if many else None,
            "holds": (ratio >= 3 and m["same"]) if many else None, "command": command})
        figures.append({
            "case": f"{label}, tree-sha256", "unit": "s", "ours": round(m["sha"], 3),
            "peer": None, "peer_value": None,
            "floor": "find | xargs sha256sum", "floor_value": round(m["sha256sum"], 3),
            "target": None, "holds": None, "command": command})
        if many:
            first = first or m
            flat = m["rss"] <= 1.25 * first["rss"]
            figures.append({
                "case": f"{label}, peak RSS", "unit": "MB", "ours": round(m["rss"], 1),
                "peer": "zarr-checksum (zarrsum local)", "peer_value": round(m["rss_zarrsum"], 1),
                "floor": None, "floor_value": None,
                "target": "flat in the number of files (<= 1.25x the smallest tree's)",
                "holds": flat, "command": command})
        rows.append([label, f"{m['dandi']:.3f} s", f"{m['zarrsum']:.3f} s",
                     f"{ratio:.2f}x", f"{m['md5']:.3f} s", f"{m['sha']:.3f} s",
                     f"{m['sha256sum']:.3f} s", f"{m['rss']:.0f} MB"])
        groups.append({"label": label, "bars": [
            {"label": "tree -a dandi-zarr", "value": round(m["dandi"], 3), "ours": True},
            {"label": "zarrsum local", "value": round(m["zarrsum"], 3)},
            {"label": "tree -a tree-sha256", "value": round(m["sha"], 3), "ours": True},
            {"label": "find | xargs sha256sum", "value": round(m["sha256sum"], 3)}]})
    return {
        "title": "Tree checksums of a Zarr-like folder",
        "command": command,
        "duration": "a few seconds" if args.quick else "a few minutes",
        "what": f"Best of {args.repeat}, warm page cache, separate processes (start-up "
                "included, our bytecode compiled first as an install does). `dandi-zarr` "
                "gives the same value as zarr-checksum; the floors hash every file with "
                "coreutils.",
        "columns": ["tree", "`tree -a dandi-zarr`", "`zarrsum local`", "speed-up",
                    "`find | xargs md5sum`", "`tree -a tree-sha256`",
                    "`find | xargs sha256sum`", "peak RSS"],
        "rows": rows,
        "chart": {"unit": "seconds", "better": "lower", "groups": groups},
        "figures": figures,
    }


if __name__ == "__main__":
    main()
