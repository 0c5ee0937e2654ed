"""fetch against a real loopback HTTP server and real files (no mocks)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from datamanifest.errors import ChecksumMismatch, FetchError
from datamanifest.project import Project

from .conftest import run_cli, sha256_of, write_manifest


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


def test_http_fetch_verifies_and_publishes(http, served, project):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (served / "a.bin").write_bytes(data)
    write_manifest(project, f'[a]\nuri = "{http.url("a.bin")}"\nchecksum = "sha256:{sha256_of(data)}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    target = project / "store" / "127.0.0.1" / "a.bin"
    assert target.read_bytes() == data
    assert (project / "store" / "127.0.0.1" / "a.bin.complete").exists()
    state = tomllib.loads((project / ".datamanifest" / "state.toml").read_text())
    rec = state["datasets"]["127.0.0.1/a.bin"]
    assert rec["sha256"] == sha256_of(data) and rec["size"] == len(data)
    assert rec["storage_path"] == "store/127.0.0.1/a.bin"
    # a second fetch downloads nothing
    proc = run_cli("fetch", "--json", cwd=project)
    assert json.loads(proc.stdout)["datasets"][0]["status"] == "present"
    assert http.hits["/a.bin"] == 1


@pytest.mark.covers("STO-007", "STO-008", "FET-010")
def test_cut_off_download_leaves_nothing_complete_then_resumes(http, served, project):
    data = os.urandom(2 * 1024 * 1024)
    (served / "cut.bin").write_bytes(data)
    write_manifest(project, f'[cut]\nuri = "{http.url("cut.bin")}"\n')
    http.cut["/cut.bin"] = 700_000
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1
    assert "DM071" in proc.stderr and "Traceback" not in proc.stderr
    store = project / "store"
    assert not any(n.endswith(".complete") for n in _files(store))
    assert not (store / "127.0.0.1" / "cut.bin").exists()
    assert "checksum" not in (project / "datamanifest.toml").read_text()  # nothing auto-filled
    assert json.loads(run_cli("status", "--json", cwd=project).stdout)[0]["status"] == "incomplete"
    del http.cut["/cut.bin"]
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (store / "127.0.0.1" / "cut.bin").read_bytes() == data
    assert http.ranges["/cut.bin"] == 1  # resumed with Range + If-Range, not downloaded again
    out = json.loads(proc.stdout)["datasets"][0]
    assert out["checksum"] == "sha256:" + sha256_of(data)  # the hash covers the kept bytes too
    assert not any(n.endswith(".tmp") for n in _files(store))


@pytest.mark.covers("FET-012")
def test_resume_refused_when_the_source_changed(http, served, project):
    old = os.urandom(1024 * 1024)
    (served / "v.bin").write_bytes(old)
    write_manifest(project, f'[v]\nuri = "{http.url("v.bin")}"\n')
    http.cut["/v.bin"] = 300_000
    assert run_cli("fetch", cwd=project).returncode == 1
    del http.cut["/v.bin"]
    new = os.urandom(1024 * 1024 + 5)
    (served / "v.bin").write_bytes(new)  # new bytes, new ETag: If-Range fails, 200 whole
    assert run_cli("fetch", cwd=project).returncode == 0
    assert (project / "store" / "127.0.0.1" / "v.bin").read_bytes() == new
    assert http.ranges["/v.bin"] == 0


def test_checksum_mismatch_publishes_nothing(http, served, project):
    (served / "m.txt").write_bytes(b"actual content\n")
    wrong = "0" * 64
    write_manifest(project, f'[m]\nuri = "{http.url("m.txt")}"\nchecksum = "sha256:{wrong}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1
    assert "DM070" in proc.stderr and "'m'" in proc.stderr and "sha256" in proc.stderr
    assert wrong in proc.stderr and sha256_of(b"actual content\n") in proc.stderr
    assert _files(project / "store") <= {"127.0.0.1"}
    assert not (project / ".datamanifest" / "state.toml").exists()


def test_mismatch_via_api_raises_typed_error(http, served, project):
    (served / "m.txt").write_bytes(b"x")
    write_manifest(project, f'[m]\nuri = "{http.url("m.txt")}"\nchecksum = "md5:{"0" * 32}"\n')
    with pytest.raises(ChecksumMismatch) as exc:
        Project.open(project).fetch()
    assert exc.value.algorithm == "md5" and exc.value.expected == "0" * 32
    assert exc.value.actual == "9dd4e461268c8034f5c8564e155c67a6"


@pytest.mark.covers("LCK-003", "FET-005")
def test_two_processes_download_once(http, served, project):
    data = os.urandom(512 * 1024)
    (served / "shared.bin").write_bytes(data)
    http.delay["/shared.bin"] = 1.5
    write_manifest(project, f'[shared]\nuri = "{http.url("shared.bin")}"\n'
                            f'checksum = "sha256:{sha256_of(data)}"\n')
    cmd = [sys.executable, "-m", "datamanifest", "fetch", "--json"]
    procs = [subprocess.Popen(cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    statuses = sorted(json.loads(o[0])["datasets"][0]["status"] for o in outs)
    assert statuses == ["fetched", "present"]
    assert http.hits["/shared.bin"] == 1
    assert (project / "store" / "127.0.0.1" / "shared.bin").read_bytes() == data


COMMENTED = '''\
# Project data — keep this header
[_META]
schema = 1   # manifest schema

[_STORAGE]
datasets_dir = "store"

# first dataset
[first]
uri = "{u1}"   # trailing comment
description = "kept"

[second]   # header comment
uri = "{u2}"
checksum = ""   # empty on purpose

[second._LANG.julia]
loader = "CSV:read"
'''


def test_autofill_keeps_comments_and_layout(http, served, project):
    (served / "1.csv").write_bytes(b"a,b\n1,2\n")
    (served / "2.csv").write_bytes(b"c\n3\n")
    original = COMMENTED.format(u1=http.url("1.csv"), u2=http.url("2.csv"))
    (project / "datamanifest.toml").write_text(original)
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    text = (project / "datamanifest.toml").read_text()
    h1, h2 = sha256_of(b"a,b\n1,2\n"), sha256_of(b"c\n3\n")
    expected = original.replace(
        '   # trailing comment\n', f'   # trailing comment\nchecksum = "sha256:{h1}"\n'
    ).replace('checksum = ""   # empty on purpose', f'checksum = "sha256:{h2}"   # empty on purpose')
    assert text == expected
    assert run_cli("check", cwd=project).returncode == 0


def _tar_with(member: str, *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("data/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        bad = tarfile.TarInfo(member)
        if link is not None:
            bad.type = tarfile.SYMTYPE
            bad.linkname = link
        else:
            bad.size = 4
        tf.addfile(bad, None if link is not None else io.BytesIO(b"evil"))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["tar-dotdot", "tar-absolute", "tar-symlink-out", "zip-dotdot"])
def test_unsafe_archive_is_refused(http, served, project, tmp_path, kind):
    if kind == "tar-dotdot":
        blob, name = _tar_with("../evil.txt"), "a.tar.gz"
    elif kind == "tar-absolute":
        blob, name = _tar_with(str(tmp_path / "abs-evil.txt")), "a.tar.gz"
    elif kind == "tar-symlink-out":
        blob, name = _tar_with("data/link", link="../../../../etc"), "a.tar.gz"
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("ok.txt", "ok")
            zf.writestr("../evil.txt", "evil")
        blob, name = buf.getvalue(), "a.zip"
    (served / name).write_bytes(blob)
    write_manifest(project, f'[arch]\nuri = "{http.url(name)}"\nextract = true\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1
    assert "DM073" in proc.stderr, proc.stderr
    assert not (project / "store" / "evil.txt").exists()
    assert not (project / "store" / "127.0.0.1" / "evil.txt").exists()
    assert not (tmp_path / "abs-evil.txt").exists()
    assert not any(n.endswith((".complete", ".tmp", ".part")) for n in _files(project / "store"))


def test_extract_zip_and_tar(http, served, project):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/x.txt", "x")
    (served / "z.zip").write_bytes(buf.getvalue())
    (served / "t.tar.gz").write_bytes(_tar_with("data/more.txt"))
    write_manifest(project, f'[z]\nuri = "{http.url("z.zip")}"\nextract = true\n\n'
                            f'[t]\nuri = "{http.url("t.tar.gz")}"\nextract = true\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    base = project / "store" / "127.0.0.1"
    assert (base / "z" / "inner" / "x.txt").read_text() == "x"
    assert (base / "z" / ".complete").exists() and (base / "t" / ".complete").exists()
    assert (base / "t" / "data" / "ok.txt").read_text() == "ok"
    assert not (base / "z.zip.part").exists()


def test_file_sources_and_requires_order(project):
    src = project / "inputs"
    src.mkdir()
    (src / "grid.txt").write_text("grid")
    (src / "model.txt").write_text("model")
    write_manifest(project, '[model]\nuri = "inputs/model.txt"\nrequires = ["grid"]\n\n'
                            f'[grid]\nuri = "file://{src / "grid.txt"}"\nkey = "grid.txt"\n')
    report = Project.open(project).fetch()
    assert [o.name for o in report.outcomes] == ["grid", "model"]
    assert (project / "store" / "grid.txt").read_text() == "grid"
    assert (project / "store" / "inputs" / "model.txt").read_text() == "model"


def test_failed_requirement_blocks_dependent(http, project):
    write_manifest(project, f'[a]\nuri = "{http.url("missing.csv")}"\n\n'
                            '[b]\nuri = "inputs/b.txt"\nrequires = ["a"]\n')
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert out["a"]["status"] == "failed" and out["a"]["error"]["code"] == "DM074"
    assert out["b"]["status"] == "blocked" and out["b"]["error"]["code"] == "DM081"


def test_unsupported_scheme_is_an_error(project):
    write_manifest(project, '[s]\nuri = "ftp://example.org/key.nc"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM072" in proc.stderr and "'ftp'" in proc.stderr
    assert (project / "store").exists() is False or not any((project / "store").rglob("*"))


@pytest.mark.covers("MAN-012")
def test_fetch_refuses_invalid_manifest(project):
    write_manifest(project, '[a]\nuri = "x.csv"\nrequires = ["nope"]\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1
    assert "DM040" in proc.stderr and "DM091" in proc.stderr
    assert not (project / "store").exists()


@pytest.mark.covers("MAN-012", "FET-008", "MAN-011")
def test_one_error_policy(http, served, project):
    """Issue 20 point 5: a DM010 in a dataset's table did not stop `fetch`, which filled
    `checksum` beside the misspelt `checksun`; one unknown name in another dataset's
    `requires` (DM040) blocked unrelated datasets. Now each dataset whose closure has an
    error is refused before any download, the others are fetched, and the exit is 1."""
    for n in "abce":
        (served / f"{n}.csv").write_text(n)
    m = write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\nchecksun = ""\n\n'
                       f'[b]\nuri = "{http.url("b.csv")}"\n\n'
                       f'[c]\nuri = "{http.url("c.csv")}"\nrequires = ["a"]\n\n'
                       f'[d]\nuri = "{http.url("a.csv")}"\nkey = "d.csv"\nrequires = ["nope"]\n\n'
                       f'[e]\nuri = "{http.url("e.csv")}"\nrequires = ["b"]\n')
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1
    out = {o["name"]: o for o in json.loads(proc.stdout)["datasets"]}
    assert {n: o["status"] for n, o in out.items()} == {
        "a": "refused", "c": "refused", "d": "refused", "b": "fetched", "e": "fetched"}
    assert out["a"]["error"]["code"] == "DM091" and "DM010" in out["a"]["error"]["message"]
    assert "DM040" in out["d"]["error"]["message"]
    assert not http.hits.get("/a.csv") and not http.hits.get("/c.csv")  # no download
    text = m.read_text()
    assert 'checksun = ""' in text and text.count("checksum =") == 2  # b and e only
    # asked for one clean dataset, errors elsewhere do not matter
    proc = run_cli("fetch", "e", cwd=project)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("fetch", "c", cwd=project)
    assert proc.returncode == 1 and "c: refused" in proc.stderr and "DM010" in proc.stderr
    st = {r["name"]: r["status"] for r in json.loads(run_cli("status", "--json", cwd=project).stdout)}
    assert st == {"a": "refused", "b": "present", "c": "refused", "d": "refused", "e": "present"}


@pytest.mark.covers("CFG-003", "FET-008")
def test_config_typo_refuses_every_dataset(http, served, project):
    (served / "a.csv").write_text("a")
    write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\n')
    cfg = project / ".datamanifest" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text('datasets_dri = "/elsewhere"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "a: refused" in proc.stderr
    assert f"{cfg}:1:1: error DM010" in proc.stderr and not (project / "store").exists()


def test_status_and_path(http, served, project):
    (served / "s.txt").write_bytes(b"s")
    write_manifest(project, f'[s]\nuri = "{http.url("s.txt")}"\naliases = ["ess"]\n')
    st = run_cli("status", "--json", cwd=project)
    assert json.loads(st.stdout)[0]["status"] == "missing"
    p = run_cli("path", "ess", cwd=project)
    assert p.returncode == 1 and "DM078" in p.stderr
    assert run_cli("fetch", "-q", cwd=project).returncode == 0
    p = run_cli("path", "ess", cwd=project)
    assert p.returncode == 0 and p.stdout.strip().endswith("store/127.0.0.1/s.txt")
    # an unmarked target is reported incomplete
    (project / "store" / "127.0.0.1" / "s.txt.complete").unlink()
    assert json.loads(run_cli("status", "--json", cwd=project).stdout)[0]["status"] == "incomplete"
    assert run_cli("path", "nope", cwd=project).returncode == 1


def test_error_from_api_is_typed(project):
    write_manifest(project, '[a]\nuri = "not-there.csv"\n')
    with pytest.raises(FetchError) as exc:
        Project.open(project).fetch()
    assert exc.value.code == "DM074"


@pytest.mark.covers("STA-003", "STA-005")
def test_state_file_is_replaced_atomically_and_never_directs_writes(project):
    (project / "x.csv").write_text("x")
    write_manifest(project, '[a]\nuri = "x.csv"\n')
    state = project / ".datamanifest" / "state.toml"
    state.parent.mkdir()
    # a stale record claims the dataset lives elsewhere: it must not decide the write
    state.write_text('[_META]\nschema = 5\n\n[datasets."x.csv"]\nstorage_path = "elsewhere/x.csv"\n')
    before = state.stat().st_ino
    assert run_cli("fetch", cwd=project).returncode == 0
    assert (project / "store" / "x.csv").read_text() == "x"
    assert not (project / "elsewhere").exists()
    assert state.stat().st_ino != before  # replaced by rename, not rewritten in place
    assert tomllib.loads(state.read_text())["datasets"]["x.csv"]["storage_path"] == "store/x.csv"
    assert [p.name for p in state.parent.iterdir() if p.name.endswith(".tmp")] == []


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*"))}


@pytest.mark.covers("POOL-003", "POOL-004", "POOL-005")
def test_read_pool_hit_is_used_in_place_and_never_written(http, served, project, tmp_path):
    data = b"pooled bytes\n"
    (served / "p.csv").write_bytes(data)
    pool = tmp_path / "group-pool"
    key_dir = pool / "127.0.0.1"
    key_dir.mkdir(parents=True)
    (key_dir / "p.csv").write_bytes(data)
    (key_dir / "p.csv.complete").write_text(json.dumps({"checksum": f"sha256:{sha256_of(data)}"}))
    (key_dir / "nomarker.csv").write_bytes(b"no marker\n")
    (key_dir / "wrong.csv").write_bytes(b"other bytes\n")
    (served / "wrong.csv").write_bytes(b"right bytes\n")
    (served / "nochecksum.csv").write_bytes(b"x")
    (key_dir / "nochecksum.csv").write_bytes(b"x")
    before = _snapshot(pool)
    write_manifest(project, (
        f'[p]\nuri = "{http.url("p.csv")}"\nchecksum = "sha256:{sha256_of(data)}"\n\n'
        f'[nomarker]\nuri = "{http.url("nomarker.csv")}"\n'
        f'checksum = "sha256:{sha256_of(b"no marker" + bytes([10]))}"\n\n'
        f'[wrong]\nuri = "{http.url("wrong.csv")}"\nchecksum = "sha256:{sha256_of(b"right bytes" + bytes([10]))}"\n\n'
        f'[nochecksum]\nuri = "{http.url("nochecksum.csv")}"\n'))
    text = (project / "datamanifest.toml").read_text()
    (project / "datamanifest.toml").write_text(text.replace(
        'datasets_dir = "store"\n', f'datasets_dir = "store"\ndatasets_pools = ["{pool}"]\n', 1))
    # a pool the manifest names outside the project is read only for a trusted manifest
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1 and "DM180" in proc.stderr and str(pool) in proc.stderr
    assert not (project / "store").exists()
    proc = run_cli("fetch", "--json", "--trust", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert out["p"]["from_pool"] and out["p"]["path"] == str(key_dir / "p.csv")
    assert out["nomarker"]["from_pool"]  # hashed, verified, used in place
    assert not out["wrong"]["from_pool"] and out["wrong"]["status"] == "fetched"
    assert not out["nochecksum"]["from_pool"]  # no declared checksum: never from a pool
    assert http.hits["/p.csv"] == 0 and http.hits["/nomarker.csv"] == 0
    assert http.hits["/wrong.csv"] == 1
    assert _snapshot(pool) == before  # nothing written, moved or deleted in the pool
    state = tomllib.loads((project / ".datamanifest" / "state.toml").read_text())
    assert state["datasets"]["127.0.0.1/p.csv"]["storage_path"] == str(key_dir / "p.csv")
    assert run_cli("path", "p", cwd=project).stdout.strip() == str(key_dir / "p.csv")
    rows = {r["name"]: r for r in json.loads(run_cli("status", "--json", cwd=project).stdout)}
    assert rows["p"]["status"].startswith("present (") and rows["wrong"]["status"] == "present"
    assert not (project / "store" / "127.0.0.1" / "p.csv").exists()


def test_unreadable_or_legacy_state_never_breaks_a_fetch(project):
    (project / "x.csv").write_text("x")
    write_manifest(project, '[a]\nuri = "x.csv"\n')
    state = project / ".datamanifest" / "state.toml"
    state.parent.mkdir()
    state.write_text("this is [not toml\n")
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    aside = [p for p in state.parent.iterdir() if p.name.startswith("state.toml.unreadable-")]
    assert len(aside) == 1 and aside[0].read_text() == "this is [not toml\n"
    # a legacy schema with a record that does not fit schema 5 is kept verbatim
    state.write_text('[_META]\nschema = 2\n\n[datasets."old/key"]\nstorage_path = ""\nhash = "x"\n')
    assert run_cli("fetch", "--force", cwd=project).returncode == 0
    data = tomllib.loads(state.read_text())
    assert data["_META"]["schema"] == 5
    assert data["datasets"]["old/key"] == {"storage_path": "", "hash": "x"}
    assert data["datasets"]["x.csv"]["storage_path"] == "store/x.csv"


def test_s3_source_on_a_real_s3_server(s3_endpoint, project):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="obs/t.csv", Body=b"t,1\n")
    write_manifest(project, '[t]\nuri = "s3://data/obs/t.csv"\n\n[gone]\nuri = "s3://data/nope.csv"\n')
    proc = run_cli("fetch", "--json", cwd=project)
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert out["t"]["status"] == "fetched" and out["t"]["checksum"] == "sha256:" + sha256_of(b"t,1\n")
    assert (project / "store" / "data" / "obs" / "t.csv").read_bytes() == b"t,1\n"
    assert out["gone"]["error"]["code"] == "DM074"


@pytest.mark.covers("FET-006")
def test_offline_uses_only_what_is_present(http, served, project):
    (served / "a.txt").write_bytes(b"a")
    (served / "b.txt").write_bytes(b"b")
    write_manifest(project, f'[a]\nuri = "{http.url("a.txt")}"\n\n[b]\nuri = "{http.url("b.txt")}"\n')
    assert run_cli("fetch", "a", cwd=project).returncode == 0
    before = dict(http.hits)
    proc = run_cli("fetch", "--offline", "--json", cwd=project)
    assert proc.returncode == 1
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert out["a"]["status"] == "present"
    assert out["b"]["status"] == "missing" and out["b"]["error"]["code"] == "DM085"
    assert dict(http.hits) == before  # no request at all


def test_http_retries_5xx_and_429_honouring_retry_after(http, served, project):
    (served / "flaky.bin").write_bytes(b"eventually")
    http.script["/flaky.bin"] = [503, 429, 502]
    write_manifest(project, f'[f]\nuri = "{http.url("flaky.bin")}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert http.hits["/flaky.bin"] == 4
    assert (project / "store" / "127.0.0.1" / "flaky.bin").read_bytes() == b"eventually"
    assert all(ua.startswith("datamanifest/") for ua in http.user_agents)


def test_http_gives_up_after_retries(http, served, project):
    (served / "down.bin").write_bytes(b"x")
    http.script["/down.bin"] = [503] * 10
    write_manifest(project, f'[d]\nuri = "{http.url("down.bin")}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM071" in proc.stderr and "503" in proc.stderr
    assert http.hits["/down.bin"] == 4  # the first try and three retries


def test_netrc_credentials(http, served, project, tmp_path):
    import base64

    (served / "secret.bin").write_bytes(b"private")
    http.auth["/secret.bin"] = "Basic " + base64.b64encode(b"ada:s3cret").decode()
    write_manifest(project, f'[s]\nuri = "{http.url("secret.bin")}"\n')
    denied = run_cli("fetch", cwd=project, env={"NETRC": str(tmp_path / "none")})
    assert denied.returncode == 1 and "401" in denied.stderr and "netrc" in denied.stderr
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ada password s3cret\n")
    netrc.chmod(0o600)
    proc = run_cli("fetch", cwd=project, env={"NETRC": str(netrc)})
    assert proc.returncode == 0, proc.stderr
    assert (project / "store" / "127.0.0.1" / "secret.bin").read_bytes() == b"private"


def test_per_host_cap_bounds_concurrent_requests(http, served, project):
    body = []
    for i in range(12):
        (served / f"p{i}.bin").write_bytes(b"x" * 1000)
        http.delay[f"/p{i}.bin"] = 0.3
        body.append(f'[p{i}]\nuri = "{http.url(f"p{i}.bin")}"\n')
    write_manifest(project, "\n".join(body))
    proc = run_cli("fetch", "-q", "--jobs", "8", "--per-host", "2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert http.max_active == 2


def test_s3_endpoint_down_publishes_nothing(project):
    from datamanifest.testing import free_port

    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_MAX_ATTEMPTS": "1"}
    write_manifest(project, '[t]\nuri = "s3://data/obs/t.csv"\n')
    proc = run_cli("fetch", "--json", cwd=project, env=env)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["datasets"][0]["error"]["code"] == "DM071"
    store = project / "store"
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]
