"""Authoring verbs (SCHEMA.md §24) against real parts: a loopback HTTP server, real files,
real processes editing one manifest at once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from .conftest import run_cli, sha256_of

HEAD = '''# our project's data
[_META]
schema = 1

[_STORAGE]
datasets_dir = "store"   # next to the manifest

# stations: the weekly list
[stations]
uri = "{url}"  # from the agency
checksum = "{sum}"
'''


@pytest.fixture
def proj(tmp_path: Path, served: Path, http) -> Path:
    (served / "stations.csv").write_bytes(b"id,name\n1,a\n")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "datamanifest.toml").write_text(HEAD.format(
        url=http.url("stations.csv"), sum="sha256:" + sha256_of(b"id,name\n1,a\n")))
    return root


def _manifest(root: Path) -> str:
    return (root / "datamanifest.toml").read_text()


# -- init ------------------------------------------------------------------------------------------
@pytest.mark.covers("AUT-001")
def test_init_writes_a_clean_starter_and_never_overwrites(tmp_path: Path):
    r = run_cli("init", str(tmp_path / "new"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "new" / "datamanifest.toml").read_text()
    assert "[_META]\nschema = 1\n" in text and text.startswith("#")
    chk = run_cli("check", "--format", "json", cwd=tmp_path / "new")
    assert chk.returncode == 0 and json.loads(chk.stdout) == []
    (tmp_path / "new" / "datamanifest.toml").write_text("# mine\n")
    again = run_cli("init", str(tmp_path / "new"))
    assert again.returncode == 1 and "DM140" in again.stderr
    assert (tmp_path / "new" / "datamanifest.toml").read_text() == "# mine\n"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "Datasets.toml").write_text("# legacy name\n")
    r = run_cli("init", str(tmp_path / "other"))
    assert r.returncode == 1 and "DM140" in r.stderr
    assert not (tmp_path / "other" / "datamanifest.toml").exists()


# -- add -------------------------------------------------------------------------------------------
@pytest.mark.covers("AUT-002", "AUT-003", "AUT-005")
def test_add_fetches_first_then_writes_the_entry_with_its_checksum(proj: Path, served: Path,
                                                                   http):
    body = b"t,v\n" + b"0,1\n" * 1000
    (served / "Sea Level.v3.csv").write_bytes(body)
    before = _manifest(proj)
    r = run_cli("add", http.url("Sea%20Level.v3.csv"), "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["name"] == "Sea_Level_v3" and out["fetched"]
    assert out["checksum"] == "sha256:" + sha256_of(body)
    after = _manifest(proj)
    assert after.startswith(before.rstrip("\n") + "\n\n[Sea_Level_v3]\n")  # all kept, bytes
    assert f'checksum = "{out["checksum"]}"' in after
    assert Path(out["path"]).read_bytes() == body
    assert http.hits["/Sea%20Level.v3.csv"] == 1
    # the same URI again: its key is declared (DM033); nothing changes, nothing downloads
    again = run_cli("add", http.url("Sea%20Level.v3.csv"), "--name", "other", cwd=proj)
    assert again.returncode == 1 and "DM033" in again.stderr
    assert _manifest(proj) == after and http.hits["/Sea%20Level.v3.csv"] == 1
    taken = run_cli("add", http.url("x.csv"), "--name", "stations", cwd=proj)
    assert taken.returncode == 1 and "DM141" in taken.stderr and _manifest(proj) == after


@pytest.mark.covers("AUT-005")
def test_a_failed_add_leaves_manifest_and_store_as_they_were(proj: Path, served: Path, http):
    before = _manifest(proj)
    r = run_cli("add", http.url("absent.csv"), cwd=proj)
    assert r.returncode == 1 and "DM07" in r.stderr and "Traceback" not in r.stderr
    assert _manifest(proj) == before
    assert not (proj / "store").exists() or not any((proj / "store").rglob("absent*"))
    # a mismatch cannot happen on add (nothing declared), but a non-archive --extract is
    # refused before any download (AUT-002: it would add DM051)
    (served / "plain.csv").write_bytes(b"a\n")
    r = run_cli("add", http.url("plain.csv"), "--extract", cwd=proj)
    assert r.returncode == 1 and "DM051" in r.stderr
    assert _manifest(proj) == before and http.hits["/plain.csv"] == 0


def test_add_no_fetch_declares_and_fetch_fills(proj: Path, served: Path, http):
    (served / "later.nc").write_bytes(b"CDF\x01later")
    r = run_cli("add", http.url("later.nc"), "--no-fetch", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert http.hits["/later.nc"] == 0 and "[later]\n" in _manifest(proj)
    assert run_cli("fetch", "later", cwd=proj).returncode == 0
    assert 'checksum = "sha256:' + sha256_of(b"CDF\x01later") in _manifest(proj)


def test_add_extract_writes_the_tree_checksum(proj: Path, served: Path, http):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("run/a.txt", b"a"), ("run/b.txt", b"bb")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (served / "run-7.tar.gz").write_bytes(buf.getvalue())
    r = run_cli("add", http.url("run-7.tar.gz"), "--extract", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["name"] == "run-7" and out["checksum"].startswith("tree-sha256:")
    assert (Path(out["path"]) / "run" / "b.txt").read_bytes() == b"bb"
    assert "extract = true" in _manifest(proj)
    assert run_cli("verify", "run-7", cwd=proj).returncode == 0


def test_add_a_relative_path_from_a_subfolder_is_made_project_relative(proj: Path):
    (proj / "raw").mkdir()
    (proj / "raw" / "obs.txt").write_text("obs\n")
    r = run_cli("add", "obs.txt", cwd=proj / "raw")
    assert r.returncode == 0, r.stderr
    assert 'uri = "raw/obs.txt"' in _manifest(proj)


@pytest.mark.covers("AUT-002", "MAN-004")
def test_eight_processes_adding_at_once_leave_all_eight_entries(proj: Path, served: Path, http):
    for i in range(8):
        (served / f"f{i}.txt").write_bytes(f"file {i}\n".encode())
    procs = [subprocess.Popen([sys.executable, "-m", "datamanifest", "add",
                               http.url(f"f{i}.txt"), "-q"], cwd=proj,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    text = _manifest(proj)
    for i in range(8):
        assert f"[f{i}]\n" in text
        assert sha256_of(f"file {i}\n".encode()) in text
    assert "# stations: the weekly list" in text and "# from the agency" in text
    assert run_cli("check", cwd=proj).returncode == 0


# -- remove ----------------------------------------------------------------------------------------
def _add(proj: Path, served: Path, http, name: str, data: bytes) -> Path:
    (served / f"{name}.bin").write_bytes(data)
    r = run_cli("add", http.url(f"{name}.bin"), "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    return Path(json.loads(r.stdout)["path"])


@pytest.mark.covers("AUT-006")
def test_remove_deletes_bytes_then_the_entry_and_its_comments(proj: Path, served: Path, http):
    assert run_cli("fetch", cwd=proj).returncode == 0
    target = proj / "store" / "127.0.0.1" / "stations.csv"
    assert target.exists()
    dry = run_cli("remove", "stations", "--dry-run", cwd=proj)
    assert dry.returncode == 0 and "would delete" in dry.stderr and target.exists()
    r = run_cli("remove", "stations", cwd=proj)
    assert r.returncode == 0, r.stderr
    text = _manifest(proj)
    assert "[stations]" not in text and "weekly list" not in text
    assert "# our project's data" in text and "# next to the manifest" in text
    assert not target.exists() and not Path(str(target) + ".complete").exists()


@pytest.mark.covers("AUT-006")
def test_remove_keep_data_and_required_and_busy_datasets(proj: Path, served: Path, http):
    path = _add(proj, served, http, "base", b"base bytes")
    with open(proj / "datamanifest.toml", "a") as f:
        f.write('\n[derived]\nuri = "derived.txt"\nrequires = ["base"]\n')
    (proj / "derived.txt").write_text("d")
    before = _manifest(proj)
    r = run_cli("remove", "base", cwd=proj)
    assert r.returncode == 1 and "DM040" in r.stderr
    assert _manifest(proj) == before and path.exists()  # refused before any byte went
    # a live writer holds the dataset's lock: DM131, entry and bytes kept
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys,time\nfrom datamanifest.store.lock import Lock\n"
        f"l=Lock({str(path) + '.lock'!r}, stale_age=30).acquire()\n"
        "print('held', flush=True)\ntime.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = run_cli("remove", "derived", cwd=proj)
        assert r.returncode == 0, r.stderr
        r = run_cli("remove", "base", cwd=proj)
        assert r.returncode == 1 and "DM131" in r.stderr
        assert "[base]" in _manifest(proj) and path.exists()
    finally:
        holder.kill()
        holder.wait()
    r = run_cli("remove", "base", "--keep-data", cwd=proj)
    assert r.returncode == 0 and "[base]" not in _manifest(proj) and path.exists()


def test_remove_a_protected_dataset_keeps_its_bytes(proj: Path, tmp_path: Path):
    mine = tmp_path / "mine.dat"
    mine.write_bytes(b"precious")
    with open(proj / "datamanifest.toml", "a") as f:
        f.write(f'\n[own]\nuri = "file://{mine}"\nstorage_path = "{tmp_path}/kept.dat"\n')
    # a storage_path outside the project: written for a trusted manifest only (TRU-004)
    assert run_cli("fetch", "own", "--trust", cwd=proj).returncode == 0
    r = run_cli("remove", "own", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert "protected" in r.stderr and (tmp_path / "kept.dat").read_bytes() == b"precious"
    assert "[own]" not in _manifest(proj)


# -- show ------------------------------------------------------------------------------------------
def test_show_tells_entry_key_location_and_state(proj: Path):
    assert run_cli("fetch", cwd=proj).returncode == 0
    r = run_cli("show", "stations", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["entry"].startswith("# stations: the weekly list\n[stations]\n")
    assert info["record"]["key"] == "127.0.0.1/stations.csv"
    assert info["found_in"] == "target" and info["object"]["state"] == "clean"
    assert info["state_record"]["checksum"] == info["record"]["checksum"]
    text = run_cli("show", "stations", cwd=proj)
    assert "clean" in text.stdout and "127.0.0.1/stations.csv" in text.stdout
    missing = run_cli("show", "nope", cwd=proj)
    assert missing.returncode == 1 and "DM076" in missing.stderr


# -- update-checksums ------------------------------------------------------------------------------
@pytest.mark.covers("AUT-007")
def test_update_checksums_rehashes_in_place_and_keeps_the_dataset_current(proj: Path, http):
    assert run_cli("fetch", cwd=proj).returncode == 0
    target = proj / "store" / "127.0.0.1" / "stations.csv"
    target.chmod(0o644)
    target.write_bytes(b"id,name\n1,b\n")  # edited at rest
    new = "sha256:" + sha256_of(b"id,name\n1,b\n")
    before = _manifest(proj)
    dry = run_cli("update-checksums", "--dry-run", cwd=proj)
    assert dry.returncode == 0 and "would update" in dry.stdout and _manifest(proj) == before
    r = run_cli("update-checksums", "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    [change] = json.loads(r.stdout)["datasets"]
    assert change["action"] == "update" and change["new"] == new
    after = _manifest(proj)
    assert f'checksum = "{new}"\n' in after
    assert after.replace(new, "X") == before.replace(change["old"], "X")  # only the value
    hits = http.hits["/stations.csv"]
    f = run_cli("fetch", "--json", cwd=proj)
    assert json.loads(f.stdout)["datasets"][0]["status"] == "present"
    assert http.hits["/stations.csv"] == hits  # current: nothing downloaded
    assert run_cli("verify", cwd=proj).returncode == 0


@pytest.mark.covers("AUT-007")
def test_update_checksums_refetch_accepts_a_changed_source(proj: Path, served: Path, http):
    assert run_cli("fetch", cwd=proj).returncode == 0
    (served / "stations.csv").write_bytes(b"id,name\n1,a\n2,c\n")
    assert run_cli("fetch", "--force", cwd=proj).returncode == 1  # DM070: declared differs
    r = run_cli("update-checksums", "stations", "--refetch", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert sha256_of(b"id,name\n1,a\n2,c\n") in _manifest(proj)
    assert (proj / "store" / "127.0.0.1" / "stations.csv").read_bytes() == b"id,name\n1,a\n2,c\n"
    assert "# from the agency" in _manifest(proj)


# -- import ----------------------------------------------------------------------------------------
@pytest.mark.covers("AUT-010", "AUT-011")
def test_import_pooch_adopts_verified_cache_files_and_is_idempotent(proj: Path, served: Path,
                                                                   http, tmp_path: Path):
    cache = tmp_path / "pooch-cache"
    (cache / "sub").mkdir(parents=True)
    good, bad = b"good bytes\n", b"tampered\n"
    (cache / "good.txt").write_bytes(good)
    (cache / "sub" / "bad.txt").write_bytes(bad)
    for name, data in (("good.txt", good), ("sub/bad.txt", b"original\n"), ("far.txt", b"f")):
        (served / name).parent.mkdir(parents=True, exist_ok=True)
        (served / name).write_bytes(data)
    registry = tmp_path / "registry.txt"
    registry.write_text(f"# pooch registry\ngood.txt {sha256_of(good)}\n"
                        f"sub/bad.txt sha256:{sha256_of(b'original')}\n"
                        f"far.txt md5:{hashlib.md5(b'f').hexdigest()} {http.url('far.txt')}\n")
    r = run_cli("import", "pooch", str(registry), "--base-url", http.url(""), "--adopt",
                str(cache), "--json", cwd=proj)
    assert r.returncode == 1, r.stderr  # one adoption failed: reported, entry still declared
    out = json.loads(r.stdout)
    assert [e["name"] for e in out["added"]] == ["good", "sub_bad", "far"]
    assert set(out["adopted"]) == {"good"} and out["failed"]["sub_bad"]["code"] == "DM070"
    assert sum(http.hits.values()) == 0  # adopted from the cache, nothing downloaded
    adopted = Path(out["adopted"]["good"])
    assert adopted.read_bytes() == good and Path(str(adopted) + ".complete").exists()
    text = _manifest(proj)
    assert "[good]" in text and "[sub_bad]" in text and "# from the agency" in text
    assert run_cli("check", cwd=proj).returncode == 0
    again = run_cli("import", "pooch", str(registry), "--base-url", http.url(""), "--json",
                    cwd=proj)
    assert json.loads(again.stdout)["added"] == [] and _manifest(proj) == text
    bad_line = tmp_path / "broken.txt"
    bad_line.write_text("good.txt\n")
    r = run_cli("import", "pooch", str(bad_line), cwd=proj)
    assert r.returncode == 1 and f"{bad_line}:1:1: error DM143" in r.stderr
    assert _manifest(proj) == text


@pytest.mark.covers("AUT-012")
def test_import_dvc_workspace(proj: Path, tmp_path: Path):
    ws = proj / "dvcproj"
    (ws / ".dvc").mkdir(parents=True)
    (ws / ".dvc" / "config").write_text("[core]\n")
    (ws / "data" / "images").mkdir(parents=True)
    (ws / "data" / "images" / "a.png").write_bytes(b"png-a")
    (ws / "data" / "images" / "b.png").write_bytes(b"png-b")
    table = b"x,y\n1,2\n"
    (ws / "data" / "table.csv").write_bytes(table)
    md5 = hashlib.md5(table).hexdigest()
    (ws / "data" / "table.csv.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {len(table)}\n  hash: md5\n  path: table.csv\n")
    (ws / "data" / "images.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  nfiles: 2\n  hash: md5\n"
        "  path: images\n")
    (ws / "old.dvc").write_text(f"outs:\n- md5: {md5}\n  path: legacy.bin\n")
    r = run_cli("import", "dvc", str(ws), "--json", cwd=proj)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    names = {e["name"]: e for e in out["added"]}
    assert names["table"]["checksum"] == f"md5:{md5}"
    assert names["images"]["uris"] == ["dvcproj/data/images/a.png", "dvcproj/data/images/b.png"]
    assert names["images"]["checksum"].startswith("tree-sha256:")  # filled by the copy
    assert {w["code"] for w in out["warnings"]} == {"DM144"}
    assert Path(out["adopted"]["table"]).read_bytes() == table
    assert run_cli("verify", "images", "table", cwd=proj).returncode == 0


@pytest.mark.covers("AUT-013")
def test_import_urls(proj: Path, served: Path, http, tmp_path: Path):
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# two more\n{http.url('stations.csv')}\n{http.url('grid.nc')}  "
                       f"md5:{'0' * 32}\n")
    r = run_cli("import", "urls", str(listing), cwd=proj)
    assert r.returncode == 0, r.stderr
    assert "1 already declared" in r.stderr and "[grid]" in _manifest(proj)
    assert sum(http.hits.values()) == 0  # declared only
