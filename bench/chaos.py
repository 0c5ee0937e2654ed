"""Crash sweeps and random kills of every command that writes (issues 13 and 23).

The scenarios are datamanifest.testing.commands: `fetch` of a file, an archive with
extract, a uris folder, a git source, checksums auto-filled into a commented manifest, a
state-file merge beside a concurrent writer; `rm`; `mv` to another store root; `add`; a
produced dataset (`@datamanifest.cached`); `push` to a folder (the kill lands in the
receiving process); `tree -o`; `virtualize -o`; `update-checksums --refetch`; `refresh
--scan`; `export`; and through a real sshd on 127.0.0.1 `pull`, and `push` with the kill
landing in the sender and, separately, in the far receiver. Each is killed (SIGKILL)
just before every file-system mutation of one run (--stride 1), then at --random moments
drawn from U(0, D) after the child is ready (D: the calibrated run time), the whole
process group at once. Prints one row per run: trials, killed, corrupt, blocked, left
over, recovered (goal: corrupt 0, blocked 0). --json writes the counts and every outcome.

    .venv/bin/python bench/chaos.py                    # the full run (200 random kills per command)
    .venv/bin/python bench/chaos.py --random 0         # the sweeps only
    .venv/bin/python bench/chaos.py --random 20 --only file,archive
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from datamanifest.testing import LoopbackServer, Unavailable, commands, crash, servers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=200,
                    help="random kills per command, shared by its scenarios (fetch has six)")
    ap.add_argument("--stride", type=int, default=1, help="sweep every n-th mutation")
    ap.add_argument("--only", default=",".join(commands.ORDER), help="comma-separated scenarios")
    ap.add_argument("--size", type=int, default=4 << 20, help="bytes of the large file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the counts and every outcome to this file")
    args = ap.parse_args()
    rows, detail = [], {}
    with tempfile.TemporaryDirectory(prefix="dm-chaos-") as tmp:
        work = Path(tmp)
        (work / "served").mkdir()
        with LoopbackServer(work / "served") as srv:
            try:
                ssh_cm = servers.sshd(work / "ssh")
                ssh = ssh_cm.__enter__()
            except Unavailable as e:
                print(f"no SSH scenarios: {e}", flush=True)
                ssh_cm = ssh = None
            try:
                scenarios = commands.build(work, srv.url, work / "served", size=args.size,
                                           ssh=ssh)
                for name in args.only.split(","):
                    if name not in scenarios:
                        continue
                    rows += _one(scenarios, name, work, args, detail)
            finally:
                if ssh_cm is not None:
                    ssh_cm.__exit__(None, None, None)
    total = {k: sum(r[2][k] for r in rows) for k in rows[0][2]} if rows else {}
    print(_row("all", "", total, sum(r[3] for r in rows)))
    if args.json:
        args.json.write_text(json.dumps({"rows": [[r[0], r[1], r[2], round(r[3], 1)]
                                                  for r in rows], "outcomes": detail},
                                        indent=1))
    return 0 if total and total["corrupt"] == 0 and total["blocked"] == 0 else 1


def _one(scenarios: dict, name: str, work: Path, args: argparse.Namespace,
         detail: dict) -> list[tuple]:
    scenario = scenarios[name]
    base = scenario.make_base(work)
    bad: list[crash.Verdict] = []

    def log(o: crash.Verdict) -> None:
        if not (o.continued and o.clean):
            bad.append(o)

    rows = []
    t0 = time.perf_counter()
    lines = crash.trace(scenario, base, work)
    n = len(lines)
    swept = crash.sweep(scenario, base, work, list(range(1, n + 1, args.stride)), log=log,
                        lines=lines)
    rows.append((name, f"sweep of {n} mutations", crash.summary(swept),
                 time.perf_counter() - t0))
    print(_row(*rows[-1]), flush=True)
    rand: list[crash.Verdict] = []
    if args.random:
        t0 = time.perf_counter()
        verb = scenario.argv[0]
        same = [s for s in scenarios.values() if s.argv[0] == verb]
        share = -(-args.random // len(same))  # ceil: at least --random per command
        rand = crash.random_kills(scenario, base, work, share, seed=args.seed, log=log)
        rows.append((name, "random kills", crash.summary(rand), time.perf_counter() - t0))
        print(_row(*rows[-1]), flush=True)
    for o in bad:
        print(f"    {name} @ {o.point}: {o.reason}", flush=True)
    detail[name] = {"sweep": crash.as_json(swept), "random": crash.as_json(rand)}
    return rows


def _row(name: str, what: str, c: dict, seconds: float) -> str:
    return (f"{name:18} {what:24} trials {c['trials']:4}  killed {c['killed']:4}  "
            f"corrupt {c['corrupt']}  blocked {c['blocked']}  left over {c['left_over']}  "
            f"recovered {c['recovered']:4}  waited {c.get('waited', 0)}  ({seconds:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
