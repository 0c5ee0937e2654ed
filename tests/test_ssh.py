"""ssh://, rsync://, sshfs:// sources through rsync over SSH against a real sshd (FET-015)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from datamanifest.testing import free_port
from datamanifest.tree import walk

from .conftest import run_cli, sha256_of, write_manifest

def test_ssh_rsync_sshfs_files_and_folders(sshd, project: Path, tmp_path: Path):
    import getpass

    user, port = getpass.getuser(), sshd["port"]
    remote = tmp_path / "remote data"  # a space in the path stays one argument
    (remote / "run" / "sub").mkdir(parents=True)
    (remote / "obs.csv").write_bytes(b"t,1\n")
    (remote / "run" / "a.nc").write_bytes(b"\x00\x01")
    (remote / "run" / "sub" / "b.txt").write_text("b")
    base = f"{user}@127.0.0.1:{port}{remote}"
    write_manifest(project, (
        f'[file-ssh]\nuri = "ssh://{base}/obs.csv"\nchecksum = "sha256:{sha256_of(b"t,1" + bytes([10]))}"\n'
        f'key = "ssh/obs.csv"\n\n'
        f'[folder-rsync]\nuri = "rsync://{base}/run/"\nkey = "rsync/run"\n\n'
        f'[file-sshfs]\nuri = "sshfs://{base}/run/a.nc"\nkey = "sshfs/a.nc"\n').replace(
            str(remote), str(remote).replace(" ", "%20")))
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert Path(out["file-ssh"]["path"]).read_bytes() == b"t,1\n"
    folder = Path(out["folder-rsync"]["path"])
    assert (folder / "sub" / "b.txt").read_text() == "b"
    assert out["folder-rsync"]["checksum"] == walk(folder, "tree-sha256").checksum
    assert Path(out["file-sshfs"]["path"]).read_bytes() == b"\x00\x01"
    assert run_cli("verify", cwd=project).returncode == 0


def test_ssh_mismatch_missing_and_unreachable(sshd, project: Path, tmp_path: Path):
    import getpass

    user, port = getpass.getuser(), sshd["port"]
    (tmp_path / "x.bin").write_bytes(b"x")
    dead = free_port()
    write_manifest(project, (
        f'[wrong]\nuri = "ssh://{user}@127.0.0.1:{port}{tmp_path}/x.bin"\n'
        f'checksum = "sha256:{"0" * 64}"\nkey = "w/x.bin"\n\n'
        f'[missing]\nuri = "ssh://{user}@127.0.0.1:{port}{tmp_path}/nope.bin"\nkey = "m/n.bin"\n\n'
        f'[down]\nuri = "ssh://{user}@127.0.0.1:{dead}{tmp_path}/x.bin"\nkey = "d/x.bin"\n'))
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert out["wrong"]["error"]["code"] == "DM070"
    assert out["missing"]["error"]["code"] == "DM074"
    assert out["down"]["error"]["code"] == "DM071"
    store = project / "store"
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]
