"""Tree checksums and manifests on real folders (SCHEMA.md §20)."""

from __future__ import annotations

import io
import re
import json
import os
from pathlib import Path

import pytest

from datamanifest.tree import TreeWalkError, checksum_from_manifest, walk, write_manifest

from .conftest import ROOT

TREE_CASES = sorted((ROOT / "fixtures" / "tree").glob("*.json"))


def materialize(entries: list[dict], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for e in entries:
        p = root / e["path"].strip("/")
        kind = e.get("type", "file")
        if kind == "dir":
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "symlink":
            os.symlink(e["target"], p)
            continue
        p.write_bytes(e.get("content", "").encode("utf-8"))
        os.chmod(p, 0o755 if e.get("executable") else 0o644)


@pytest.mark.parametrize("case", [c for c in TREE_CASES if "entries" in json.loads(c.read_text())["input"]],
                         ids=lambda p: p.stem)
def test_walker_matches_every_described_tree(case: Path, tmp_path: Path):
    doc = json.loads(case.read_text(encoding="utf-8"))
    root = tmp_path / "tree"
    materialize(doc["input"]["entries"], root)
    for algorithm, expected in doc["expected"].items():
        if isinstance(expected, dict):
            with pytest.raises(TreeWalkError) as exc:
                walk(root, algorithm)
            assert exc.value.code == expected["error"]
            continue
        assert walk(root, algorithm).checksum == expected
        # the manifest written during the walk gives the same checksum back
        buf = io.StringIO()
        result = walk(root, algorithm, manifest=buf)
        manifest = {"fields": ["size", "lastModified", "digest", "type"],
                    "entries": json.loads(buf.getvalue())}
        assert checksum_from_manifest(manifest, algorithm) == result.checksum == expected


@pytest.mark.parametrize("case", [c for c in TREE_CASES if "symlink" not in c.read_text()
                                  and "entries" in json.loads(c.read_text())["input"]],
                         ids=lambda p: p.stem)
def test_dandi_value_equals_zarr_checksum(case: Path, tmp_path: Path):
    """Our dandi-zarr equals the reference implementation zarr-checksum on the same folder."""
    from zarr_checksum import compute_zarr_checksum
    from zarr_checksum.generators import yield_files_local

    doc = json.loads(case.read_text(encoding="utf-8"))
    root = tmp_path / "tree"
    materialize(doc["input"]["entries"], root)
    theirs = str(compute_zarr_checksum(yield_files_local(str(root))))
    assert doc["expected"]["dandi-zarr"] == f"dandi-zarr:{theirs}"


def test_control_marker_is_left_out_and_special_files_refused(tmp_path: Path):
    root = tmp_path / "d"
    materialize([{"path": "a.txt", "content": "a"}], root)
    before = walk(root).checksum
    (root / ".complete").write_text("{}")
    assert walk(root).checksum == before
    (root / "sub").mkdir()
    (root / "sub" / ".complete").write_text("{}")  # only the root marker is a control file
    assert walk(root).checksum != before
    os.mkfifo(root / "pipe")
    with pytest.raises(TreeWalkError) as exc:
        walk(root)
    assert exc.value.code == "DM120"


def test_manifest_document_validates_and_is_stable(tmp_path: Path):
    from datamanifest import schemas

    root = tmp_path / "d"
    materialize([{"path": "x/y.bin", "content": "1"}, {"path": "e", "type": "dir"},
                 {"path": "l", "type": "symlink", "target": "x/y.bin"}], root)
    out = tmp_path / "m.json"
    r = write_manifest(root, out, "tree-sha256")
    doc = json.loads(out.read_text())
    assert schemas.validator("tree-manifest").is_valid(doc)
    assert doc["checksum"] == r.checksum and doc["base"] == str(root.resolve())
    assert doc["entries"]["e"] == {} and doc["entries"]["l"][3] == "symlink"
    assert doc["statistics"]["entries"] == 2 and doc["statistics"]["depth"] == 1
    assert checksum_from_manifest(doc) == r.checksum


def test_dandi_manifest_is_a_valid_tree_manifest():
    from datamanifest import schemas

    doc = json.loads((ROOT / "fixtures" / "tree" / "dandi-manifest.json").read_text())["input"]["manifest"]
    assert schemas.validator("tree-manifest").is_valid(doc)


# -- folder datasets, verify, diff, versions ----------------------------------------------------------
import tarfile  # noqa: E402

from .conftest import run_cli  # noqa: E402
from .conftest import write_manifest as write_dm  # noqa: E402


def _archive_project(project: Path, files: dict[str, bytes], checksum: str = "") -> Path:
    src = project / "src"
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    with tarfile.open(project / "pkg.tar.gz", "w:gz") as tf:
        for rel in sorted(files):
            tf.add(src / rel, arcname=f"pkg/{rel}")
    line = f'checksum = "{checksum}"\n' if checksum else ""
    write_dm(project, f'[pkg]\nuri = "pkg.tar.gz"\nextract = true\n{line}')
    return project / "store" / "pkg"


FILES = {"zarr.json": b'{"zarr_format":3}', "t/c/0/0": b"\x00" * 4096, "t/c/0/1": b"\x01" * 4096,
         "t/c/1/0": b"\x02" * 100}


def test_verify_catches_flip_truncation_addition_deletion(project: Path):
    target = _archive_project(project, FILES)
    assert run_cli("fetch", cwd=project).returncode == 0
    assert run_cli("verify", cwd=project).returncode == 0
    data = target / "pkg" / "t" / "c" / "0" / "0"
    # a flipped byte with size and mtime restored: only --full sees it
    st = data.stat()
    blob = bytearray(data.read_bytes())
    blob[100] ^= 0xFF
    data.write_bytes(bytes(blob))
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    fast = run_cli("verify", "--json", cwd=project)
    assert fast.returncode == 0 and json.loads(fast.stdout)[0]["rehashed"] == 0
    full = run_cli("verify", "--full", cwd=project)
    assert full.returncode == 1 and "modified pkg/t/c/0/0" in full.stdout
    # a flipped byte that changes the mtime: the fast mode re-hashes just that file
    data.write_bytes(bytes(blob))
    out = json.loads(run_cli("verify", "--json", cwd=project).stdout)[0]
    assert out["modified"] == ["pkg/t/c/0/0"] and out["rehashed"] == 1
    (target / "pkg" / "t" / "c" / "0" / "1").write_bytes(b"\x01" * 100)  # truncated
    (target / "pkg" / "new.bin").write_bytes(b"new")  # added
    (target / "pkg" / "t" / "c" / "1" / "0").unlink()  # deleted
    proc = run_cli("verify", "--json", cwd=project)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)[0]
    assert out["added"] == ["pkg/new.bin"] and out["removed"] == ["pkg/t/c/1/0"]
    assert out["modified"] == ["pkg/t/c/0/0", "pkg/t/c/0/1"]


