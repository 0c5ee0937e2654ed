"""Many datasets at once: forked fetch workers (SCHEMA.md FET-003, FET-007, STO-007, STA-007).

From PROCESS_MIN datasets on, `fetch` hands batches to forked worker processes; these tests
run that path against the real loopback HTTP server and check what the parent makes of the
workers' results: outcomes, errors, state records, checksum fills, the per-host cap.
"""

from __future__ import annotations

import json
import os
import tomllib

import pytest

from datamanifest.fetch.schedule import PROCESS_MIN

from .conftest import run_cli, sha256_of, write_manifest

N = PROCESS_MIN + 16


def _many(http, served, project, n=N, *, bad=(), empty=(), delay=0.0):
    body = []
    for i in range(n):
        data = f"row {i}\n".encode() * 50
        (served / f"d{i:03d}.txt").write_bytes(data)
        if delay:
            http.delay[f"/d{i:03d}.txt"] = delay
        checksum = "" if i in empty else sha256_of(b"other" if i in bad else data)
        line = f'checksum = "sha256:{checksum}"' if checksum else 'checksum = ""'
        body.append(f'[d{i:03d}]\nuri = "{http.url(f"d{i:03d}.txt")}"\n{line}\n')
    write_manifest(project, "\n".join(body))


def test_many_datasets_fetched_by_workers_recorded_once(http, served, project):
    _many(http, served, project)
    proc = run_cli("fetch", "--json", "--jobs", "4", cwd=project)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["workers"] == "processes"
    out = report["datasets"]
    assert [d["status"] for d in out] == ["fetched"] * N
    for i in (0, N - 1):
        path = project / "store" / "127.0.0.1" / f"d{i:03d}.txt"
        assert path.read_bytes() == f"row {i}\n".encode() * 50
        assert (path.parent / (path.name + ".complete")).is_file()
        assert not (path.parent / (path.name + ".lock")).exists()  # every lock released
    state = tomllib.loads((project / ".datamanifest" / "state.toml").read_text())
    assert len([k for k in state["datasets"] if k.startswith("127.0.0.1/d")]) == N
    assert sum(http.hits.values()) == N
    again = json.loads(run_cli("fetch", "--json", cwd=project).stdout)
    assert {d["status"] for d in again["datasets"]} == {"present"} and again["workers"] == "none"
    assert sum(http.hits.values()) == N  # FET-005: no request the second time


def test_worker_errors_reach_the_parent_intact(http, served, project):
    _many(http, served, project, bad={5, 70})
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    for name in ("d005", "d070"):
        err = out[name]["error"]
        assert err["code"] == "DM070" and "expected" in err["message"]
        assert err["file"].endswith("datamanifest.toml") and err["line"]  # placed at its uri
        assert not (project / "store" / "127.0.0.1" / f"{name}.txt").exists()
    assert sum(o["status"] == "fetched" for o in out.values()) == N - 2
    assert "Traceback" not in proc.stderr


def test_empty_checksums_filled_from_workers_keeping_comments(http, served, project):
    _many(http, served, project, empty={1, 2, 75})
    manifest = project / "datamanifest.toml"
    manifest.write_text("# our data\n" + manifest.read_text())
    proc = run_cli("fetch", "-q", cwd=project)
    assert proc.returncode == 0, proc.stderr
    text = manifest.read_text()
    assert text.startswith("# our data\n")
    data = tomllib.loads(text)
    for i in (1, 2, 75):
        assert data[f"d{i:03d}"]["checksum"] == "sha256:" + sha256_of(f"row {i}\n".encode() * 50)


