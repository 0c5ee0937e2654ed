"""Owning the store (SCHEMA.md §22): list, rm, mv, refresh, export, each against the defects
measured in the ecosystem's maintenance verbs (shared/reference/ecosystem-layers.md §2.6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from datamanifest.project import Project
from datamanifest.spec import maintain as spec
from datamanifest.store.lock import Lock
from datamanifest.store.state import read_state

from .conftest import run_cli, sha256_of


def _project(root: Path, body: str, pools: list[Path] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pool_line = f"datasets_pools = {json.dumps([str(p) for p in pools])}\n" if pools else \
        "datasets_pools = []\n"
    (root / "datamanifest.toml").write_text(
        '[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\ndatacache_dir = "cache"\n'
        + pool_line + "\n" + body)
    return root


def _data(served: Path, name: str, content: bytes) -> str:
    (served / name).write_bytes(content)
    return f"sha256:{sha256_of(content)}"


@pytest.fixture
def fetched(tmp_path: Path, served: Path, http):
    """A project with two fetched files, one folder dataset and one produced artifact."""
    a = _data(served, "a.csv", b"x,y\n1,2\n")
    b = _data(served, "b.txt", b"hello\n" * 100)
    root = _project(tmp_path / "proj", f"""
# dataset a: kept comment
[a]
uri = "{http.url('a.csv')}"
checksum = "{a}"

# dataset b
[b]
uri = "{http.url('b.txt')}"
checksum = "{b}"
""")
    r = run_cli("fetch", cwd=root)
    assert r.returncode == 0, r.stderr
    code = """
import datamanifest
@datamanifest.cached(cachetype="proj.stats")
def stats(n):
    return list(range(n))
stats(3); stats(4)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return root


def _list(root: Path, *args: str) -> list[dict]:
    r = run_cli("list", "--json", *args, cwd=root)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- list -----------------------------------------------------------------------------------------
@pytest.mark.covers("MNT-001", "MNT-002", "MNT-003")
def test_list_shows_both_kinds_with_fields(fetched: Path):
    objs = _list(fetched)
    assert [(o["kind"], o["state"]) for o in objs] == [("data", "clean"), ("data", "clean"),
                                                       ("cached", "clean"), ("cached", "clean")]
    a = objs[0]
    assert set(a) == set(spec.FIELDS) and a["size"] == 8 and a["created"].endswith("Z")
    assert a["location"] == str(fetched / "store" / a["key"])
    c = objs[2]
    assert c["id"].startswith("proj.stats/") and c["format"] == "pickle" and c["referenced"]
    r = run_cli("ls", "--fields", "id,state,size", "--kind", "data", cwd=fetched)
    assert r.stdout.splitlines() == ["a\tclean\t8", "b\tclean\t600"]
    assert [o["id"] for o in _list(fetched, "b")] == ["b"]
    assert [o["id"] for o in _list(fetched, "--larger-than", "100")] == ["b"]
    r = run_cli("list", "--older-than", "thirty days", cwd=fetched)
    assert r.returncode == 1 and "DM136" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.covers("MNT-005", "MNT-012")
def test_older_than_by_access_reads_atime_without_resetting_it(fetched: Path):
    """Ecosystem defect: its walk reset the access times it filtered on."""
    path = fetched / "store" / _list(fetched, "a")[0]["key"]
    old = time.time() - 40 * 86400
    os.utime(path, (old, os.stat(path).st_mtime))
    picked = _list(fetched, "--older-than", "30d", "--by-access")
    assert [o["id"] for o in picked] == ["a"]
    assert os.stat(path).st_atime == pytest.approx(old, abs=1)  # listing did not touch it
    assert [o["id"] for o in _list(fetched, "--older-than", "30d")] == []  # created: today


def test_states_untracked_relocated_missing(fetched: Path):
    state = fetched / ".datamanifest" / "state.toml"
    doc = tomllib.loads(state.read_text())
    key_a = _list(fetched, "a")[0]["key"]
    doc["datasets"][key_a]["storage_path"] = "elsewhere/a.csv"  # the record points away
    del doc["datasets"][_list(fetched, "b")[0]["key"]]  # b is not recorded
    import tomli_w

    state.write_text(tomli_w.dumps(doc))
    assert {o["id"]: o["state"] for o in _list(fetched, "--kind", "data")} == \
        {"a": "relocated", "b": "untracked"}
    os.unlink(fetched / "store" / (key_a + ".complete"))
    assert _list(fetched, "a")[0]["state"] == "missing"