def test_file_dataset_verify(project: Path):
    (project / "x.csv").write_text("a,b\n")
    write_dm(project, '[x]\nuri = "x.csv"\n')
    assert run_cli("fetch", cwd=project).returncode == 0
    assert run_cli("verify", cwd=project).returncode == 0
    (project / "store" / "x.csv").write_text("a,c\n")
    proc = run_cli("verify", cwd=project)
    assert proc.returncode == 1 and "DIFFERS" in proc.stdout


@pytest.mark.covers("TREE-009")
def test_wrong_tree_checksum_publishes_nothing(project: Path):
    wrong = "tree-sha256:" + "0" * 64
    _archive_project(project, FILES, wrong)
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM070" in proc.stderr and "tree-sha256" in proc.stderr
    assert not (project / "store" / "pkg").exists()
    assert not list((project / "store").glob("*.tmp"))
    trees_dir = project / ".datamanifest" / "trees"
    assert not trees_dir.exists() or not [p for p in trees_dir.rglob("*") if p.is_file()]


def test_declared_tree_checksum_verifies_and_dandi_too(project: Path, tmp_path: Path):
    ref = tmp_path / "ref"
    for rel, data in FILES.items():
        p = ref / "pkg" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    expected = walk(ref, "dandi-zarr").checksum
    _archive_project(project, FILES, expected)
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["datasets"][0]["checksum"] == expected


def test_diff_and_versions(project: Path):
    _archive_project(project, FILES)
    assert run_cli("fetch", cwd=project).returncode == 0
    m = (project / "datamanifest.toml").read_text()
    first = re.search(r'checksum = "tree-sha256:([0-9a-f]+)"', m).group(1)
    # a new upstream version: one chunk changed, one added
    files2 = dict(FILES)
    files2["t/c/0/0"] = b"\x09" * 4096
    files2["t/c/2/0"] = b"new"
    _archive_project(project, files2)
    (project / "datamanifest.toml").write_text(m.replace(f"tree-sha256:{first}", ""))
    assert run_cli("fetch", "--force", cwd=project).returncode == 0
    vs = json.loads(run_cli("versions", "pkg", "--json", cwd=project).stdout)
    assert len(vs) == 2 and [v["latest"] for v in vs] == [False, True]
    proc = run_cli("diff", f"pkg@{first[:12]}", "pkg", "--json", cwd=project)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"added": ["pkg/t/c/2/0"], "removed": [],
                                       "modified": ["pkg/t/c/0/0"]}
    same = run_cli("diff", vs[1]["manifest"], vs[1]["manifest"])
    assert same.returncode == 0


