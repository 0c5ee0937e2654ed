"""Tree checksums of a Zarr-like store: `datamanifest tree` beside zarr-checksum and a floor.

Usage: python bench/tree_checksum.py [--small 10000] [--big 100] [--big-mib 64] [--repeat 3]

Two trees are built in a temporary folder:
  small: N files of 4 KiB in 100 folders (like Zarr chunks);
  big:   M files of 64 MiB.
For each, best of R runs (warm page cache), as separate processes:
  datamanifest tree --algorithm dandi-zarr   vs  zarrsum local (zarr-checksum, same value)
  datamanifest tree --algorithm tree-sha256
  floor: find DIR -type f | xargs md5sum  /  sha256sum
Prints seconds, the ratios, and peak RSS (MB). Targets: >= 2x faster than zarr-checksum on
the small tree; within 1.5x of the floor on both trees; peak memory < 200 MB.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    zarrsum = shutil.which("zarrsum") or str(Path(sys.executable).parent / "zarrsum")
    dm = [sys.executable, "-m", "datamanifest", "tree", "-q"]
    with tempfile.TemporaryDirectory(prefix="dm-tree-") as tmp:
        trees = {
            f"small: {args.small} x 4 KiB in 100 folders": (Path(tmp) / "small", args.small, 4096, 100),
            f"big: {args.big} x {args.big_mib} MiB": (Path(tmp) / "big", args.big,
                                                     args.big_mib * 1024 * 1024, 10),
        }
        for label, (root, n, size, folders) in trees.items():
            build(root, n, size, folders)
            subprocess.run(f"cat $(find {root} -type f) > /dev/null", shell=True)  # warm cache
            ours_d, rss_d, out_d = best(dm + ["--algorithm", "dandi-zarr", "-o", "/dev/null", str(root)],
                                        args.repeat)
            ours_s, rss_s, _ = best(dm + ["--algorithm", "tree-sha256", "-o", "/dev/null", str(root)],
                                    args.repeat)
            zs, rss_z, out_z = best([zarrsum, "local", str(root)], args.repeat)
            md5, _, _ = best(f"find {root} -type f -print0 | xargs -0 md5sum > /dev/null",
                             args.repeat, shell=True)
            sha, _, _ = best(f"find {root} -type f -print0 | xargs -0 sha256sum > /dev/null",
                             args.repeat, shell=True)
            ours_value = out_d.strip().split(":", 1)[1]
            theirs = out_z.strip().split()[-1]
            print(f"\n{label} (best of {args.repeat}, warm cache)")
            print(f"  {'':42}{'seconds':>9}{'peak MB':>9}")
            print(f"  {'datamanifest tree --algorithm dandi-zarr':42}{ours_d:>9.2f}{rss_d / 1024:>9.0f}")
            print(f"  {'zarrsum local (zarr-checksum)':42}{zs:>9.2f}{rss_z / 1024:>9.0f}")
            print(f"  {'floor: find | xargs md5sum':42}{md5:>9.2f}")
            print(f"  {'datamanifest tree --algorithm tree-sha256':42}{ours_s:>9.2f}{rss_s / 1024:>9.0f}")
            print(f"  {'floor: find | xargs sha256sum':42}{sha:>9.2f}")
            print(f"  same dandi-zarr value: {ours_value == theirs} ({ours_value})")
            print(f"  speed-up over zarr-checksum: {zs / ours_d:.2f}x (target >= 2 on the small tree)")
            print(f"  vs floor: dandi-zarr/md5sum {ours_d / md5:.2f}x, tree-sha256/sha256sum "
                  f"{ours_s / sha:.2f}x (target <= 1.5)")
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
