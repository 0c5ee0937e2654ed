"""push and pull through a real sshd on 127.0.0.1 (SCHEMA.md §23): a file dataset, a folder
dataset and a produced artifact round-trip with no nesting and verified bytes; a second run
sends nothing; a transfer killed midway leaves nothing that looks complete, and the next run
finishes it (shared/reference/ecosystem-layers.md §4: rsync without a trailing slash nests,
`.complete` can arrive before the data, nothing is verified after a transfer)."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamanifest.store.state import read_state
from datamanifest.tree import walk

from .conftest import run_cli, sha256_of

# the far end runs the code under test (a worktree's src/, not the venv's editable install)
REMOTE = f"env PYTHONPATH={shlex.quote(str(Path(__file__).resolve().parents[1] / 'src'))} " \
    f"{shlex.quote(sys.executable)} -m datamanifest"

MANIFEST = """[_META]
schema = 1

[_STORAGE]
datasets_dir = "store"
datacache_dir = "cache"
datasets_pools = []
lock_stale_age = 1

# a file dataset
[table]
uri = "{base}/table.csv"
checksum = "sha256:{table}"

# a folder dataset (two members)
[run]
uris = ["{base}/run/a.txt", "{base}/run/sub/b.txt"]
"""

PRODUCE = """
import datamanifest
@datamanifest.cached(cachetype="proj.stats")
def stats(n):
    return list(range(n))
stats(5)
"""


def _write(root: Path, base: str, table: bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "datamanifest.toml").write_text(MANIFEST.format(base=base, table=sha256_of(table)))
    return root


@pytest.fixture
def three(tmp_path: Path, served: Path, http):
    """Project ``a`` with a fetched file, a fetched folder and one artifact; empty projects
    ``b`` and ``c`` with the same manifest."""
    table = b"t,v\n" + b"1,2\n" * 1000
    (served / "table.csv").write_bytes(table)
    (served / "run" / "sub").mkdir(parents=True)
    (served / "run" / "a.txt").write_text("a")
    (served / "run" / "sub" / "b.txt").write_text("b")
    a = _write(tmp_path / "a", http.url("").rstrip("/"), table)
    r = run_cli("fetch", cwd=a)
    assert r.returncode == 0, r.stderr
    p = subprocess.run([sys.executable, "-c", PRODUCE], cwd=a, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    text = (a / "datamanifest.toml").read_text()  # the folder's checksum was filled in
    for name in ("b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "datamanifest.toml").write_text(text)
    return a, tmp_path / "b", tmp_path / "c"


def _objects(root: Path) -> dict[str, dict]:
    r = run_cli("list", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    return {o["id"]: o for o in json.loads(r.stdout)}


def _target(sshd, root: Path) -> str:
    return f"ssh://{getpass.getuser()}@127.0.0.1:{sshd['port']}{root}"


def _sync(verb: str, cwd: Path, *args: str) -> dict:
    r = run_cli(verb, "--json", "--remote-command", REMOTE, *args, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    return {s["id"]: s for s in json.loads(r.stdout)["steps"]}


@pytest.mark.covers("SYNC-001", "SYNC-002", "SYNC-003", "SYNC-004", "SYNC-005", "SYNC-006")
def test_push_then_pull_round_trip_through_sshd(sshd, three):
    a, b, c = three
    objs = _objects(a)
    art = next(i for i, o in objs.items() if o["kind"] == "cached")
    assert {objs["table"]["state"], objs["run"]["state"], objs[art]["state"]} == {"clean"}

    # dry run: nothing is written at the far end
    r = run_cli("push", "--dry-run", "--json", "--remote-command", REMOTE, "table", "run", art,
                _target(sshd, b), cwd=a)
    assert r.returncode == 0, r.stderr
    assert {s["action"] for s in json.loads(r.stdout)["steps"]} == {"push"}
    assert not (b / "store").exists() and not (b / "cache").exists()

    steps = _sync("push", a, "table", "run", art, _target(sshd, b))
    assert {s["action"] for s in steps.values()} == {"push"}, steps
    # b: each object at its key, the folder's members directly inside it (never nested)
    far = _objects(b)
    for ident in ("table", "run", art):
        assert far[ident]["state"] == "clean", far[ident]
        assert far[ident]["location"] == objs[ident]["location"].replace(str(a), str(b))
    run_b = Path(far["run"]["location"])
    assert sorted(p.name for p in run_b.iterdir()) == [".complete", "a.txt", "sub"]
    assert json.loads((run_b / ".complete").read_text())["checksum"] == \
        walk(run_b, "tree-sha256").checksum
    assert Path(far["table"]["location"]).read_bytes() == Path(objs["table"]["location"]).read_bytes()
    assert not list(b.rglob("*.tmp")) and not list(b.rglob("*.lock"))
    # the receiving end recorded them; the sending end recorded nothing new
    state_b = read_state(b / ".datamanifest" / "state.toml", datacache_dir=str(b / "cache"))
    assert {objs["table"]["key"], objs["run"]["key"]} <= set(state_b.datasets)
    assert far[art]["referenced"] is True
    r = run_cli("verify", "--full", "run", cwd=b)  # STO-012 at the far end of a push
    assert r.returncode == 0, r.stdout + r.stderr

    # idempotent: a second push sends nothing
    again = _sync("push", a, "table", "run", art, _target(sshd, b))
    assert {s["action"] for s in again.values()} == {"keep"}
    assert {s["bytes"] for s in again.values()} == {0}

    # pull into c, which has never had any of them: by name and by cache key
    steps = _sync("pull", c, "table", "run", art, _target(sshd, b))
    assert {s["action"] for s in steps.values()} == {"pull"}, steps
    near = _objects(c)
    for ident in ("table", "run", art):
        assert near[ident]["state"] == "clean", near[ident]
    assert sorted(p.name for p in Path(near["run"]["location"]).iterdir()) == \
        [".complete", "a.txt", "sub"]
    # the artifact loads in c without recomputing
    p = subprocess.run([sys.executable, "-c", PRODUCE.replace(
        "stats(5)", "import sys\nsys.exit(0 if stats.exists(5) else 3)")], cwd=c,
        capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    again = _sync("pull", c, "table", "run", art, _target(sshd, b))
    assert {s["action"] for s in again.values()} == {"keep"}


def test_a_corrupt_far_copy_is_refused_and_nothing_is_published(sshd, three):
    a, b, c = three
    _sync("push", a, "run", _target(sshd, b))
    run_b = Path(_objects(b)["run"]["location"])
    (run_b / "a.txt").write_text("tampered")  # the far marker still claims the old tree
    r = run_cli("pull", "--json", "--remote-command", REMOTE, "run", _target(sshd, b), cwd=c)
    assert r.returncode == 1
    step = json.loads(r.stdout)["steps"][0]
    assert step["error"]["code"] == "DM070"
    assert _objects(c)["run"]["state"] == "missing"
    assert not list(c.rglob(".complete"))


def test_unknown_far_object_and_unreachable_far_end(sshd, three, tmp_path: Path):
    a, b, c = three
    r = run_cli("pull", "--json", "--remote-command", REMOTE, "table", _target(sshd, b), cwd=c)
    assert r.returncode == 1 and json.loads(r.stdout)["steps"][0]["error"]["code"] == "DM078"
    r = run_cli("pull", "--remote-command", REMOTE, "table", _target(sshd, tmp_path / "none"),
                cwd=c)
    assert r.returncode == 1 and "DM135" in r.stderr and "Traceback" not in r.stderr


def test_push_to_a_local_store_root_then_pull_from_it(three, tmp_path: Path):
    a, b, c = three
    usb = tmp_path / "usb store"
    steps = _sync("push", a, "table", "run", str(usb), "--root")
    assert {s["action"] for s in steps.values()} == {"push"}
    key = _objects(a)["run"]["key"]
    assert (usb / key / ".complete").exists() and (usb / key / "a.txt").read_text() == "a"
    assert not (usb / ".datamanifest").exists()  # a bare root: nothing recorded there
    steps = _sync("pull", c, "table", "run", str(usb), "--root")
    assert {s["action"] for s in steps.values()} == {"pull"}
    assert {o["state"] for i, o in _objects(c).items() if i in ("table", "run")} == {"clean"}
    # STO-012: the folder that arrived has its tree manifest here, so it verifies at rest
    r = run_cli("verify", "--full", "run", cwd=c)
    assert r.returncode == 0, r.stdout + r.stderr
    run_c = Path(_objects(c)["run"]["location"])
    (run_c / "a.txt").write_text("changed at rest")
    r = run_cli("verify", "--full", "run", cwd=c)
    assert r.returncode == 1 and "DM122" in r.stderr and "a.txt" in r.stdout + r.stderr


def _killed_midway(cwd: Path, *args: str) -> None:
    """Run a transfer limited to 256 KiB/s and kill its whole process group after 1.5 s."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "datamanifest", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(1.5)
    assert proc.poll() is None, "the transfer finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.covers("SYNC-003")