def test_tree_command_writes_manifest(tmp_path: Path):
    root = tmp_path / "store.zarr"
    materialize([{"path": ".zgroup", "content": '{"zarr_format":2}'},
                 {"path": "arr/0/0", "content": "hello"}, {"path": "arr/0/1", "content": "world!"}],
                root)
    out = tmp_path / "m.json"
    proc = run_cli("tree", str(root), "-o", str(out), "--algorithm", "dandi-zarr")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "dandi-zarr:86217024250758f681d489b1bd4e43ba-3--28"
    doc = json.loads(out.read_text())
    assert doc["statistics"]["zarrChecksum"] == "86217024250758f681d489b1bd4e43ba-3--28"
    # an object store that cannot be reached (a closed port: not another test's S3 server)
    from datamanifest.testing import free_port

    nowhere = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
               "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_MAX_ATTEMPTS": "1"}
    assert run_cli("tree", "s3://bucket/prefix", env=nowhere).returncode == 1


def test_uris_dataset_with_tree_checksum(http, served, project: Path):
    (served / "t").mkdir()
    (served / "t" / "1.bin").write_bytes(b"one")
    (served / "t" / "2.bin").write_bytes(b"two")
    write_dm(project, f'[tiles]\nuris = ["{http.url("t/1.bin")}", "{http.url("t/2.bin")}"]\n')
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    checksum = json.loads(proc.stdout)["datasets"][0]["checksum"]
    assert checksum.startswith("tree-sha256:")
    assert f'checksum = "{checksum}"' in (project / "datamanifest.toml").read_text()
    assert run_cli("check", cwd=project).returncode == 0
    assert run_cli("verify", cwd=project).returncode == 0


def test_tree_output_to_a_fifo_is_not_replaced(tmp_path: Path):
    import stat as st_mod
    import threading

    root = tmp_path / "d"
    materialize([{"path": "a", "content": "a"}], root)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    proc = run_cli("tree", str(root), "-o", str(fifo))
    reader.join(timeout=30)
    assert proc.returncode == 0
    assert st_mod.S_ISFIFO(fifo.lstat().st_mode)  # still a FIFO, never renamed over
    assert json.loads(got[0])["checksum"] == proc.stdout.strip()


def test_atomic_write_keeps_a_symlinked_manifest_a_symlink(tmp_path: Path):
    from datamanifest.store.atomic import write_text

    real = tmp_path / "real.toml"
    real.write_text("a = 1\n")
    link = tmp_path / "datamanifest.toml"
    link.symlink_to(real)
    write_text(link, "a = 2\n")
    assert link.is_symlink() and real.read_text() == "a = 2\n"
    with pytest.raises(IsADirectoryError):
        write_text(tmp_path, "x")