def test_per_host_cap_holds_across_worker_processes(http, served, project):
    _many(http, served, project, delay=0.02)
    proc = run_cli("fetch", "-q", "--jobs", "6", "--per-host", "2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert http.max_active == 2


def test_requirements_wait_for_their_batch(http, served, project):
    _many(http, served, project, delay=0.01)
    manifest = project / "datamanifest.toml"
    manifest.write_text(manifest.read_text().replace(
        '[d001]\n', '[d001]\nrequires = ["d070", "d075"]\n'))
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workers"] == "processes"
    # d001 comes early in the manifest, but is requested only after both requirements
    assert http.requested.index("/d001.txt") > http.requested.index("/d070.txt")
    assert http.requested.index("/d001.txt") > http.requested.index("/d075.txt")


@pytest.mark.covers("STO-007", "STO-008")
def test_a_batch_is_made_durable_by_one_sync_before_any_of_it_is_published(
        http, served, project, tmp_path):
    """A forked worker's batch is synced once (syncfs per file system), not once per file,
    and no staged file is renamed nor any marker written before its batch's sync."""
    _many(http, served, project)
    trace = tmp_path / "trace.txt"
    proc = run_cli("fetch", "--json", "--jobs", "4", cwd=project,
                   env={"DATAMANIFEST_FAULT_TRACE": str(trace),
                        "DATAMANIFEST_FAULT_ONLY": str(project / "store")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workers"] == "processes"
    events = [line.split(" ", 2)[1:] for line in trace.read_text().splitlines()]
    syncs = [i for i, (event, _) in enumerate(events) if event == "fsync"]
    renames = [i for i, (event, path) in enumerate(events)
               if event in ("rename", "replace") and path.endswith(".tmp")]
    markers = [i for i, (event, path) in enumerate(events)
               if event == "open" and path.endswith(".complete")]
    assert len(renames) == len(markers) == N
    # one sync per batch (several datasets each), where each file had its own fsync before
    assert 1 <= len(syncs) <= N // 2
    assert syncs[0] < min(renames) and syncs[0] < min(markers)


#: kill points of the batch sweep below, spread over the run (every one of them:
#: FETCH_MANY_SWEEP_TRIALS=0, about 600 trials and 20 minutes)
SWEEP_TRIALS = int(os.environ.get("FETCH_MANY_SWEEP_TRIALS", "5"))


@pytest.mark.covers("STO-007", "STO-008", "LCK-004")
def test_a_crash_anywhere_in_a_batched_fetch_corrupts_nothing_and_blocks_nothing(tmp_path):
    """The crash sweep of `fetch --jobs 4` over PROCESS_MIN + 16 datasets (forked workers,
    one sync per batch): SIGKILL just before file-system mutations (in the parent or in
    whichever worker reaches it; SWEEP_TRIALS of them spread over the run, or every one);
    the project the next user finds is consistent, and the next run completes and
    verifies every dataset."""
    from datamanifest.testing import LoopbackServer, crash
    from datamanifest.testing.commands import HEADER
    from datamanifest.testing.scenarios import CommandScenario

    served = tmp_path / "served"
    served.mkdir()
    with LoopbackServer(served) as srv:
        body = [HEADER]
        for i in range(N):
            data = f"row {i}\n".encode() * 200
            (served / f"d{i:03d}.bin").write_bytes(data)
            body.append(f'[d{i:03d}]\nuri = "{srv.url(f"d{i:03d}.bin")}"\n'
                        f'checksum = "sha256:{sha256_of(data)}"\n')
        text = "\n".join(body)
        scenario = CommandScenario("many", ["fetch", "--jobs", "4"], text,
                                   [f"d{i:03d}" for i in range(N)])
        base = scenario.make_base(tmp_path)
        lines = crash.trace(scenario, base, tmp_path)
        n = len(lines)
        assert n > 4 * N  # lock, staging, rename, marker... per dataset, and one sync a batch
        outcomes = crash.sweep(scenario, base, tmp_path,
                               points=list(range(1, n + 1, max(1, n // SWEEP_TRIALS)
                                                 if SWEEP_TRIALS else 1)), lines=lines)
    bad = [(o.point, o.reason) for o in outcomes if not (o.continued and o.clean)]
    assert not bad, bad
    counts = crash.summary(outcomes)
    assert counts["corrupt"] == counts["blocked"] == 0 and counts["trials"] > 0
