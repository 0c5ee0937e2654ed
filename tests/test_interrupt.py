"""Ctrl-C: a real SIGINT to a real `datamanifest` process stops it within a second, releases its
locks, keeps partial downloads with their validator, exits 130, and the next run resumes with
Range + If-Range (SCHEMA.md LCK-008, FET-023, FET-012). The server is the throttled loopback
server of datamanifest.testing, whose request log shows what each run asked for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer

from .conftest import sha256_of, write_manifest

#: the longest a run may take from the SIGINT to its exit (LCK-008 says the work stops
#: within 1 s; the interpreter's own exit comes on top, and the machine may be loaded)
STOP_LIMIT = 1.5


def _start(project: Path, *args: str, driver: str | None = None,
           env: dict | None = None) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DATAMANIFEST_")}
    full.update(env or {})
    cmd = [sys.executable, "-c", driver, *args] if driver else \
        [sys.executable, "-m", "datamanifest", *args]
    return subprocess.Popen(cmd, cwd=project, env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def _interrupt(proc: subprocess.Popen, group: bool = False) -> tuple[float, str]:
    """Send SIGINT (to the process, or to its whole group as a terminal's Ctrl-C does);
    return (seconds until it exited, its stderr)."""
    t0 = time.monotonic()
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return time.monotonic() - t0, err


def _locks(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.lock"))


def _fetch_interrupted_at_30_percent(project: Path, staging: Path, size: int) -> str:
    """Start `fetch`, send SIGINT once ``staging`` holds 30% of ``size`` bytes, assert the
    run stopped with status 130 within :data:`STOP_LIMIT`; returns its stderr."""
    proc = _start(project, "fetch")
    _wait_for(lambda: staging.is_file() and staging.stat().st_size >= 0.3 * size,
              what="30% of the download")
    took, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert took < STOP_LIMIT, f"{took:.2f} s from SIGINT to exit"
    return err


@pytest.mark.covers("LCK-008", "FET-023", "FET-012", "FET-004")
def test_first_sigint_stops_a_download_at_30_percent_and_the_next_run_resumes(
        http, served, project):
    size = 3 * 1024 * 1024 + 123
    data = os.urandom(size)
    (served / "big.bin").write_bytes(data)
    http.rate["/big.bin"] = 1.5 * 1024 * 1024  # about 2 s for the whole file
    write_manifest(project, f'[big]\nuri = "{http.url("big.bin")}"\n'
                            f'checksum = "sha256:{sha256_of(data)}"\n')
    store = project / "store" / "127.0.0.1"
    staging = store / "big.bin.tmp"
    err = _fetch_interrupted_at_30_percent(project, staging, size)
    assert "DM172" in err and "Traceback" not in err
    assert "(a partial download resumes)" in err  # what the next run does: fetch's own hint
    first = http.log[-1]
    assert first["range"] is None and first["status"] == 200 and first["sent"] < size
    # the lock released, nothing complete, the partial bytes kept with their validator
    assert _locks(project) == []
    assert not (store / "big.bin").exists() and not (store / "big.bin.complete").exists()
    kept = staging.stat().st_size
    assert 0.3 * size <= kept < size and staging.read_bytes() == data[:kept]
    record = json.loads(next((project / ".datamanifest" / "resume").glob("*.json")).read_text())
    assert record["validator"].startswith('"') and record["uri"] == http.url("big.bin")
    # the next run asks only for the rest, under If-Range, and verifies the whole file
    http.rate.clear()
    n = len(http.log)
    r = subprocess.run([sys.executable, "-m", "datamanifest", "fetch", "--json"], cwd=project,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    second = http.log[n:]
    assert [(e["range"], e["if_range"], e["status"], e["sent"]) for e in second] == [
        (f"bytes={kept}-", record["validator"], 206, size - kept)]
    out = json.loads(r.stdout)["datasets"][0]
    assert out["status"] == "fetched" and out["checksum"] == f"sha256:{sha256_of(data)}"
    assert (store / "big.bin").read_bytes() == data and (store / "big.bin.complete").exists()
    assert not staging.exists() and not list((project / ".datamanifest" / "resume").glob("*"))


@pytest.mark.covers("FET-023", "FET-012")
def test_a_server_without_etags_resumes_under_its_last_modified(http, served, project):
    """A server that sends no ETag: the kept bytes are validated by Last-Modified, sent back
    as If-Range, and the next run asks only for the rest."""
    size = 2 * 1024 * 1024 + 7
    data = os.urandom(size)
    (served / "lm.bin").write_bytes(data)
    http.no_etag.add("/lm.bin")
    http.rate["/lm.bin"] = 1024 * 1024
    write_manifest(project, f'[lm]\nuri = "{http.url("lm.bin")}"\n'
                            f'checksum = "sha256:{sha256_of(data)}"\n')
    staging = project / "store" / "127.0.0.1" / "lm.bin.tmp"
    _fetch_interrupted_at_30_percent(project, staging, size)
    kept = staging.stat().st_size
    record = json.loads(next((project / ".datamanifest" / "resume").glob("*.json")).read_text())
    assert record["validator"].endswith(" GMT")  # an HTTP date, not an ETag
    http.rate.clear()
    n = len(http.log)
    r = subprocess.run([sys.executable, "-m", "datamanifest", "fetch"], cwd=project,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [(e["range"], e["if_range"], e["status"], e["sent"]) for e in http.log[n:]] == [
        (f"bytes={kept}-", record["validator"], 206, size - kept)]
    assert (project / "store" / "127.0.0.1" / "lm.bin").read_bytes() == data


@pytest.mark.covers("FET-023", "FET-012")
def test_a_source_changed_after_the_interruption_is_downloaded_again_from_byte_0(
        http, served, project):
    size = 2 * 1024 * 1024
    old = os.urandom(size)
    (served / "v.bin").write_bytes(old)
    http.rate["/v.bin"] = 1024 * 1024
    write_manifest(project, f'[v]\nuri = "{http.url("v.bin")}"\n')
    staging = project / "store" / "127.0.0.1" / "v.bin.tmp"
    _fetch_interrupted_at_30_percent(project, staging, size)
    first = http.log[-1]
    kept = staging.stat().st_size
    assert 0 < kept < size
    new = os.urandom(size + 11)
    (served / "v.bin").write_bytes(new)  # a new ETag: If-Range fails, the server sends all
    http.rate.clear()
    n = len(http.log)
    r = subprocess.run([sys.executable, "-m", "datamanifest", "fetch"], cwd=project,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (again,) = http.log[n:]  # asked for the rest under the old validator, got all anew
    assert again["range"] == f"bytes={kept}-" and again["if_range"] is not None
    assert again["status"] == 200 and again["sent"] == len(new) and first["status"] == 200
    assert (project / "store" / "127.0.0.1" / "v.bin").read_bytes() == new
    assert f"sha256:{sha256_of(new)}" in (project / "datamanifest.toml").read_text()


#: `datamanifest` with forked worker processes from 2 pending datasets on (64 by default)
FORKING = ("import sys; import datamanifest.fetch.schedule as e; e.PROCESS_MIN = 2; "
           "from datamanifest.cli import main; main(args=sys.argv[1:], prog_name='datamanifest')")


@pytest.mark.covers("LCK-008", "FET-023")
@pytest.mark.parametrize("group", [False, True], ids=["parent-only", "process-group"])
def test_sigint_stops_forked_workers_and_each_partial_download_resumes(
        http, served, project, group):
    size, n = 512 * 1024, 6
    blobs = {}
    body = ""
    for i in range(n):
        blobs[i] = os.urandom(size)
        (served / f"f{i}.bin").write_bytes(blobs[i])
        body += f'\n[f{i}]\nuri = "{http.url(f"f{i}.bin")}"\n' \
                f'checksum = "sha256:{sha256_of(blobs[i])}"\n'
    write_manifest(project, body)
    http.rate["*"] = 256 * 1024  # 2 s per file
    proc = _start(project, "fetch", "-j", "3", "--json", driver=FORKING)
    _wait_for(lambda: sum(e["sent"] for e in http.log) >= 3 * 0.3 * size,
              what="30% of three downloads")
    took, err = _interrupt(proc, group=group)
    assert proc.returncode == 130, err
    assert took < STOP_LIMIT, f"{took:.2f} s from SIGINT to exit"
    assert "DM172" in err and "Traceback" not in err
    assert _locks(project) == []
    store = project / "store" / "127.0.0.1"
    kept = {p.name[:-4]: p.stat().st_size for p in store.glob("*.tmp")}
    assert len(kept) == 3 and all(0 < k < size for k in kept.values()), kept
    assert not list(store.glob("*.complete"))
    http.rate.clear()
    first = len(http.log)
    r = subprocess.run([sys.executable, "-c", FORKING, "fetch", "-j", "3", "--json"],
                       cwd=project, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [d["status"] for d in json.loads(r.stdout)["datasets"]] == ["fetched"] * n
    ranged = {e["path"][1:]: (e["range"], e["status"], e["sent"]) for e in http.log[first:]
              if e["range"]}
    assert ranged == {name: (f"bytes={k}-", 206, size - k) for name, k in kept.items()}
    for i in range(n):
        assert (store / f"f{i}.bin").read_bytes() == blobs[i]


@pytest.mark.covers("LCK-008", "APP-024")
def test_sigint_to_append_between_slices_leaves_a_cube_the_next_append_continues(tmp_path):
    xr = pytest.importorskip("xarray")
    from datamanifest.testing import appends as harness

    shape = (360, 720)  # 2 MB a slice: a dozen appends take a few seconds
    slices = harness.write_slices(tmp_path / "slices", 12, shape)
    target = tmp_path / "cube.zarr"
    proc = _start(tmp_path, "append", str(target), *map(str, slices), "--step", "1D")
    seen = []
    while not (seen and seen[-1].startswith("created")):  # the first slice is committed
        seen.append(proc.stderr.readline())
        assert seen[-1], "".join(seen)
    took, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert took < STOP_LIMIT and "DM172" in err and "Traceback" not in err
    # an append's hint: the same command again would offer the committed slices twice
    # (DM164), so it names the rest; no download is there to resume
    assert "append the slices not yet in the store" in err and "download" not in err, err
    assert not target.with_name("cube.zarr.lock").exists()
    with xr.open_zarr(target) as ds:
        k = ds.sizes["time"]
    assert 1 <= k < len(slices)
    r = subprocess.run([sys.executable, "-m", "datamanifest", "append", str(target),
                        *map(str, slices[k:]), "--step", "1D"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    with xr.open_zarr(target) as ds:
        assert ds.load().identical(harness.expected(len(slices), shape))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr", "cube.zarr.versions",
                                                          "slices"]


@pytest.mark.covers("STO-015", "STO-013")
def test_outputs_are_written_whole_and_never_over_a_folder_that_is_not_theirs(tmp_path):
    pytest.importorskip("xarray")
    pytest.importorskip("pyarrow")
    from datamanifest.testing import appends as harness
    from datamanifest.store.atomic import _host8

    src = tmp_path / "slice.nc"
    harness.make_slice(0, (4, 8)).to_netcdf(src)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("mine\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "datamanifest", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    for args in (["virtualize", str(src), "-o", "mine", "--format", "kerchunk-parquet"],
                 ["virtualize", str(src), "-o", "mine", "--format", "icechunk"],
                 ["virtualize", str(src), "-o", "mine"],
                 ["tree", str(tmp_path / "mine"), "-o", "mine"]):
        r = run(*args)
        assert r.returncode == 1 and "DM173" in r.stderr and "Traceback" not in r.stderr, \
            (args, r.stderr)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.md"]
    # a folder output is built beside its place and renamed in; an earlier export of the
    # same kind is replaced whole; a dead writer's temporary folder is swept
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".kp.{_host8()}-{dead.pid}-abc.tmp"
    left.mkdir()
    (left / "refs.0.parq").write_bytes(b"torn")
    for _ in range(2):
        r = run("virtualize", str(src), "-o", "kp", "--format", "kerchunk-parquet")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "kp" / ".zmetadata").is_file()
    assert not left.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.covers("LCK-008")
def test_a_fetcher_stuck_in_its_own_code_is_not_waited_for_and_leaves_no_lock(project):
    """A Python fetcher binding (the user's code) cannot be woken: after the grace the
    command exits anyway, its lock removed, nothing published."""
    (project / "slowfetch.py").write_text(
        "import time\n\ndef fetch(path):\n    open(path, 'w').write('x')\n"
        "    print('STARTED', flush=True)\n    time.sleep(60)\n")
    write_manifest(project, '[slow]\nkey = "slow.txt"\nfetcher = "slowfetch:fetch"\n')
    proc = _start(project, "fetch", "--trust")  # its own code: trusted (TRU-005)
    assert proc.stdout.readline().strip() == "STARTED"
    took, err = _interrupt(proc)
    assert proc.returncode == 130 and took < STOP_LIMIT, (took, err)
    assert "DM172" in err and "Traceback" not in err
    assert _locks(project) == []
    assert not list((project / "store").rglob("*.complete"))