def test_tree_of_a_versioned_s3_prefix_equals_the_local_tree(s3_endpoint, tmp_path: Path):
    import boto3

    from datamanifest import schemas

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="zarrs")
    s3.put_bucket_versioning(Bucket="zarrs", VersioningConfiguration={"Status": "Enabled"})
    files = {".zgroup": b'{"zarr_format":2}', "arr/0/0": b"hello", "arr/0/1": b"world!",
             "arr/.zarray": b"{}", "été/x": b"unicode"}
    s3.put_object(Bucket="zarrs", Key="store-1/arr/0/0", Body=b"an older version")
    for rel, data in files.items():
        s3.put_object(Bucket="zarrs", Key=f"store-1/{rel}", Body=data)
    s3.put_object(Bucket="zarrs", Key="store-2/other", Body=b"not in the prefix")
    local = tmp_path / "local"
    materialize([{"path": k, "content": v.decode()} for k, v in files.items()], local)
    for algorithm in ("dandi-zarr", "tree-sha256"):
        out = tmp_path / f"{algorithm}.json"
        proc = run_cli("tree", "s3://zarrs/store-1", "-a", algorithm, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == walk(local, algorithm).checksum
        doc = json.loads(out.read_text())
        assert schemas.validator("tree-manifest").is_valid(doc)
        assert doc["base"] == "s3://zarrs/store-1" and doc["statistics"]["entries"] == 5
        assert checksum_from_manifest(doc, algorithm) == doc["checksum"]
    latest = s3.list_object_versions(Bucket="zarrs", Prefix="store-1/arr/0/0")["Versions"]
    current = [v["VersionId"] for v in latest if v["IsLatest"]][0]
    row = json.loads((tmp_path / "dandi-zarr.json").read_text())["entries"]["arr"]["0"]["0"]
    assert row[0] == current and row[2] == 5 and row[3] == "5d41402abc4b2a76b9719d911017c592"


def test_uris_members_are_hashed_once(http, served, project: Path, monkeypatch):
    """The digests computed while streaming feed the tree walk: no member is read back."""
    import builtins

    from datamanifest import fetch
    from datamanifest.project import Project

    (served / "t").mkdir()
    for i in range(3):
        (served / "t" / f"{i}.bin").write_bytes(bytes([i]) * 1000)
    write_dm(project, "[tiles]\nuris = [" + ", ".join(f'"{http.url(f"t/{i}.bin")}"'
                                                     for i in range(3)) + "]\n")
    reads = []
    real_open = builtins.open

    def counting_open(file, mode="r", *args, **kwargs):
        if str(file).startswith(str(project)) and str(file).endswith(".bin") and "r" in mode:
            reads.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    report = fetch.run(Project.open(project))
    monkeypatch.undo()
    assert report.ok and reads == []
    local = project / "store" / "127.0.0.1" / "t"
    assert report.outcomes[0].checksum == walk(local, "tree-sha256").checksum


@pytest.mark.covers("TREE-002", "TREE-003")
@pytest.mark.parametrize("processes", [False, True])
def test_folder_runs_give_the_reference_digests(tmp_path: Path, monkeypatch, processes: bool):
    """The walk's per-folder runs (treescan) equal the reference functions of spec.tree on a
    tree mixing names that JSON escapes, executables, links, empty folders, files hashed by
    the workers and files over SMALL hashed by the pool, with the manifest agreeing too."""
    import random

    from datamanifest import treescan
    from datamanifest.spec.tree import checksum_of_description

    monkeypatch.setattr(treescan, "SMALL", 64)  # files over 64 bytes take the big-file path
    rng = random.Random(7)
    names = ["a", "B", "z\u00e9", 'q"uote', "back\\slash", "tab\there", "\u65e5\u672c", "0",
             "a.b", "\U0001f600", "ctl\x01"]
    entries: list[dict] = []
    for i in range(120):
        depth = rng.randint(0, 3)
        path = "/".join(rng.choice(names) + str(rng.randint(0, 2)) for _ in range(depth + 1))
        if any(e["path"] == path or e["path"].startswith(path + "/") or
               path.startswith(e["path"] + "/") for e in entries):
            continue
        kind = rng.choice(["file", "file", "file", "dir", "exec"])
        entry = {"path": path, "type": "dir" if kind == "dir" else "file",
                 "content": "x" * rng.choice([0, 1, 63, 64, 65, 300]) + str(i),
                 "executable": kind == "exec"}
        entries.append(entry)
    materialize(entries, tmp_path / "d")
    for algorithm in ("dandi-zarr", "tree-sha256"):
        expected = f"{algorithm}:{checksum_of_description(entries, algorithm)}"
        buf = io.StringIO()
        got = walk(tmp_path / "d", algorithm, manifest=buf, processes=processes, jobs=2,
                   keep_files=True)
        assert got.checksum == expected
        doc = {"fields": ["size", "lastModified", "digest", "type"],
               "entries": json.loads(buf.getvalue())}
        assert checksum_from_manifest(doc, algorithm) == expected
        files = [e for e in entries if e["type"] == "file"]
        assert got.entries == len(files) == len(got.files)
        assert got.total_size == sum(len(e["content"].encode()) for e in files)
    links = entries + [{"path": "link", "type": "symlink", "target": "a0"}]
    os.symlink("a0", tmp_path / "d" / "link")
    assert walk(tmp_path / "d", "tree-sha256", processes=processes, jobs=2).value == \
        checksum_of_description(links, "tree-sha256")
    with pytest.raises(TreeWalkError, match="symbolic links"):
        walk(tmp_path / "d", "dandi-zarr", processes=processes, jobs=2)


def test_another_users_files_are_read_without_o_noatime(tmp_path: Path, monkeypatch):
    """O_NOATIME is refused (EPERM) on a file its reader does not own: the scan opens it
    again without, so a shared read-only store can be checksummed."""
    from datamanifest import treescan

    if not getattr(os, "O_NOATIME", 0):
        pytest.skip("no O_NOATIME here")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"shared")
    expected = walk(tmp_path / "d", "dandi-zarr").checksum
    real_open = os.open

    def owned_by_another(path, flags, *args, **kwargs):
        if flags & os.O_NOATIME:
            raise PermissionError(1, "Operation not permitted", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(treescan.os, "open", owned_by_another)
    assert walk(tmp_path / "d", "dandi-zarr").checksum == expected
