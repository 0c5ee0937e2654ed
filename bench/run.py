"""Run every performance benchmark, one at a time, and write one table of their figures.

    python bench/run.py [--only NAME[,NAME]] [--quick] [--timeout SECONDS]
                        [--results bench/results.json] [--markdown bench/results.md]

``make bench`` runs it. Each script of :data:`BENCHMARKS` runs in sequence, in a process of
its own, with ``--json FILE`` (the contract is in bench/contract.py); its output is shown as it
comes. Then:

``bench/results.json``
    ``{"about", "machine": {cores, ram_gib, python, platform, date}, "command", "duration",
    "benchmarks": {name: entry}, "failed": {name: {...}}, "reliability": {...}}``; each entry
    is what its script wrote plus ``measured`` (the date) and ``source``. The documentation's
    Performance page, its charts (bench/charts.py) and the README's figures come from it.
    ``reliability`` (bench/chaos.py, fuzz.py, append_crash.py: ``make reliability``) is kept
    from the file as it was.
``bench/results.md``
    ONE Markdown table: every figure beside its peer and its floor measured in the same run,
    the ratios, the target, whether it holds, and the command that produced it.

A script that fails (exit status, timeout, no JSON, an entry breaking the contract) is a row
saying so, and the runner exits with status 1 once both files are written; that benchmark's
previous entry, if any, stays in results.json with its own date and ``"stale": true`` (the
documentation needs every benchmark it shows). ``--only`` runs some benchmarks and replaces
their entries, keeping the others. ``--quick`` passes ``--quick`` to every script (a smoke run
of the whole chain) and writes to build/bench-quick/ unless told otherwise, never over the
committed figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import os
import platform
import shlex
import subprocess
import sys
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contract  # noqa: E402  (bench/contract.py)
from table import COLUMNS, markdown, ratios  # noqa: E402,F401  (bench/table.py)

ROOT = Path(__file__).resolve().parents[1]
QUICK_DIR = ROOT / "build" / "bench-quick"


@dataclass(frozen=True)
class Benchmark:
    """One script of the table: its name (the key in results.json) and its arguments."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    about: str = ""
    quick_args: tuple[str, ...] = field(default=("--quick",))


# The order of the table (issue 24, point 5). Repeat counts are chosen so that the whole run
# stays near a quarter of an hour on 2 cores; each script's own default is its full case.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("fetch_throughput", "bench/fetch_throughput.py",
              ("--size-mib", "1024", "--repeat", "3"),
              "fetch of one large file beside curl + sha256"),
    Benchmark("fetch_many", "bench/fetch_many.py",
              ("--case", "1000x100", "--case", "20000x10", "--no-pooch", "--repeat", "3"),
              "many small files beside a pooch loop and the floor"),
    Benchmark("tree_checksum", "bench/tree_checksum.py", ("--repeat", "3"),
              "tree checksums beside zarr-checksum"),
    Benchmark("cache_hit", "bench/cache_hit.py", ("--sizes", "10,1000,10000", "--repeat", "300"),
              "produced-dataset hit and miss beside joblib.Memory"),
    Benchmark("list_scaling", "bench/list_scaling.py", ("--sizes", "10000", "--repeat", "5"),
              "list of 10,000 objects, with its peak RSS"),
    Benchmark("virtualize", "bench/virtualize.py", ("--rounds", "3"),
              "chunk-manifest build and full read beside VirtualiZarr, kerchunk, the floor"),
    Benchmark("append_throughput", "bench/append_throughput.py", ("--rounds", "3"),
              "appends beside xarray + zarr, zappend, the floor"),
    Benchmark("check_scaling", "bench/check_scaling.py", ("--repeat", "5"),
              "check of a 10,000-dataset manifest beside a bare TOML parse"),
)

# -- running ----------------------------------------------------------------------------------

def _shown(path: str) -> str:
    p = Path(path).absolute()
    try:
        return os.path.relpath(p, ROOT) if p.is_relative_to(ROOT) else str(p)
    except ValueError:
        return str(p)


def command_of(bench: Benchmark, quick: bool, python: str = sys.executable) -> list[str]:
    """The command line that runs ``bench`` (without ``--json``)."""
    return [python, str(ROOT / bench.script), *(bench.quick_args if quick else bench.args)]


def shown_command(cmd: list[str]) -> str:
    """``cmd`` as a reader types it from the repository root (``.venv/bin/python bench/x.py``)."""
    return " ".join(shlex.quote(c) for c in [_shown(cmd[0]), _shown(cmd[1]), *cmd[2:]])


