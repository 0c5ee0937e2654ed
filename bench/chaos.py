"""Crash sweeps and random kills of the commands that write (issue 13, design/2026-12-02-reliability.md).

For each scenario -- `fetch` of a file, an archive with extract, a uris folder, a git
source, checksums auto-filled into a commented manifest, a state-file merge beside a
concurrent writer; `rm` of a file and a folder; `mv` to another store root; `add`; a
produced dataset (`@datamanifest.cached`, two results); `push` of a file and an extracted
archive to a folder (the kill lands in the receiving process, which inherits the fault
variable); `tree -o`; `virtualize -o` --
SIGKILL just before every file-system mutation of one run (--stride 1), then at
--random moments drawn from U(0, D) after the child is ready (D: the calibrated run
time). Prints one row per run: trials, killed, corrupt, blocked, left over, recovered
(goal: corrupt 0, blocked 0). --json writes every outcome.

    .venv/bin/python bench/chaos.py                    # the full run (200 random kills per command)
    .venv/bin/python bench/chaos.py --random 20 --only file,archive
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from datamanifest.chaos import crash
from datamanifest.testing import LoopbackServer

ORDER = ["file", "archive", "uris", "git", "autofill", "state", "rm", "mv", "add", "produce",
         "push", "tree", "virtualize"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=200,
                    help="random kills per command, shared by its scenarios (fetch has six)")
    ap.add_argument("--stride", type=int, default=1, help="sweep every n-th mutation")
    ap.add_argument("--only", default=",".join(ORDER), help="comma-separated scenarios")
    ap.add_argument("--size", type=int, default=4 << 20, help="bytes of the large file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write every outcome to this file")
    args = ap.parse_args()
    rows, detail = [], {}
    with tempfile.TemporaryDirectory(prefix="dm-chaos-") as tmp:
        work = Path(tmp)
        (work / "served").mkdir()
        with LoopbackServer(work / "served") as srv:
            scenarios = crash.build(work, srv.url, work / "served", size=args.size)
            for name in args.only.split(","):
                scenario, text = scenarios[name]
                base = crash.make_base(work, scenario, text)
                bad = []
                t0 = time.perf_counter()
                n = len(crash.trace(base, work, scenario))
                swept = crash.sweep(base, work, scenario, text,
                                    points=list(range(1, n + 1, args.stride)),
                                    log=lambda o: bad.append(o) if not (o.continued and o.clean)
                                    else None)
                rows.append((name, f"sweep of {n} mutations", crash.summary(swept),
                             time.perf_counter() - t0))
                print(_row(*rows[-1]), flush=True)
                t0 = time.perf_counter()
                same = [n for n in ORDER if scenarios[n][0].argv[0] == scenario.argv[0]]
                share = -(-args.random // len(same))  # ceil: at least --random per command
                rand = crash.random_kills(base, work, scenario, text, share,
                                          seed=args.seed,
                                          log=lambda o: bad.append(o)
                                          if not (o.continued and o.clean) else None)
                rows.append((name, "random kills", crash.summary(rand),
                             time.perf_counter() - t0))
                print(_row(*rows[-1]), flush=True)
                for o in bad:
                    print(f"    {name} @ {o.point}: {o.reason}", flush=True)
                detail[name] = {"sweep": crash.as_json(swept), "random": crash.as_json(rand)}
    total = {k: sum(r[2][k] for r in rows) for k in rows[0][2]} if rows else {}
    print(_row("all", "", total, sum(r[3] for r in rows)))
    if args.json:
        args.json.write_text(json.dumps({"rows": [[r[0], r[1], r[2]] for r in rows],
                                         "outcomes": detail}, indent=1))
    return 0 if total and total["corrupt"] == 0 and total["blocked"] == 0 else 1


def _row(name: str, what: str, c: dict, seconds: float) -> str:
    return (f"{name:9} {what:24} trials {c['trials']:4}  killed {c['killed']:4}  "
            f"corrupt {c['corrupt']}  blocked {c['blocked']}  left over {c['left_over']}  "
            f"recovered {c['recovered']:4}  waited {c.get('waited', 0)}  ({seconds:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