def test_a_transfer_killed_midway_leaves_nothing_complete_and_resumes(sshd, three):
    a, b, c = three
    big = os.urandom(2 << 20)  # 2 MiB at 256 KiB/s: about 8 s
    src = Path(_objects(a)["table"]["location"])
    # make the table big: a new version declared in all three manifests
    for root in (a, b, c):
        m = root / "datamanifest.toml"
        m.write_text(m.read_text().replace(sha256_of(src.read_bytes()), sha256_of(big)))
    src.write_bytes(big)
    Path(str(src) + ".complete").write_text(json.dumps({"checksum": f"sha256:{sha256_of(big)}",
                                                        "size": len(big)}))
    # push, killed: the far end holds no marker and no published bytes
    _killed_midway(a, "push", "--remote-command", REMOTE, "--bwlimit", "256", "table",
                   _target(sshd, b))
    far = Path(str(src).replace(str(a), str(b)))
    assert not Path(str(far) + ".complete").exists() and not far.exists()
    assert _objects(b)["table"]["state"] == "missing"
    time.sleep(1.2)  # lock_stale_age = 1: a killed holder's lock is reclaimable (LCK-004)
    steps = _sync("push", a, "table", _target(sshd, b))
    assert steps["table"]["action"] == "push" and far.read_bytes() == big
    assert not Path(str(far) + ".tmp").exists()

    # pull, killed: this end holds no marker; the next run finishes
    _killed_midway(c, "pull", "--remote-command", REMOTE, "--bwlimit", "256", "table",
                   _target(sshd, b))
    near = Path(str(src).replace(str(a), str(c)))
    assert not Path(str(near) + ".complete").exists() and not near.exists()
    assert _objects(c)["table"]["state"] == "missing"
    time.sleep(1.2)
    steps = _sync("pull", c, "table", _target(sshd, b))
    assert steps["table"]["action"] == "pull" and near.read_bytes() == big
    assert _objects(c)["table"]["state"] == "clean"
