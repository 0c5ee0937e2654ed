"""Never replace what this tool did not publish (SCHEMA.md STO-018, STO-016, FET-024,
MNT-026, SYNC-007, LCK-009): an existing file or folder without a completion marker is
refused with DM182 and left byte for byte, adopted when its bytes verify, replaced when a
killed run of this tool was publishing it, and with --force moved aside, never deleted.

Real processes, a real loopback HTTP server, real files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli, sha256_of, write_manifest

EVIL = b"evil\n"


@pytest.fixture
def one(http, served: Path, project: Path) -> tuple[Path, Path]:
    """A project whose dataset `x` has its target in the project's store; returns (project,
    target)."""
    (served / "x.bin").write_bytes(EVIL)
    write_manifest(project, f'[x]\nuri = "{http.url("x.bin")}"\n')
    return project, project / "store" / "127.0.0.1" / "x.bin"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.covers("STO-018", "FET-024")
def test_fetch_refuses_a_file_it_did_not_publish(one, http):
    project, target = one
    target.parent.mkdir(parents=True)
    target.write_bytes(b"ORIGINAL\n")
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)["datasets"][0]
    assert out["status"] == "failed" and out["error"]["code"] == "DM182"
    assert str(target) in out["error"]["message"] and "--force" in out["error"]["hint"]
    assert target.read_bytes() == b"ORIGINAL\n"
    assert not target.with_name("x.bin.complete").exists()
    assert http.hits["/x.bin"] == 0  # refused before any byte was transferred
    assert "checksum" not in (project / "datamanifest.toml").read_text()


@pytest.mark.covers("STO-016")
def test_force_moves_it_aside_and_never_deletes(one, http):
    project, target = one
    target.parent.mkdir(parents=True)
    target.write_bytes(b"ORIGINAL\n")
    target.with_name("x.bin.~1~").write_bytes(b"an older backup\n")
    proc = run_cli("fetch", "--force", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["datasets"][0]
    aside = target.with_name("x.bin.~2~")
    assert out["moved_aside"] == str(aside)
    assert aside.read_bytes() == b"ORIGINAL\n"
    assert target.with_name("x.bin.~1~").read_bytes() == b"an older backup\n"
    assert target.read_bytes() == EVIL and target.with_name("x.bin.complete").exists()


def test_a_folder_in_the_way_is_refused_then_moved_aside(http, served, project):
    (served / "a.txt").write_text("a")
    (served / "b.txt").write_text("b")
    write_manifest(project, f'[d]\nuris = ["{http.url("a.txt")}", "{http.url("b.txt")}"]\n')
    target = project / "store" / "127.0.0.1"
    (target / "mine").mkdir(parents=True)
    (target / "mine" / "notes.md").write_text("keep me")
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM182" in proc.stderr and "folder" in proc.stderr
    assert (target / "mine" / "notes.md").read_text() == "keep me"
    assert sorted(p.name for p in target.iterdir()) == ["mine"]
    proc = run_cli("fetch", "--force", cwd=project)
    assert proc.returncode == 0, proc.stderr
    aside = project / "store" / "127.0.0.1.~1~"
    assert (aside / "mine" / "notes.md").read_text() == "keep me"
    assert (target / "a.txt").read_text() == "a" and (target / ".complete").exists()


@pytest.mark.covers("STO-018")
def test_an_unmarked_copy_that_verifies_is_adopted_without_a_download(one, http):
    project, target = one
    write_manifest(project, f'[x]\nuri = "{http.url("x.bin")}"\n'
                            f'checksum = "sha256:{sha256_of(EVIL)}"\n')
    target.parent.mkdir(parents=True)
    target.write_bytes(EVIL)  # e.g. copied by hand, or a run killed before its marker
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["datasets"][0]
    assert out["status"] == "present" and out["adopted"]
    assert http.hits["/x.bin"] == 0
    marker = json.loads(target.with_name("x.bin.complete").read_text())
    assert marker["checksum"] == f"sha256:{sha256_of(EVIL)}" and marker["size"] == len(EVIL)
    state = (project / ".datamanifest" / "state.toml").read_text()
    assert "127.0.0.1/x.bin" in state


def test_an_unmarked_folder_that_verifies_its_tree_checksum_is_adopted(http, served, project):
    (served / "a.txt").write_text("a")
    (served / "b.txt").write_text("b")
    uris = f'uris = ["{http.url("a.txt")}", "{http.url("b.txt")}"]\n'
    write_manifest(project, f"[d]\n{uris}")
    assert run_cli("fetch", cwd=project).returncode == 0  # fills the tree checksum
    target = project / "store" / "127.0.0.1"
    (target / ".complete").unlink()
    hits = dict(http.hits)
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["datasets"][0]["adopted"]
    assert dict(http.hits) == hits and (target / ".complete").exists()


@pytest.mark.covers("LCK-009")
def test_a_killed_runs_own_unmarked_target_is_replaced(one, http):
    """The lock a killed run left says it was publishing: the unmarked target is its own."""
    project, target = one
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half of what a killed run renamed\n")
    lock = target.with_name("x.bin.lock")
    lock.write_text(f"{_dead_pid()} {socket.gethostname()}\npublish\n")
    os.utime(lock, (0, 0))
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == EVIL and not lock.exists()
    assert not list(target.parent.glob("*.~*~"))


def test_a_stale_lock_without_the_publish_line_is_no_evidence(one):
    project, target = one
    target.parent.mkdir(parents=True)
    target.write_bytes(b"ORIGINAL\n")
    lock = target.with_name("x.bin.lock")
    lock.write_text(f"{_dead_pid()} {socket.gethostname()}\n")  # killed before publishing
    os.utime(lock, (0, 0))
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM182" in proc.stderr
    assert target.read_bytes() == b"ORIGINAL\n"


def test_an_exact_storage_path_in_the_project_is_never_overwritten(http, served, project):
    """The issue's in-project case: a manifest pointing a dataset at the project's own file."""
    (served / "readme").write_bytes(EVIL)
    (project / "README.md").write_text("# my project\n")
    write_manifest(project, f'[r]\nuri = "{http.url("readme")}"\nstorage_path = "README.md"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM182" in proc.stderr
    assert (project / "README.md").read_text() == "# my project\n"


def test_add_refuses_and_its_force_moves_aside(http, served, project):
    (served / "new.csv").write_bytes(b"n\n")
    write_manifest(project, "")
    target = project / "store" / "127.0.0.1" / "new.csv"
    target.parent.mkdir(parents=True)
    target.write_text("mine\n")
    before = (project / "datamanifest.toml").read_text()
    proc = run_cli("add", http.url("new.csv"), cwd=project)
    assert proc.returncode == 1 and "DM182" in proc.stderr
    assert (project / "datamanifest.toml").read_text() == before
    assert target.read_text() == "mine\n"
    proc = run_cli("add", http.url("new.csv"), "--force", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == b"n\n" and target.with_name("new.csv.~1~").read_text() == "mine\n"


@pytest.mark.covers("MNT-026")
def test_mv_refuses_an_unmarked_destination_adopts_a_verified_one(http, served, project,
                                                                   tmp_path):
    (served / "a.csv").write_bytes(b"a,b\n")
    write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\n')
    assert run_cli("fetch", cwd=project).returncode == 0
    dest = tmp_path / "other-store"
    new = dest / "127.0.0.1" / "a.csv"
    new.parent.mkdir(parents=True)
    new.write_text("someone else's\n")
    r = run_cli("mv", "a", str(dest), "--json", cwd=project)
    assert r.returncode == 1 and "DM182" in r.stdout + r.stderr
    assert new.read_text() == "someone else's\n"
    assert (project / "store" / "127.0.0.1" / "a.csv").exists()  # the source stays
    new.write_bytes(b"a,b\n")  # the same bytes, without a marker: adopted, not copied
    r = run_cli("mv", "a", str(dest), "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["steps"][0]["action"] == "adopt"
    assert new.with_name("a.csv.complete").exists()
    assert not (project / "store" / "127.0.0.1" / "a.csv").exists()


def test_mv_force_moves_the_destination_aside(http, served, project, tmp_path):
    (served / "a.csv").write_bytes(b"a,b\n")
    write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\n')
    assert run_cli("fetch", cwd=project).returncode == 0
    dest = tmp_path / "other-store"
    new = dest / "127.0.0.1" / "a.csv"
    new.parent.mkdir(parents=True)
    new.write_text("someone else's\n")
    r = run_cli("mv", "a", str(dest), "--force", cwd=project)
    assert r.returncode == 0, r.stderr
    assert new.read_bytes() == b"a,b\n"
    assert new.with_name("a.csv.~1~").read_text() == "someone else's\n"


@pytest.mark.covers("SYNC-007")
def test_pull_and_push_refuse_what_they_did_not_publish(http, served, tmp_path):
    (served / "t.csv").write_bytes(b"t\n")
    manifest = (f'[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n'
                f'datasets_pools = []\n\n[t]\nuri = "{http.url("t.csv")}"\n'
                f'checksum = "sha256:{sha256_of(b"t" + bytes([10]))}"\n')
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        (root / "datamanifest.toml").write_text(manifest)
    assert run_cli("fetch", cwd=a).returncode == 0
    theirs = b / "store" / "127.0.0.1" / "t.csv"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("b's own file\n")
    remote = ["--remote-command", f"{sys.executable} -m datamanifest"]
    r = run_cli("pull", "t", str(a), *remote, cwd=b)
    assert r.returncode == 1 and "DM182" in r.stdout + r.stderr
    assert theirs.read_text() == "b's own file\n"
    r = run_cli("push", "t", str(b), *remote, cwd=a)
    assert r.returncode == 1 and "DM182" in r.stdout + r.stderr
    assert theirs.read_text() == "b's own file\n"
    r = run_cli("push", "t", str(b), "--force", *remote, cwd=a)
    assert r.returncode == 0, r.stdout + r.stderr
    assert theirs.read_bytes() == b"t\n"
    assert theirs.with_name("t.csv.~1~").read_text() == "b's own file\n"
