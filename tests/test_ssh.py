"""ssh://, rsync://, sshfs:// sources through rsync over SSH against a real sshd (FET-015)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from datamanifest.tree import walk

from datamanifest.testing import free_port, wait_for_port

from .conftest import run_cli, sha256_of, write_manifest

SSHD = "/usr/sbin/sshd"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not (os.access(SSHD, os.X_OK) and shutil.which("rsync")):
        if os.environ.get("CI"):
            pytest.fail("sshd and rsync must be installed in CI (make test installs them)")
        pytest.skip("sshd or rsync missing (make test installs them as root)")
    d = tmp_path_factory.mktemp("ssh")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nStrictModes no\n"
        f"PidFile {d / 'sshd.pid'}\nUsePAM no\nPermitRootLogin yes\n")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for_port(port)
    ssh = (f"ssh -i {d / 'user_key'} -o UserKnownHostsFile={d / 'known_hosts'} "
           "-o StrictHostKeyChecking=accept-new")
    old = os.environ.get("DATAMANIFEST_SSH")
    os.environ["DATAMANIFEST_SSH"] = ssh
    yield {"port": port, "user": os.environ.get("USER") or "root", "dir": d}
    if old is None:
        os.environ.pop("DATAMANIFEST_SSH", None)
    else:
        os.environ["DATAMANIFEST_SSH"] = old
    proc.terminate()
    proc.wait(timeout=10)


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