def run_one(bench: Benchmark, quick: bool, timeout: float, python: str = sys.executable,
            log=print) -> dict:
    """Run one benchmark script; its entry (``ok`` True) or what went wrong (``ok`` False).

    Parameters
    ----------
    bench
        The benchmark.
    quick
        Pass ``--quick`` (and no other argument).
    timeout
        Seconds before the script is stopped (its process group is killed).
    python
        The interpreter that runs the script.
    log
        Called with each line the script prints.

    Returns
    -------
    dict
        ``{"ok", "seconds", "command", "entry" | "error"}``.
    """
    cmd = command_of(bench, quick, python)
    shown = shown_command(cmd)
    tail: deque[str] = deque(maxlen=15)

    def pump(stream) -> None:  # the script's output, shown as it comes
        for line in stream:
            tail.append(line.rstrip("\n"))
            log(f"  {line.rstrip()}")

    with tempfile.TemporaryDirectory(prefix=f"dm-bench-{bench.name}-") as tmp:
        out = Path(tmp) / "entry.json"
        t0 = time.perf_counter()
        proc = subprocess.Popen([*cmd, "--json", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                start_new_session=True)
        reader = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
        reader.start()
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the script and whatever it started
            rc = proc.wait()
        except KeyboardInterrupt:  # its own session: Ctrl-C reached only us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        reader.join(timeout=10)
        seconds = time.perf_counter() - t0
        base = {"seconds": seconds, "command": shown}
        if timed_out:
            return {**base, "ok": False, "error": f"stopped after {timeout:.0f} s (--timeout)"}
        if rc != 0:
            last = next((t for t in reversed(tail) if t.strip()), "")
            return {**base, "ok": False, "error": f"exit status {rc}: {last.strip()[:300]}"}
        if not out.exists():
            return {**base, "ok": False, "error": "wrote no JSON (does it take --json?)"}
        try:
            entry = json.loads(out.read_text(encoding="utf-8"))
        except ValueError as err:
            return {**base, "ok": False, "error": f"its JSON does not parse: {err}"}
    bad = contract.problems(entry)
    if bad:
        return {**base, "ok": False, "error": "its entry breaks the contract: " + "; ".join(bad)}
    for f in entry["figures"]:
        f["command"] = f.get("command") or shown
    return {**base, "ok": True, "entry": entry}


def machine(date: str) -> dict:
    """The machine the figures were measured on."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        ram = None
    return {"cores": os.cpu_count(), "ram_gib": round(ram, 1) if ram else None,
            "python": platform.python_version(), "platform": platform.platform(),
            "date": date}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


_JSON_OPTION = re.compile(r" --json(?:=| )\S+")


def _without_json_option(entry: dict) -> dict:
    """``entry`` with ``--json PATH`` (the runner's temporary file) left out of the commands
    it records, so that each row says what a reader would type."""
    if isinstance(entry.get("command"), str):
        entry["command"] = _JSON_OPTION.sub("", entry["command"])
    entry["figures"] = [{**f, "command": _JSON_OPTION.sub("", f["command"])}
                        if isinstance(f, dict) and isinstance(f.get("command"), str) else f
                        for f in entry.get("figures", [])]
    return entry


def run(benchmarks: list[Benchmark], results_path: Path, markdown_path: Path, *,
        quick: bool = False, timeout: float = 1800.0, python: str = sys.executable,
        command: str = "make bench", log=print) -> int:
    """Run ``benchmarks`` in sequence and write the JSON and the table.

    Parameters
    ----------
    benchmarks
        The scripts to run, in order.
    results_path, markdown_path
        Where results.json and results.md go; entries of benchmarks not run are kept from the
        file at ``results_path``.
    quick
        Pass ``--quick`` to every script.
    timeout
        Seconds each script may take.
    python
        The interpreter that runs the scripts.
    command
        How this run was started (recorded in both files).
    log
        Called with each line of progress.

    Returns
    -------
    int
        0 when every script succeeded, 1 otherwise, 130 after Ctrl-C (the files are written
        in every case, with what was measured).
    """
    try:
        previous = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    now = dt.datetime.now(dt.timezone.utc)
    date = now.date().isoformat()
    t0 = time.perf_counter()
    done: dict[str, dict] = {}
    interrupted = False
    for i, bench in enumerate(benchmarks, 1):
        log(f"[{i}/{len(benchmarks)}] {bench.name}: {bench.about or bench.script}")
        started = time.perf_counter()
        try:
            r = run_one(bench, quick, timeout, python, log)
        except KeyboardInterrupt:
            interrupted = True
            done[bench.name] = {"ok": False, "seconds": time.perf_counter() - started,
                                "command": shown_command(command_of(bench, quick, python)),
                                "error": "interrupted (Ctrl-C); the benchmarks after it not run"}
            break
        done[bench.name] = r
        log(f"[{i}/{len(benchmarks)}] {bench.name}: "
            f"{'done' if r['ok'] else 'FAILED (' + r['error'] + ')'} in {_duration(r['seconds'])}")
    total = time.perf_counter() - t0
    source = "bench/run.py --quick (smoke run)" if quick else command
    entries = dict(previous.get("benchmarks", {}))
    failed = {k: v for k, v in previous.get("failed", {}).items() if k not in done}
    for name, r in done.items():
        if r["ok"]:
            entry = _without_json_option(dict(r["entry"]))
            entry["duration"] = _duration(r["seconds"])
            entry["measured"] = date
            entry["source"] = source
            entries[name] = entry
            failed.pop(name, None)
        else:
            failed[name] = {"command": r["command"], "error": r["error"], "measured": date}
            if name in entries:
                entries[name] = {**entries[name], "stale": True}
    order = list(dict.fromkeys([*(b.name for b in BENCHMARKS), *done, *entries, *failed]))
    results = {
        "about": ("Every performance figure of datamanifest beside its peer and its floor, "
                  "measured in one run of `make bench` (bench/run.py) on the machine below. "
                  "bench/results.md is the same as one table; the documentation's Performance "
                  "page, its charts (bench/charts.py) and the README's figures come from this "
                  "file. `reliability` holds the crash and fuzzing figures of `make reliability`."),
        "machine": machine(now.isoformat(timespec="seconds")),
        "command": source,
        "duration": _duration(total),
        "benchmarks": {n: entries[n] for n in order if n in entries},
        "failed": failed,
    }
    if "reliability" in previous:
        results["reliability"] = previous["reliability"]
    results_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    _write(results_path, json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    _write(markdown_path, markdown(results, order))
    bad = [n for n, r in done.items() if not r["ok"]]
    short = [f"{n}: {f['case']}" for n in done if done[n]["ok"]
             for f in done[n]["entry"]["figures"] if f.get("holds") is False]
    log(f"wrote {_shown(str(results_path))} and {_shown(str(markdown_path))} "
        f"({len(done) - len(bad)} of {len(done)} benchmarks, {_duration(total)})")
    if short:
        log("targets not met: " + "; ".join(short))
    if bad:
        log("FAILED: " + ", ".join(bad))
    if interrupted:
        return 130
    return 1 if bad else 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- the command line ---------------------------------------------------------------------------

def select(only: list[str]) -> list[Benchmark]:
    """The benchmarks named by ``--only`` (all when empty), in the table's order."""
    names = {n.strip() for o in only for n in o.split(",") if n.strip()}
    known = {b.name for b in BENCHMARKS}
    unknown = names - known
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(b.name for b in BENCHMARKS)}")
    return [b for b in BENCHMARKS if not names or b.name in names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="benchmarks: " + ", ".join(b.name for b in BENCHMARKS))
    ap.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]",
                    help="run only these benchmarks (repeatable); the others' entries are kept")
    ap.add_argument("--quick", action="store_true",
                    help="pass --quick to every script: a smoke run of the chain (writes to "
                         "build/bench-quick/ unless --results/--markdown say otherwise)")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds each script may take (default 1800)")
    ap.add_argument("--results", type=Path, help="results.json to write (bench/results.json)")
    ap.add_argument("--markdown", type=Path, help="the table to write (bench/results.md)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    ap.add_argument("--source", help=argparse.SUPPRESS)  # how the run was started (make bench)
    args = ap.parse_args(argv)
    chosen = select(args.only)
    if args.list:
        for b in chosen:
            print(f"{b.name:18} {shown_command(command_of(b, args.quick))}")
        return 0
    folder = QUICK_DIR if args.quick else ROOT / "bench"
    results = args.results or folder / "results.json"
    md = args.markdown or results.with_name("results.md")
    given = list(sys.argv[1:] if argv is None else argv)
    source = args.source or " ".join(["bench/run.py", *map(shlex.quote, given)])
    return run(chosen, results, md, quick=args.quick, timeout=args.timeout, command=source,
               log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
