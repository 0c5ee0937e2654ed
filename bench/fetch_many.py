"""Fetching many small files over loopback HTTP: `datamanifest fetch` beside a pooch loop.

Usage: python bench/fetch_many.py [--files 1000] [--size-kib 100] [--jobs 8]

Serves N random files from a separate server process on 127.0.0.1, then times (fresh
processes, each into an empty store):
  pooch:         a serial loop of pooch.retrieve(url, known_hash) over the N files
  datamanifest:  datamanifest fetch -q --jobs J, a manifest of N datasets with checksums
  again:         the same fetch with everything present (no network, no re-hashing)
Targets: at least 4x faster than the pooch loop; the repeated fetch under 0.5 s.
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

POOCH_LOOP = """
import sys, pooch
urls = [l.split() for l in open(sys.argv[1])]
for url, digest in urls:
    pooch.retrieve(url, known_hash="sha256:" + digest, path=sys.argv[2], progressbar=False)
"""


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    os.sync()  # no run pays for the write-back of files an earlier step wrote
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{proc.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size-kib", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dm-many-") as tmp:
        tmp = Path(tmp)
        served = tmp / "served"
        served.mkdir()
        lines, body = [], ["[_STORAGE]", 'datasets_dir = "store"', ""]
        block = os.urandom(args.size_kib * 1024)
        server, base_url = start_server_process(served)
        try:
            base = base_url
            for i in range(args.files):
                data = i.to_bytes(8, "little") + block[8:]
                (served / f"f{i:05d}.bin").write_bytes(data)
                digest = hashlib.sha256(data).hexdigest()
                lines.append(f"{base}/f{i:05d}.bin {digest}")
                body += [f"[f{i:05d}]", f'uri = "{base}/f{i:05d}.bin"',
                         f'checksum = "sha256:{digest}"', ""]
            (tmp / "urls.txt").write_text("\n".join(lines) + "\n")
            (tmp / "loop.py").write_text(POOCH_LOOP)
            pooch_s = timed([sys.executable, str(tmp / "loop.py"), str(tmp / "urls.txt"),
                             str(tmp / "pooch-cache")])
            project = tmp / "project"
            project.mkdir()
            (project / "datamanifest.toml").write_text("\n".join(body))
            ours = timed([sys.executable, "-m", "datamanifest", "fetch", "-q", "--jobs",
                          str(args.jobs)], cwd=project)
            again = timed([sys.executable, "-m", "datamanifest", "fetch", "-q"], cwd=project)
            # a second, fresh project with the same manifest (nothing present yet)
            project4 = tmp / "project4"
            project4.mkdir()
            shutil.copy(project / "datamanifest.toml", project4 / "datamanifest.toml")
            ours4 = timed([sys.executable, "-m", "datamanifest", "fetch", "-q"], cwd=project4)
        finally:
            server.terminate()
            server.wait()
    print(f"{args.files} files of {args.size_kib} KiB over loopback HTTP")
    print(f"  pooch.retrieve serial loop          {pooch_s:7.2f} s")
    print(f"  datamanifest fetch --jobs {args.jobs:<2}         {ours:7.2f} s   "
          f"{pooch_s / ours:5.1f}x faster (target >= 4x)")
    print(f"  datamanifest fetch (default jobs 4)  {ours4:7.2f} s   {pooch_s / ours4:5.1f}x faster")
    print(f"  repeated fetch, all present          {again:7.2f} s   (target < 0.5 s)")


if __name__ == "__main__":
    main()
