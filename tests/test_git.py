"""git sources against real repositories: file:// and a git daemon on 127.0.0.1 (FET-014)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from datamanifest.tree import walk

from datamanifest.testing import free_port, wait_for_port

from .conftest import run_cli, write_manifest


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    git("config", "user.email", "t@example.org", cwd=work)
    git("config", "user.name", "t", cwd=work)
    (work / "data.csv").write_text("a,b\n1,2\n")
    (work / "sub").mkdir()
    (work / "sub" / "x.txt").write_text("v1\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "v1", cwd=work)
    git("tag", "v1", cwd=work)
    (work / "sub" / "x.txt").write_text("v2\n")
    git("commit", "-q", "-am", "v2", cwd=work)
    git("clone", "-q", "--bare", str(work), str(root / "repo.git"))
    return root


@pytest.fixture
def git_daemon(repos: Path):
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                             f"--port={port}", f"--base-path={repos}", str(repos)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for_port(port)
    yield f"git://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def test_git_file_and_daemon_clones_at_a_tag(repos: Path, git_daemon: str, project: Path):
    write_manifest(project, (
        f'[local]\nuri = "file://{repos}/repo.git"\nbranch = "v1"\n\n'
        f'[daemon]\nuri = "{git_daemon}/repo.git"\n'))
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    local = Path(out["local"]["path"])
    assert (local / "sub" / "x.txt").read_text() == "v1\n"  # the tag, not the tip
    assert (local / ".git").is_dir() and (local / ".complete").exists()
    daemon = Path(out["daemon"]["path"])
    assert (daemon / "sub" / "x.txt").read_text() == "v2\n"  # default branch tip
    # the checksum is the tree checksum without .git (TREE-005), auto-filled
    expected = walk(local, "tree-sha256", exclude_root=(".complete", ".git")).checksum
    assert out["local"]["checksum"] == expected
    assert f'checksum = "{expected}"' in (project / "datamanifest.toml").read_text()
    assert run_cli("verify", cwd=project).returncode == 0
    shallow = git("rev-list", "--count", "HEAD", cwd=daemon).strip()
    assert shallow == "1"


def test_git_checksum_mismatch_and_unreachable_publish_nothing(repos: Path, project: Path):
    dead = free_port()
    write_manifest(project, (
        f'[wrong]\nuri = "file://{repos}/repo.git"\nchecksum = "tree-sha256:{"0" * 64}"\n\n'
        f'[gone]\nuri = "git://127.0.0.1:{dead}/repo.git"\n\n'
        f'[notag]\nuri = "file://{repos}/repo.git"\nbranch = "v9"\nkey = "notag.git"\n'))
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1
    out = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert out["wrong"]["error"]["code"] == "DM070"
    assert out["gone"]["error"]["code"] == "DM071"
    assert out["notag"]["error"]["code"] == "DM071"
    store = project / "store"
    assert not store.exists() or not [p for p in store.rglob(".complete")]
