"""Crash sweeps and concurrency of every command that writes (issues 13 and 23; the short run
of bench/chaos.py). Every trial kills a real child process (its whole process group) and
judges the project the next user finds (datamanifest.testing.crash, the scenarios of
datamanifest.testing.commands)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer, commands, crash
from datamanifest.testing.scenarios import LEFTOVER, comments

from .conftest import run_cli, sha256_of


#: `make test` kills before every STRIDE-th mutation (bench/chaos.py before every one), from
#: an offset that moves with the sweep seed (crash.sweep_seed): each day's runs kill elsewhere
STRIDE = 14
#: the SSH scenarios are slower per trial (ssh logins, rsync): a sparser sample
SSH_STRIDE = 90


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    work = tmp_path_factory.mktemp("chaos")
    (work / "served").mkdir()
    with LoopbackServer(work / "served") as srv:
        yield work, commands.build(work, srv.url, work / "served", size=1 << 20)


@pytest.fixture(scope="module")
def chaos_ssh(tmp_path_factory, sshd):
    """The scenarios with the SSH ones (a real sshd on 127.0.0.1)."""
    work = tmp_path_factory.mktemp("chaos-ssh")
    (work / "served").mkdir()
    ssh = {**sshd, "ssh": os.environ["DATAMANIFEST_SSH"]}
    with LoopbackServer(work / "served") as srv:
        yield work, commands.build(work, srv.url, work / "served", size=1 << 20, ssh=ssh)


def _all_recovered(outcomes):
    bad = [(o.point, o.reason) for o in outcomes if not (o.continued and o.clean)]
    assert not bad, bad
    counts = crash.summary(outcomes)
    assert counts["corrupt"] == counts["blocked"] == counts["left_over"] == 0
    assert counts["recovered"] == counts["trials"] > 0


def _sweep(work, scenario, stride, *, sig="KILL", killed=True, also=()):
    """A sampled sweep (none with ``stride`` 0), plus the first (``which`` 0) or last (-1)
    mutation matching each ``(event, name prefix, which)`` of ``also`` (a point a
    regression was found at)."""
    base = scenario.make_base(work)
    lines = crash.trace(scenario, base, work)
    assert len(lines) >= 3, "the fault layer saw too few mutations"
    points = set(crash.sampled(len(lines), stride, scenario.name)) if stride else set()
    for event, prefix, which in also:
        matches = [n for n, e, p in lines if e == event and Path(p).name.startswith(prefix)]
        points.add(matches[which])
    outcomes = crash.sweep(scenario, base, work, sorted(points), sig=sig, lines=lines)
    if killed:
        assert all(o.killed for o in outcomes), [(o.point, o.reason) for o in outcomes]
    _all_recovered(outcomes)


@pytest.mark.covers("STO-007", "STO-008", "STO-012", "STO-013", "LCK-007", "STA-004", "MAN-004",
                    "MNT-020", "MNT-022", "MNT-023", "MNT-024", "MNT-025", "AUT-007",
                    "SYNC-003")
@pytest.mark.parametrize("name", ["file", "archive", "uris", "git", "autofill", "state", "rm",
                                  "mv", "add", "produce", "push", "tree", "virtualize",
                                  "update-checksums", "refresh", "export"])
def test_crash_sweep(chaos, name):
    """SIGKILL before every STRIDE-th mutation of one command, from an offset that differs
    between commands, and before its last one (every mutation: `make reliability`)."""
    work, scenarios = chaos
    scenario = scenarios[name]
    # push: the receiver dies, not the sender; state: the partner runs on
    _sweep(work, scenario, STRIDE, killed=scenario.partner_argv is None and name != "push")


@pytest.mark.covers("SYNC-003", "SYNC-005", "LCK-007")
@pytest.mark.parametrize("name,part", [("pull-ssh", "sample"), ("pull-ssh", "regressions"),
                                       ("push-ssh-sender", "sample"),
                                       ("push-ssh-receiver", "sample"),
                                       ("push-ssh-receiver", "regressions")])
def test_crash_sweep_over_ssh(chaos_ssh, name, part):
    """`pull` and `push` through a real sshd, the kill landing in the local command (the
    puller, the sender) or, separately, in the far receiver `datamanifest receive`: a
    sample of the mutations, and (a test of their own, so that pytest-xdist spreads them)
    the points where regressions were found."""
    work, scenarios = chaos_ssh
    also = {  # a pull killed between a marker and its state record (the next one records
        # it), or after its last state write (the next one reclaims the state's lock); a
        # receiver killed before releasing its lock (the next push has it reclaimed)
        "pull-ssh": [("rename", ".state.toml", 0), ("remove", "state.toml.lock", -1)],
        "push-ssh-receiver": [("remove", "state.toml.lock", 0),
                              ("remove", "big.bin.lock", 0)]}.get(name, [])
    # only the puller always dies: a sender may have finished before its receiver stopped
    _sweep(work, scenarios[name], SSH_STRIDE if part == "sample" else 0,
           killed=name == "pull-ssh", also=also if part == "regressions" else ())


@pytest.mark.covers("LCK-008", "FET-023", "STO-015")
@pytest.mark.parametrize("name", ["file", "archive", "uris", "autofill", "tree", "virtualize"])
def test_sigint_sweep(chaos, name):
    """A real SIGINT (the process sends it to itself) just before a sample of one command's
    mutations: it exits 130 with DM172 and no traceback, holds no lock, leaves nothing that
    looks complete and is not, and the next run completes and leaves the store clean."""
    work, scenarios = chaos
    scenario = scenarios[name]
    base = scenario.make_base(work)
    lines = crash.trace(scenario, base, work)
    n = len(lines)
    outcomes = crash.sweep(scenario, base, work, list(range(1, n + 1, max(1, n // 5))),
                           sig="INT", lines=lines)
    assert all(o.killed for o in outcomes), [(o.point, o.reason) for o in outcomes]
    _all_recovered(outcomes)


@pytest.mark.parametrize("name", ["file", "autofill", "state"])
def test_random_kills(chaos, name):
    work, scenarios = chaos
    scenario = scenarios[name]
    base = scenario.make_base(work)
    _all_recovered(crash.random_kills(scenario, base, work, 4, seed=1))


def test_random_kills_take_the_whole_process_group(chaos_ssh):
    """A random kill of a push over SSH takes the sender with its ssh and rsync helpers:
    nothing of the group outlives the trial, and the far end recovers."""
    work, scenarios = chaos_ssh
    scenario = scenarios["push-ssh-sender"]
    base = scenario.make_base(work)
    _all_recovered(crash.random_kills(scenario, base, work, 2, seed=2, calibration_runs=1))
    trial = str(work / "trial").encode()
    deadline = time.monotonic() + 5  # the far receiver notices its sender is gone
    while time.monotonic() < deadline and _running_with(trial):
        time.sleep(0.1)
    assert not _running_with(trial)


def _running_with(text: bytes) -> list[int]:
    """Live processes whose command line names ``text`` (zombies excluded)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes() and \
                    (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return out


def test_the_fault_layer_is_off_unless_asked():
    code = ("import sys, datamanifest, datamanifest.store.atomic as a, datamanifest.faults as f;"
            "print(f.ENABLED, f.count())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAMANIFEST_FAULT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "0"]


def test_the_manifest_keeps_its_comments_through_the_judge():
    text = '# a\n[x]   # b\nuri = "http://h/#frag"   # c\nv = "#not"\n'
    assert comments(text) == ["# a", "# b", "# c"]


def test_the_judge_can_fail(chaos, tmp_path):
    """The harness must be able to fail: a dataset whose marker says complete over torn
    bytes is reported corrupt."""
    work, scenarios = chaos
    scenario = scenarios["file"]
    base = scenario.make_base(tmp_path)
    trial = crash.fresh(base, tmp_path)
    assert crash.run(scenario, trial, commands.FETCH).returncode == 0
    data = trial / "project" / "store" / "127.0.0.1" / "big.bin"
    data.write_bytes(data.read_bytes()[:-1] + b"\0")  # same size, one byte changed
    o = scenario.judge(trial, "forged", False)
    assert o.corrupt and "do not verify" in o.reason


# ------------------------------------------------------------------ concurrency (8 processes)

COMMENTED = """\
# eight datasets, each filled in by its own process
[_META]
schema = 1   # kept

[_STORAGE]
datasets_dir = "store"
"""


def _spawn(project: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAMANIFEST_")}
    return subprocess.Popen([sys.executable, "-m", "datamanifest", *args], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.covers("LCK-001", "LCK-003", "FET-005")
def test_eight_processes_fetching_one_dataset_download_it_once(http, served, project):
    data = os.urandom(1 << 20)
    (served / "one.bin").write_bytes(data)
    http.delay["/one.bin"] = 1.0
    (project / "datamanifest.toml").write_text(
        COMMENTED + f'\n[one]\nuri = "{http.url("one.bin")}"\n'
                    f'checksum = "sha256:{sha256_of(data)}"\n')
    procs = [_spawn(project, "fetch", "--json") for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    statuses = sorted(json.loads(o[0])["datasets"][0]["status"] for o in outs)
    assert statuses == ["fetched"] + ["present"] * 7
    assert http.hits["/one.bin"] == 1
    assert (project / "store" / "127.0.0.1" / "one.bin").read_bytes() == data


@pytest.mark.covers("MAN-004", "STA-004")
def test_eight_processes_fill_eight_checksums_and_eight_state_records(http, served, project):
    body = COMMENTED
    blobs = {}
    for i in range(8):
        blobs[i] = os.urandom(64 << 10)
        (served / f"d{i}.bin").write_bytes(blobs[i])
        body += f'\n# dataset {i}\n[d{i}]\nuri = "{http.url(f"d{i}.bin")}"   # from the server\n'
    (project / "datamanifest.toml").write_text(body)
    before = comments(body)
    procs = [_spawn(project, "fetch", f"d{i}") for i in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    text = (project / "datamanifest.toml").read_text()
    assert comments(text) == before
    doc = tomllib.loads(text)
    assert {f"d{i}": doc[f"d{i}"]["checksum"] for i in range(8)} == {
        f"d{i}": f"sha256:{sha256_of(blobs[i])}" for i in range(8)}
    state = tomllib.loads((project / ".datamanifest" / "state.toml").read_text())
    assert sorted(state["datasets"]) == sorted(f"127.0.0.1/d{i}.bin" for i in range(8))
    assert run_cli("check", cwd=project).returncode == 0


HOLDER = r"""
import sys, time
from pathlib import Path
from datamanifest.store.lock import Lock
lock = Lock(Path(sys.argv[1]), stale_age=float(sys.argv[2]))
lock.acquire()
print("HELD", flush=True)
time.sleep(float(sys.argv[3]))
"""


def _holder(lock: Path, stale: float, hold: float) -> subprocess.Popen:
    lock.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(stale), str(hold)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "HELD"
    return p


@pytest.mark.covers("LCK-004", "LCK-005")
def test_a_killed_holders_lock_is_reclaimed_within_the_stale_age(http, served, project):
    data = b"payload\n" * 1000
    (served / "k.bin").write_bytes(data)
    (project / "datamanifest.toml").write_text(
        COMMENTED.replace('datasets_dir = "store"', 'datasets_dir = "store"\nlock_stale_age = 2')
        + f'\n[k]\nuri = "{http.url("k.bin")}"\nchecksum = "sha256:{sha256_of(data)}"\n')
    lock = project / "store" / "127.0.0.1" / "k.bin.lock"
    holder = _holder(lock, 2, 600)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.monotonic()
    proc = run_cli("fetch", cwd=project)
    waited = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert waited < 2 + 1.5, waited  # the stale age, plus the polling and the start-up
    assert not lock.exists()
    assert (project / "store" / "127.0.0.1" / "k.bin").read_bytes() == data


@pytest.mark.covers("LCK-002", "LCK-004", "LCK-006")
def test_a_live_holders_lock_is_never_reclaimed(http, served, project):
    data = b"live\n" * 100
    (served / "l.bin").write_bytes(data)
    (project / "datamanifest.toml").write_text(
        COMMENTED.replace('datasets_dir = "store"', 'datasets_dir = "store"\nlock_stale_age = 1')
        + f'\n[l]\nuri = "{http.url("l.bin")}"\nchecksum = "sha256:{sha256_of(data)}"\n')
    lock = project / "store" / "127.0.0.1" / "l.bin.lock"
    holder = _holder(lock, 1, 600)
    token = lock.read_text()
    try:
        proc = run_cli("fetch", "--lock-timeout", "4", cwd=project)
        assert proc.returncode == 1 and "DM075" in proc.stderr, proc.stderr
        assert lock.read_text() == token  # 4 s = 4 stale ages: the heartbeat kept it fresh
        assert not (project / "store" / "127.0.0.1" / "l.bin").exists()
    finally:
        holder.kill()
        holder.wait()


def test_leftover_names_are_what_a_run_must_clean():
    assert LEFTOVER.search("x.bin.lock") and LEFTOVER.search("x.tmp")
    assert not LEFTOVER.search("x.bin.complete")
    from datamanifest.store.atomic import _TEMP

    assert _TEMP.match(".state.toml.5bce98f7-12-abc.tmp").groups() == ("5bce98f7", "12")
    assert not _TEMP.match(".state.toml.abc.tmp")  # an untagged name is never swept