# -- rm -------------------------------------------------------------------------------------------
@pytest.mark.covers("MNT-011")
def test_rm_without_selection_deletes_nothing(fetched: Path):
    """Ecosystem defect: an unfiltered `list --delete` deleted everything."""
    before = sorted(p for p in fetched.rglob("*"))
    r = run_cli("rm", cwd=fetched)
    assert r.returncode == 1 and "DM130" in r.stderr
    r = run_cli("rm", "no-such-thing", cwd=fetched)
    assert r.returncode == 1 and "DM130" in r.stderr
    assert sorted(p for p in fetched.rglob("*")) == before


@pytest.mark.covers("MNT-021", "MNT-022")
def test_rm_dry_run_then_rm_with_prune(fetched: Path):
    key_a = _list(fetched, "a")[0]["key"]
    r = run_cli("rm", "a", "--dry-run", cwd=fetched)
    assert r.returncode == 0 and "would delete: data a" in r.stdout and "(8 B)" in r.stdout
    assert (fetched / "store" / key_a).exists()
    r = run_cli("rm", "a", "--prune", cwd=fetched)
    assert r.returncode == 0, r.stderr
    assert not (fetched / "store" / key_a).exists()
    assert not (fetched / "store" / (key_a + ".complete")).exists()
    assert key_a not in read_state(fetched / ".datamanifest" / "state.toml").datasets
    text = (fetched / "datamanifest.toml").read_text()
    assert "[a]" not in text and "# dataset b" in text and "[b]" in text
    # produced artifacts, by kind
    r = run_cli("rm", "--kind", "cached", cwd=fetched)
    assert r.returncode == 0 and r.stderr.count("") and not list((fetched / "cache").rglob(
        ".complete"))
    assert read_state(fetched / ".datamanifest" / "state.toml").datacache == {}


@pytest.mark.covers("MNT-004")
def test_rm_never_touches_a_read_pool_or_user_paths(tmp_path: Path, served: Path, http):
    """Ecosystem defect: deleting a pool-adopted dataset deleted it inside the pool."""
    content = b"pooled bytes\n"
    c = _data(served, "p.bin", content)
    e = _data(served, "e.bin", b"exact\n")
    pool = tmp_path / "pool"
    donor = _project(tmp_path / "donor", f'[p]\nuri = "{http.url("p.bin")}"\nchecksum = "{c}"\n')
    assert run_cli("fetch", cwd=donor).returncode == 0
    import shutil

    shutil.copytree(donor / "store", pool)
    mine = tmp_path / "mine"
    (mine / "own").mkdir(parents=True)
    (mine / "own" / "x.txt").write_text("mine")
    _project(mine, f'[p]\nuri = "{http.url("p.bin")}"\nchecksum = "{c}"\n\n'
                   f'[own]\nuri = "own/x.txt"\nskip_download = true\n\n'
                   f'[exact]\nuri = "{http.url("e.bin")}"\nchecksum = "{e}"\n'
                   f'storage_path = "mine-exact.bin"\n', pools=[pool])
    assert run_cli("fetch", "exact", cwd=mine).returncode == 0
    objs = {o["id"]: o for o in _list(mine)}
    assert objs["p"]["protected"] == "pool" and objs["p"]["location"].startswith(str(pool))
    assert objs["own"]["protected"] == "skip_download" and objs["exact"]["protected"] == "exact"
    before = {p: p.read_bytes() for p in pool.rglob("*") if p.is_file()}
    r = run_cli("rm", "--all", cwd=mine)
    assert r.returncode == 1 and r.stderr.count("DM132") == 3
    assert {p: p.read_bytes() for p in pool.rglob("*") if p.is_file()} == before
    assert (mine / "own" / "x.txt").exists() and (mine / "mine-exact.bin").exists()


@pytest.mark.covers("MNT-020")
def test_rm_skips_an_object_a_live_process_is_writing(fetched: Path):
    """Ecosystem defect: deletes removed a live writer's lock and staging."""
    key_b = _list(fetched, "b")[0]["key"]
    target = fetched / "store" / key_b
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from datamanifest.store.lock import Lock
with Lock({str(target) + '.lock'!r}):
    open({str(target) + '.tmp'!r}, 'w').write('being written')
    print('held', flush=True)
    time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = run_cli("rm", "b", cwd=fetched)
        assert r.returncode == 1 and "DM131" in r.stderr
        assert target.exists() and Path(str(target) + ".lock").exists()
        assert Path(str(target) + ".tmp").read_text() == "being written"
    finally:
        holder.kill()
        holder.wait()


