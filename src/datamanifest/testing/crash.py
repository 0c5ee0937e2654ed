"""The crash and race harness: one trial runner for every command that writes.

A *scenario* (:class:`Scenario`) is a folder -- the *base* -- and one command run in it by
a child process. A *trial* copies the base to ``<work>/trial``, starts the child in its own
process group, stops it, and asks the scenario to judge what the next user finds:

* :func:`sweep` -- SIGKILL (or SIGINT: a Ctrl-C) just before the n-th file-system mutation
  of one run, for every n or a sample (:func:`sampled`); the fault layer
  (:mod:`datamanifest.faults`) counts the mutations, :func:`trace` lists them;
* :func:`random_kills` -- SIGKILL to the whole process group (the command with its helpers:
  rsync, ssh, hashing workers, a push's receiver) at a moment drawn from U(0, D) after the
  child is ready, D the run time :func:`calibrate` measured;
* :func:`race` -- several children released together.

Whatever killed the child, the runner then kills what is left of its process group, so no
orphan writes while the trial is judged. The verdicts (:class:`Verdict`):

consistent
    the scenario's invariant holds right after the kill (nothing looks complete and is
    not; documents parse and keep their comments);
continued
    the same command, run again without faults, succeeds and leaves the expected result;
clean
    and nothing is left behind (staging folders, locks, partial downloads, journals).

:func:`summary` counts them: ``corrupt`` (not consistent) and ``blocked`` (consistent, the
next run failed) must be 0. Scenarios for the project's commands are in
:mod:`datamanifest.testing.scenarios` and :mod:`datamanifest.testing.commands`, for appends
in :mod:`datamanifest.testing.appends`; ``design/2026-12-02-reliability.md`` explains the
method.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import faults
from .servers import first_line

#: the child: imports what its command needs, says READY, waits for GO when asked, runs
#: ``--python <script>``, ``--append <target> <source> <step>`` or the CLI with its argv
CHILD = r"""
import os, runpy, sys
mode = sys.argv[1]
if mode == "--append":
    import datamanifest.appends as A
else:
    from datamanifest.cli import main
    import datamanifest.fetch, datamanifest.tree, datamanifest.store.state, tomlkit, httpx
    if mode == "--python":
        import datamanifest.cache, pickle
sys.stdout.write("READY\n"); sys.stdout.flush()
if os.environ.get("DM_CRASH_GO"):
    sys.stdin.readline()
if mode == "--python":
    runpy.run_path(sys.argv[2], run_name="__main__")
elif mode == "--append":
    target, source, step = sys.argv[2:5]
    try:
        A.append(target, source, append_step=step or None,
                 lock={"wait": os.environ.get("DM_CRASH_NOWAIT") != "1", "stale_age": 5})
    except Exception as e:  # the error is the result
        print("ERROR", getattr(e, "code", type(e).__name__), e, flush=True)
        sys.exit(3)
    except KeyboardInterrupt:  # a SIGINT (DATAMANIFEST_FAULT_SIGNAL=INT), as the CLI exits
        print("INTERRUPTED", flush=True)
        sys.exit(130)
    print("DONE", flush=True)
else:
    main(args=sys.argv[1:], prog_name="datamanifest")
