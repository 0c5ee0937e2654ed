"""Fetch throughput over loopback HTTP versus the floor `curl -o FILE` + `openssl dgst -sha256`.

Usage: python bench/fetch_throughput.py [--size-mib 1024] [--repeat 3]

Serves one random file from a separate server process on 127.0.0.1 (sendfile), then
times, best of N:
  floor: curl -s -o FILE URL && openssl dgst -sha256 FILE   (two passes)
  ours:  datamanifest fetch -q (stream, hash while writing, fsync, atomic publish)
and prints MB/s (10^6 bytes per second) side by side, the ratio floor_time / our_time
(>= 1.0 means at least as fast) for the best and the median run, and our peak RSS.
The two tools alternate run by run so that disk write-back noise hits both alike.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datamanifest.testing import start_server_process


def timed(cmd: list[str], cwd: Path | None = None, shell: bool = False) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, shell=shell, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {cmd}")
    return dt, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    size = args.size_mib * 1024 * 1024
    for tool in ("curl", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed for the floor measurement")

    with tempfile.TemporaryDirectory(prefix="dm-bench-") as tmp:
        tmp = Path(tmp)
        served = tmp / "served"
        served.mkdir()
        blob = served / "big.bin"
        h = hashlib.sha256()
        with open(blob, "wb") as f:
            block = os.urandom(16 * 1024 * 1024)
            for i in range(size // len(block)):
                chunk = hashlib.sha256(block[:64] + i.to_bytes(8, "little")).digest() + block[32:]
                f.write(chunk)
                h.update(chunk)
        digest = h.hexdigest()
        server, base_url = start_server_process(served)
        try:
            url = f"{base_url}/big.bin"
            out = tmp / "curl.bin"
            project = tmp / "project"
            project.mkdir()
            (project / "datamanifest.toml").write_text(
                f'[_STORAGE]\ndatasets_dir = "store"\n\n[big]\nuri = "{url}"\n'
                f'checksum = "sha256:{digest}"\n')
            floor, ours, rss = [], [], []
            for _ in range(args.repeat):
                out.unlink(missing_ok=True)
                dt, _ = timed(f"curl -s -o {out} {url} && openssl dgst -sha256 {out}", shell=True)
                floor.append(dt)
                out.unlink(missing_ok=True)
                shutil.rmtree(project / "store", ignore_errors=True)
                dt, peak = timed([sys.executable, "-m", "datamanifest", "fetch", "-q"], cwd=project)
                ours.append(dt)
                rss.append(peak)
            again, _ = timed([sys.executable, "-m", "datamanifest", "fetch", "-q"], cwd=project)
        finally:
            server.terminate()
            server.wait()

    import statistics

    mb = size / 1e6
    best_floor, best_ours = min(floor), min(ours)
    med_floor, med_ours = statistics.median(floor), statistics.median(ours)
    print(f"file: {args.size_mib} MiB over loopback HTTP, best of {args.repeat}")
    print(f"{'':28}{'seconds':>10}{'MB/s':>10}")
    print(f"{'floor: curl + openssl dgst':28}{best_floor:>10.2f}{mb / best_floor:>10.0f}")
    print(f"{'datamanifest fetch':28}{best_ours:>10.2f}{mb / best_ours:>10.0f}")
    print(f"ratio floor/ours: best {best_floor / best_ours:.2f}, median "
          f"{med_floor / med_ours:.2f}  (target >= 1.0)")
    print(f"peak RSS of datamanifest fetch: {max(rss) / 1024:.0f} MB  (target < 150 MB)")
    print(f"repeated fetch, already present: {again:.2f} s")
    print(f"all runs (s): floor {[round(x, 2) for x in floor]}  ours {[round(x, 2) for x in ours]}")


if __name__ == "__main__":
    main()