def test_delete_racing_a_running_fetch_leaves_the_fetch_intact(fetched: Path, http):
    key_b = _list(fetched, "b")[0]["key"]
    http.delay["/b.txt"] = 2.0
    fetch = subprocess.Popen([sys.executable, "-m", "datamanifest", "fetch", "b", "--force"],
                             cwd=fetched, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lock = fetched / "store" / (key_b + ".lock")
    deadline = time.time() + 20
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert lock.exists()
    r = run_cli("rm", "b", cwd=fetched)
    assert "DM131" in r.stderr
    out, err = fetch.communicate(timeout=60)
    assert fetch.returncode == 0, err
    assert (fetched / "store" / key_b).read_bytes() == b"hello\n" * 100
    assert _list(fetched, "b")[0]["state"] == "clean"


def test_thousand_deletes_write_the_state_file_once(tmp_path: Path, monkeypatch):
    root = _project(tmp_path / "many", "")
    code = """
import datamanifest
@datamanifest.cached(cachetype="many.f")
def f(i):
    return i
for i in range(1000):
    f(i)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from datamanifest.maintain import actions, inventory
    from datamanifest.store import state as state_mod

    writes = []
    real = state_mod._rewrite
    monkeypatch.setattr(state_mod, "_rewrite", lambda *a: (writes.append(1), real(*a)))
    monkeypatch.chdir(root)
    inv = inventory(Project.open(root))
    assert len(inv.objects) == 1000
    steps = actions.remove(inv, inv.objects)
    assert len([s for s in steps if s.action == "delete"]) == 1000 and len(writes) == 1
    assert read_state(root / ".datamanifest" / "state.toml").datacache == {}


# -- mv -------------------------------------------------------------------------------------------
@pytest.mark.covers("MNT-023")
def test_mv_copies_verifies_repoints_and_never_nests(fetched: Path, tmp_path: Path):
    """Ecosystem defect: moving into an existing folder nested <hash>/<hash>."""
    dest = fetched / "store2"
    art = [o for o in _list(fetched) if o["kind"] == "cached"][0]
    h = art["id"].rsplit("/", 1)[1]
    r = run_cli("mv", h[:10], str(dest), "--dry-run", cwd=fetched)
    assert r.returncode == 0 and "would move" in r.stdout and Path(art["location"]).exists()
    r = run_cli("mv", h[:10], str(dest), cwd=fetched)
    assert r.returncode == 0, r.stderr
    new = dest / "proj.stats" / h
    assert (new / ".complete").exists() and (new / "data.pickle").exists()
    assert not (new / h).exists() and not Path(art["location"]).exists()
    moved = [o for o in _list(fetched) if o["id"] == art["id"]][0]
    assert moved["location"] == str(new) and moved["state"] == "clean"
    # the produced value is still found through the state record
    p = subprocess.run([sys.executable, "-c", "import datamanifest\n"
                        "@datamanifest.cached(cachetype='proj.stats')\ndef stats(n):\n"
                        "    raise SystemExit('recomputed')\nprint(stats(3), stats.artifact(3)"
                        ".source)"], cwd=fetched, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-1] == "recorded" and "[0, 1, 2]" in p.stdout
    # a dataset: moved into another root, found there, source gone
    key_a = _list(fetched, "a")[0]["key"]
    r = run_cli("mv", "a", str(dest), cwd=fetched)
    assert r.returncode == 0, r.stderr
    assert (dest / key_a).read_bytes() == b"x,y\n1,2\n"
    assert (dest / (key_a + ".complete")).exists() and not (fetched / "store" / key_a).exists()
    assert run_cli("path", "a", cwd=fetched).stdout.strip() == str(dest / key_a)
    # moving again into the same root: it is already there, so nothing moves (MNT-023)
    r = run_cli("mv", "a", str(dest), cwd=fetched)
    assert r.returncode == 0 and "moved: 0 object(s)" in r.stderr, r.stdout + r.stderr
    assert (dest / key_a).read_bytes() == b"x,y\n1,2\n"
    # anywhere else it is protected: it lies outside the store roots now
    r = run_cli("mv", "a", str(fetched / "elsewhere"), cwd=fetched)
    assert r.returncode == 1 and "DM132" in r.stderr


def test_mv_into_a_destination_holding_other_bytes_is_refused(fetched: Path):
    key_b = _list(fetched, "b")[0]["key"]
    dest = fetched / "other"
    (dest / key_b).parent.mkdir(parents=True)
    (dest / key_b).write_text("different")
    (dest / (key_b + ".complete")).write_text('{"checksum": "sha256:' + "0" * 64 + '"}')
    r = run_cli("mv", "b", str(dest), cwd=fetched)
    assert r.returncode == 1 and "DM133" in r.stderr
    assert (dest / key_b).read_text() == "different" and (fetched / "store" / key_b).exists()


# -- refresh --------------------------------------------------------------------------------------
def test_refresh_follows_the_bytes(fetched: Path):
    state = fetched / ".datamanifest" / "state.toml"
    key_a, key_b = _list(fetched, "a")[0]["key"], _list(fetched, "b")[0]["key"]
    doc = tomllib.loads(state.read_text())
    doc["datasets"][key_a]["storage_path"] = "store/moved-away.csv"  # relocated
    doc["datasets"]["gone/x"] = {"storage_path": "store/gone/x"}  # another branch's dataset
    doc["datasets"]["gone2/y"] = {"storage_path": "store/y"}
    del doc["datasets"][key_b]  # untracked
    import tomli_w

    state.write_text(tomli_w.dumps(doc))
    r = run_cli("refresh", "--dry-run", cwd=fetched)
    assert r.returncode == 0 and state.read_text() == tomli_w.dumps(doc)
    r = run_cli("refresh", "--scan", "--json", cwd=fetched)
    assert r.returncode == 0, r.stderr
    after = read_state(state).datasets
    assert after[key_a].storage_path == f"store/{key_a}"  # repointed to where it is
    assert after[key_b].storage_path == f"store/{key_b}"  # adopted: its bytes verified
    assert "gone/x" in after and "gone2/y" in after  # not objects of this manifest: left alone
    assert {o["id"]: o["state"] for o in _list(fetched, "--kind", "data")} == \
        {"a": "clean", "b": "clean"}


@pytest.mark.covers("MNT-024")
def test_refresh_drops_only_reachable_records(fetched: Path):
    """Ecosystem defect: its refresh dropped every record on a disk that was not mounted."""
    from datamanifest.store.state import _rewrite

    p = subprocess.run([sys.executable, "-c", "import datamanifest\n"
                        "@datamanifest.cached(cachetype='proj.stats')\ndef stats(n):\n"
                        "    return list(range(n))\nstats(5)"], cwd=fetched, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    path = fetched / ".datamanifest" / "state.toml"
    arts = sorted((o for o in _list(fetched) if o["kind"] == "cached"), key=lambda o: o["id"])
    gone, unplugged, elsewhere = (o["id"].rsplit("/", 1)[1] for o in arts)
    import shutil

    state = read_state(path)
    inst = state.datacache["proj.stats"]["instances"]
    shutil.rmtree(arts[0]["location"])  # deleted by hand: its folder's parent exists
    shutil.rmtree(arts[1]["location"])  # recorded on a disk that is not mounted
    inst[unplugged] = f"/mnt/unplugged-disk/cache/proj.stats/{unplugged}"
    inst[elsewhere] = f"/mnt/unplugged-disk/cache/proj.stats/{elsewhere}"  # but it is here
    _rewrite(path, state)
    assert {o["id"].rsplit("/", 1)[1]: o["state"] for o in _list(fetched, "proj.stats")} == {
        gone: "missing", unplugged: "missing", elsewhere: "relocated"}

    r = run_cli("refresh", cwd=fetched)
    assert r.returncode == 0, r.stderr
    inst = read_state(path).datacache["proj.stats"]["instances"]
    assert gone not in inst
    assert inst[unplugged] == f"/mnt/unplugged-disk/cache/proj.stats/{unplugged}"
    assert "unreachable" in r.stdout and unplugged[:12] in r.stdout
    assert inst[elsewhere] == f"cache/proj.stats/{elsewhere}"


# -- export ---------------------------------------------------------------------------------------
@pytest.mark.covers("MNT-025")
def test_export_is_self_contained_and_never_overwrites(fetched: Path, tmp_path: Path):
    dest = tmp_path / "bundle"
    r = run_cli("export", str(dest), cwd=fetched)
    assert r.returncode == 0, r.stderr
    text = (dest / "datamanifest.toml").read_text()
    doc = tomllib.loads(text)
    assert doc["_STORAGE"] == {"datasets_dir": "."} and sorted(
        k for k in doc if not k.startswith("_")) == ["a", "b"]
    assert "# dataset b" in text or "[b]" in text
    r = run_cli("fetch", "--offline", cwd=dest)
    assert r.returncode == 0, r.stderr + r.stdout  # everything present, verified, no network
    r = run_cli("export", str(dest), cwd=fetched)
    assert r.returncode == 1 and "DM133" in r.stderr
    assert run_cli("export", str(dest), "--force", cwd=fetched).returncode == 0