"""

#: the lock stale age of every child (seconds): short, so a dead holder's lock is tested to
#: be reclaimed within it
STALE_AGE = 1.0
#: seconds a child may run
TIMEOUT = 120.0


@dataclass
class Verdict:
    """The verdicts of one trial (not a fetch's :class:`~datamanifest.fetch.report.Outcome`).

    Attributes
    ----------
    point : str
        Where the child was stopped (``"12 rename big.bin"``, ``"83.1 ms"``).
    killed : bool
        The child was stopped before it finished (SIGKILL, or exit 130 after a SIGINT).
    consistent, continued, clean : bool
        The verdicts of the module docstring.
    reason : str
        Why a verdict failed ('' when all held, or a note such as a lock waited out).
    length : int or None
        Appends: the target's length after the kill (None: not an append, or unreadable).
    """

    point: str
    killed: bool
    consistent: bool
    continued: bool = False
    clean: bool = False
    reason: str = ""
    length: int | None = None

    @property
    def corrupt(self) -> bool:
        """The state after the kill broke the scenario's invariant."""
        return not self.consistent

    @property
    def blocked(self) -> bool:
        """Consistent, but the next run did not succeed."""
        return self.consistent and not self.continued


class Scenario:
    """A command over a base folder, and its judge. Subclasses set :attr:`name` and
    implement :meth:`command` and :meth:`judge`; the rest has defaults."""

    #: the scenario's name in reports
    name: str

    def command(self, trial: Path) -> list[str]:
        """The child's argv: CLI arguments, ``["--python", script]`` or ``["--append",
        target, source, step]``."""
        raise NotImplementedError

    def cwd(self, trial: Path) -> Path:
        """The child's working folder (default: the trial)."""
        return trial

    def fault_only(self, trial: Path) -> list[Path]:
        """Folders whose mutations the fault layer counts (default: the trial)."""
        return [trial]

    def place(self, trial: Path, fault: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The argv and the extra environment of a run with the fault environment
        ``fault``. The default puts it in the child's environment (the command and the
        helpers it starts); a scenario may carry it elsewhere (a far receiver's command)."""
        return self.command(trial), fault

    def environment(self, trial: Path) -> dict[str, str]:
        """Variables every run of the scenario adds to the isolated environment."""
        return {}

    def during(self, trial: Path, child: subprocess.Popen, n: int) -> None:
        """Called by :func:`sweep` once the child is released, before it is awaited: a
        scenario whose fault point is in another process can stop the child here (the
        default does nothing)."""

    def partner(self, trial: Path) -> list[str] | None:
        """A second command started with the first and never killed (None: none)."""
        return None

    def judge(self, trial: Path, point: str, killed: bool, *, partner_ok: bool = True
              ) -> Verdict:
        """The verdicts on ``trial`` after the child was stopped at ``point``."""
        raise NotImplementedError

    def interrupted(self, trial: Path, result: subprocess.CompletedProcess) -> str:
        """After a SIGINT (LCK-008): '' when the child exited 130 without a traceback; a
        scenario adds its own checks (no lock held)."""
        if result.returncode != 130:
            return f"rc {result.returncode} after a SIGINT: {result.stderr.strip()[-300:]}"
        if "Traceback" in result.stderr:
            return f"a traceback after a SIGINT: {result.stderr.strip()[-400:]}"
        return ""


# --------------------------------------------------------------------------- running


def isolated_env(trial: Path, **extra: str) -> dict[str, str]:
    """This process's environment without datamanifest's and XDG variables, with
    ``HOME`` (and the XDG folders) in ``<trial>/home``, the lock stale age
    :data:`STALE_AGE`, and ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATAMANIFEST_", "XDG_", "DM_CRASH_")) and k != "NETRC"}
    home = trial / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local"),
               NO_COLOR="1", DATAMANIFEST_LOCK_STALE_AGE=str(STALE_AGE))
    env.update(extra)
    return env


def start(scenario: Scenario, trial: Path, argv: Sequence[str] | None = None, *,
          go: bool = False, cwd: Path | None = None, env: Mapping[str, str] | None = None
          ) -> subprocess.Popen:
    """Start a child in its own process group and wait until it is READY.

    Parameters
    ----------
    scenario : Scenario
        Gives the working folder and the environment.
    trial : Path
        The trial folder.
    argv : sequence of str, optional
        The child's argv (default: the scenario's command).
    go : bool
        Wait for a line on stdin (``GO``) after READY, so a caller can time the start.
    cwd : Path, optional
        Another working folder.
    env : mapping, optional
        Extra variables.

    Returns
    -------
    subprocess.Popen
        The child (text mode; stdin, stdout and stderr piped).

    Raises
    ------
    RuntimeError
        The child failed before READY.
    """
    extra = {**scenario.environment(trial), **(env or {})}
    if go:
        extra["DM_CRASH_GO"] = "1"
    p = subprocess.Popen([sys.executable, "-c", CHILD,
                          *(scenario.command(trial) if argv is None else argv)],
                         cwd=cwd or scenario.cwd(trial), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env=isolated_env(trial, **extra))
    line = first_line(p)
    if line.strip() != "READY":
        kill_group(p)
        raise RuntimeError(f"the child did not start: {line}{p.stderr.read()}")
    return p


def kill_group(p: subprocess.Popen) -> None:
    """SIGKILL the child's process group (whatever of it is left)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def finish(p: subprocess.Popen, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Wait for the child, then kill what is left of its process group."""
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        kill_group(p)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def run(scenario: Scenario, trial: Path, argv: Sequence[str] | None = None, *,
        cwd: Path | None = None, timeout: float = TIMEOUT, **env: str
        ) -> subprocess.CompletedProcess:
    """Run one child to its end (see :func:`start`) and return its result."""
    return finish(start(scenario, trial, argv, cwd=cwd, env=env), timeout)


def _go(*procs: subprocess.Popen | None) -> None:
    for p in procs:
        if p is not None:
            p.stdin.write("GO\n")
            p.stdin.flush()


def fresh(base: Path, work: Path) -> Path:
    """A new trial: ``<work>/trial``, a copy of ``base`` (links kept as links)."""
    trial = work / "trial"
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(base, trial, symlinks=True)
    return trial


def trace(scenario: Scenario, base: Path, work: Path) -> list[tuple[int, str, str]]:
    """The file-system mutations of one run of the scenario's command in a fresh trial.

    Returns
    -------
    list of (int, str, str)
        ``(n, event, path)`` (:func:`datamanifest.testing.faults.read_trace`).

    Raises
    ------
    RuntimeError
        The run failed.
    """
    trial = fresh(base, work)
    tfile = work / "trace.txt"
    tfile.unlink(missing_ok=True)
    argv, env = scenario.place(trial, faults.environment(trace=tfile,
                                                         only=scenario.fault_only(trial)))
    r = run(scenario, trial, argv, **env)
    if r.returncode != 0:
        raise RuntimeError(f"the calibration run of {scenario.name} failed: "
                           f"{r.stdout[-300:]}{r.stderr[-600:]}")
    return faults.read_trace(tfile)


def sweep_seed() -> str:
    """The seed of the sampled sweeps (:func:`sampled`): ``DATAMANIFEST_SWEEP_SEED``, else
    today's UTC date, so that successive days' runs of ``make test`` kill at different
    points and together cover every one; a failure is repeated with the seed it printed."""
    import datetime as _dt

    return (os.environ.get("DATAMANIFEST_SWEEP_SEED")
            or _dt.datetime.now(_dt.timezone.utc).date().isoformat())


def sampled(n: int, stride: int, name: str = "", seed: str | None = None) -> list[int]:
    """Kill points for a short sweep of ``n`` mutations: every ``stride``-th from an offset
    that differs between scenario names and seeds (default :func:`sweep_seed`), and the
    last one."""
    if n == 0:
        return []
    seed = sweep_seed() if seed is None else seed
    offset = zlib.crc32(f"{name}\0{seed}".encode()) % stride
    return sorted({*range(1 + offset % n, n + 1, stride), n})


def sweep(scenario: Scenario, base: Path, work: Path, points: Sequence[int] | None = None, *,
          sig: str = "KILL", log: Callable[[Verdict], None] | None = None,
          lines: Sequence[tuple[int, str, str]] | None = None) -> list[Verdict]:
    """Stop the command just before mutation n, for every n of one run (or ``points``).

    Parameters
    ----------
    scenario : Scenario
        What runs, and its judge.
    base : Path
        The base folder each trial copies.
    work : Path
        A folder for the trials and the trace.
    points : sequence of int, optional
        The mutations to stop before (1-based; default: all of :func:`trace`).
    sig : {"KILL", "INT"}
        SIGKILL, or a SIGINT there (a Ctrl-C: the run must also stop cleanly,
        :meth:`Scenario.interrupted`).
    log : callable, optional
        Called with each outcome as it is judged.
    lines : sequence, optional
        The scenario's :func:`trace`, when the caller has it already (it names the points;
        default: traced here).

    Returns
    -------
    list of Verdict
    """
    lines = trace(scenario, base, work) if lines is None else lines
    out = []
    for n in points or range(1, len(lines) + 1):
        trial = fresh(base, work)
        argv, env = scenario.place(trial, faults.environment(
            at=n, only=scenario.fault_only(trial), signal=sig))
        p = start(scenario, trial, argv, go=True, env=env)
        partner = scenario.partner(trial)
        q = start(scenario, trial, partner, go=True) if partner else None
        _go(p, q)
        scenario.during(trial, p, n)
        r = finish(p)
        partner_ok = q is None or finish(q).returncode == 0
        _, event, where = lines[n - 1] if n <= len(lines) else (n, "?", "")
        point = f"{n} {event} {Path(where).name}".strip()
        stopped = r.returncode == (130 if sig == "INT" else -signal.SIGKILL)
        why = scenario.interrupted(trial, r) if sig == "INT" else ""
        o = Verdict(point, stopped, False, reason=why) if why else \
            scenario.judge(trial, point, stopped, partner_ok=partner_ok)
        out.append(o)
        if log:
            log(o)
    return out


def calibrate(scenario: Scenario, base: Path, work: Path, runs: int = 3) -> float:
    """Median seconds from GO to the end of one run (the window of random kills)."""
    times = []
    for _ in range(runs):
        trial = fresh(base, work)
        p = start(scenario, trial, go=True)
        t0 = time.perf_counter()
        _go(p)
        finish(p)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def random_kills(scenario: Scenario, base: Path, work: Path, trials: int, *, seed: int = 0,
                 log: Callable[[Verdict], None] | None = None,
                 calibration_runs: int = 3) -> list[Verdict]:
    """SIGKILL the child's process group at a moment drawn from U(0, D) after GO.

    Parameters
    ----------
    scenario, base, work
        As for :func:`sweep`.
    trials : int
        How many kills.
    seed : int
        Seed of the moments.
    log : callable, optional
        Called with each outcome.
    calibration_runs : int
        Runs whose median run time is the window (:func:`calibrate`).

    Returns
    -------
    list of Verdict
        ``point`` is the delay (milliseconds).
    """
    rng = random.Random(seed)
    window = calibrate(scenario, base, work, calibration_runs)
    out = []
    for _ in range(trials):
        trial = fresh(base, work)
        p = start(scenario, trial, go=True)
        partner = scenario.partner(trial)
        q = start(scenario, trial, partner, go=True) if partner else None
        delay = rng.uniform(0, window)
        _go(p, q)
        time.sleep(delay)
        kill_group(p)
        r = finish(p, 60)
        partner_ok = q is None or finish(q).returncode == 0
        o = scenario.judge(trial, f"{delay * 1000:.1f} ms", r.returncode == -signal.SIGKILL,
                           partner_ok=partner_ok)
        out.append(o)
        if log:
            log(o)
    return out


def race(scenario: Scenario, trial: Path, argvs: Sequence[Sequence[str]], *, seed: int = 0,
         spread: float = 0.02, env: Mapping[str, str] | None = None
         ) -> list[subprocess.CompletedProcess]:
    """Start one child per argv in ``trial``, release them in a shuffled order up to
    ``spread`` seconds apart, and return their results in the order of ``argvs``."""
    rng = random.Random(seed)
    procs = [start(scenario, trial, argv, go=True, env=env) for argv in argvs]
    order = list(range(len(procs)))
    rng.shuffle(order)
    for i in order:
        _go(procs[i])
        time.sleep(rng.uniform(0, spread))
    return [finish(p) for p in procs]


def summary(outcomes: Sequence[Verdict]) -> dict[str, int]:
    """Counts: ``trials``, ``killed``, ``corrupt``, ``blocked``, ``left_over`` (continued,
    not clean), ``recovered`` (all three verdicts held) and ``waited`` (the next run
    waited out a dead holder's lock)."""
    return {"trials": len(outcomes), "killed": sum(o.killed for o in outcomes),
            "corrupt": sum(o.corrupt for o in outcomes),
            "blocked": sum(o.blocked for o in outcomes),
            "left_over": sum(o.continued and not o.clean for o in outcomes),
            "recovered": sum(o.continued and o.clean for o in outcomes),
            "waited": sum(o.reason == "waited out a busy lock" for o in outcomes)}


def as_json(outcomes: Sequence[Verdict]) -> list[dict[str, Any]]:
    """The outcomes as JSON-ready dictionaries."""
    return [{"point": o.point, "killed": o.killed, "consistent": o.consistent,
             "continued": o.continued, "clean": o.clean, "reason": o.reason,
             **({"length": o.length} if o.length is not None else {})} for o in outcomes]


__all__ = ["Verdict", "Scenario", "CHILD", "STALE_AGE", "isolated_env", "start", "run",
           "finish", "kill_group", "fresh", "trace", "sampled", "sweep", "calibrate",
           "random_kills", "race", "summary", "as_json"]
