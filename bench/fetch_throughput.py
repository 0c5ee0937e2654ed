"""Fetch throughput over loopback HTTP versus the floor `curl -o FILE` + `sha256sum FILE`,
and the peak memory of a fetch as the file grows.

Usage: python bench/fetch_throughput.py [--size-mib 1024] [--repeat 5] [--rss-mib 256]
                                        [--quick] [--json PATH]

Serves one random file from a separate server process on 127.0.0.1 (sendfile), then
times, best of N:
  floor: curl -s -o FILE URL && sha256sum FILE   (two passes; openssl dgst if no sha256sum)
  ours:  datamanifest fetch -q (stream, hash while writing, fsync, atomic publish)
and prints MB/s (10^6 bytes per second) side by side, the ratio floor_time / our_time
(>= 1.0 means at least as fast) for the best and the median run, our peak RSS at
``--size-mib`` and at ``--rss-mib`` (memory flat in the file's size: the two within 10%),
and the re-fetch of the file already present. The two tools alternate run by run so that
disk write-back noise hits both alike. ``--json PATH`` writes the benchmark's entry for
bench/results.json (with ``figures``); ``--quick``: 64 MiB and 16 MiB, one run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datamanifest.testing import start_server_process


def timed(cmd: list[str] | str, cwd: Path | None = None, shell: bool = False) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, shell=shell, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {cmd}")
    return dt, usage.ru_maxrss


def make_file(path: Path, size: int) -> str:
    """A random file of ``size`` bytes (a multiple of 16 MiB or smaller); its sha256."""
    h = hashlib.sha256()
    block = os.urandom(min(size, 16 * 1024 * 1024))
    with open(path, "wb") as f:
        for i in range(max(1, size // len(block))):
            chunk = hashlib.sha256(block[:64] + i.to_bytes(8, "little")).digest() + block[32:]
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def project_for(root: Path, url: str, digest: str) -> Path:
    root.mkdir()
    (root / "datamanifest.toml").write_text(
        f'[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n\n[big]\nuri = "{url}"\n'
        f'checksum = "sha256:{digest}"\n')
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rss-mib", type=int, default=256,
                    help="a smaller file whose peak RSS is compared (default 256)")
    ap.add_argument("--quick", action="store_true", help="64 MiB and 16 MiB, one run")
    ap.add_argument("--json", metavar="PATH", help="write the results.json entry here")
    args = ap.parse_args()
    if args.quick:
        args.size_mib, args.rss_mib, args.repeat = 64, 16, 1
    size = args.size_mib * 1024 * 1024
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for the floor measurement")
    hasher = "sha256sum" if shutil.which("sha256sum") else "openssl dgst -sha256"
    command = ".venv/bin/python bench/fetch_throughput.py " + shlex.join(
        a for i, a in enumerate(sys.argv[1:])
        if a != "--json" and (i == 0 or sys.argv[i] != "--json"))
    command = command.strip()
    dm = [sys.executable, "-m", "datamanifest", "fetch", "-q"]

    with tempfile.TemporaryDirectory(prefix="dm-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        served = tmp / "served"
        served.mkdir()
        digest = make_file(served / "big.bin", size)
        small_digest = make_file(served / "small.bin", args.rss_mib * 1024 * 1024)
        server, base_url = start_server_process(served)
        try:
            url = f"{base_url}/big.bin"
            out = tmp / "curl.bin"
            project = project_for(tmp / "project", url, digest)
            small = project_for(tmp / "small", f"{base_url}/small.bin", small_digest)
            floor, ours, rss = [], [], []
            for _ in range(args.repeat):
                out.unlink(missing_ok=True)
                os.sync()
                dt, _ = timed(f"curl -s -o {out} {url} && {hasher} {out}", shell=True)
                floor.append(dt)
                out.unlink(missing_ok=True)
                shutil.rmtree(project / "store", ignore_errors=True)
                os.sync()
                dt, peak = timed(dm, cwd=project)
                ours.append(dt)
                rss.append(peak)
            again, _ = timed(dm, cwd=project)
            _, small_rss = timed(dm, cwd=small)
        finally:
            server.terminate()
            server.wait()

    mb = size / 1e6
    best_floor, best_ours = min(floor), min(ours)
    med_floor, med_ours = statistics.median(floor), statistics.median(ours)
    big_rss, small_rss = max(rss) / 1024, small_rss / 1024
    flat = big_rss <= 1.1 * small_rss
    print(f"file: {args.size_mib} MiB over loopback HTTP, best of {args.repeat}")
    print(f"{'':30}{'seconds':>10}{'MB/s':>10}")
    print(f"{'floor: curl + ' + hasher.split()[0]:30}{best_floor:>10.2f}{mb / best_floor:>10.0f}")
    print(f"{'datamanifest fetch':30}{best_ours:>10.2f}{mb / best_ours:>10.0f}")
    print(f"ratio floor/ours: best {best_floor / best_ours:.2f}, median "
          f"{med_floor / med_ours:.2f}  (target >= 1.0)")
    print(f"peak RSS of datamanifest fetch: {small_rss:.0f} MB at {args.rss_mib} MiB, "
          f"{big_rss:.0f} MB at {args.size_mib} MiB  (flat: {flat})")
    print(f"repeated fetch, already present: {again:.2f} s")
    print(f"all runs (s): floor {[round(x, 2) for x in floor]}  ours {[round(x, 2) for x in ours]}")
    if not args.json:
        return
    size_label = f"{args.size_mib // 1024} GiB" if args.size_mib % 1024 == 0 \
        else f"{args.size_mib} MiB"
    floor_name = f"curl -o + {hasher.split()[0]} (two passes)"
    figures = [
        {"case": f"one {size_label} file", "unit": "s", "ours": round(best_ours, 3),
         "peer": None, "peer_value": None, "floor": floor_name, "floor_value": round(best_floor, 3),
         "target": "<= floor", "holds": best_ours <= best_floor, "command": command},
        {"case": f"one {size_label} file", "unit": "MB/s", "ours": round(mb / best_ours),
         "peer": None, "peer_value": None, "floor": floor_name,
         "floor_value": round(mb / best_floor), "target": None, "holds": None,
         "command": command},
        {"case": f"peak RSS, one {args.rss_mib} MiB file", "unit": "MB",
         "ours": round(small_rss), "peer": None, "peer_value": None, "floor": None,
         "floor_value": None, "target": None, "holds": None, "command": command},
        {"case": f"peak RSS, one {size_label} file", "unit": "MB", "ours": round(big_rss),
         "peer": None, "peer_value": None, "floor": None, "floor_value": None,
         "target": f"flat in file size (within 10% of the {args.rss_mib} MiB file's)",
         "holds": flat, "command": command},
        {"case": f"one {size_label} file, re-fetch, present", "unit": "s",
         "ours": round(again, 3), "peer": None, "peer_value": None, "floor": None,
         "floor_value": None, "target": None, "holds": None, "command": command},
    ]
    entry = {
        "title": f"Fetching {size_label} over loopback HTTP",
        "command": command,
        "duration": "about a minute",
        "what": (f"One random {size_label} file served by a separate process on 127.0.0.1. "
                 f"The floor downloads with curl and then hashes with {hasher.split()[0]} "
                 "(two passes); `datamanifest fetch` hashes while it writes, fsyncs and "
                 f"publishes atomically. Tools alternate run by run; best of {args.repeat}. "
                 f"Peak RSS also at {args.rss_mib} MiB: memory is flat in the file's size."),
        "columns": ["tool", "seconds", "MB/s", "peak RSS"],
        "rows": [[f"floor: `curl -o` + `{hasher}`", f"{best_floor:.2f}",
                  f"{mb / best_floor:.0f}", "-"],
                 ["`datamanifest fetch`", f"{best_ours:.2f}", f"{mb / best_ours:.0f}",
                  f"{big_rss:.0f} MB ({small_rss:.0f} MB at {args.rss_mib} MiB)"],
                 ["`datamanifest fetch`, the file already present", f"{again:.2f}", "-", "-"]],
        "chart": {"unit": "seconds", "better": "lower",
                  "bars": [{"label": f"curl + {hasher.split()[0]} (floor)",
                            "value": round(best_floor, 3)},
                           {"label": "datamanifest fetch", "value": round(best_ours, 3),
                            "ours": True},
                           {"label": "datamanifest fetch, present", "value": round(again, 3),
                            "ours": True}]},
        "figures": figures,
    }
    Path(args.json).write_text(json.dumps(entry, indent=1) + "\n")


if __name__ == "__main__":
    main()
