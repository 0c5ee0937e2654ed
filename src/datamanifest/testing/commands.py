"""The crash scenarios of every command that writes (:func:`build`).

``fetch`` of a file, an archive with ``extract``, a ``uris`` folder, a git source, checksums
filled into a commented manifest and a state-file merge beside a second writer; ``rm``;
``mv`` to another store root; ``add``; produced datasets (``@datamanifest.cached``);
``push`` to a folder (the kill lands in the receiving process, which inherits the fault
environment); ``tree -o``; ``virtualize -o``; ``update-checksums --refetch``; ``refresh
--scan``; ``export``; and, given an SSH server, ``pull`` and ``push`` over SSH -- the
push's kill landing in the sender and, separately, in the far receiver.
"""

from __future__ import annotations

import io
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import crash
from .scenarios import CommandScenario, sha256

#: one download at a time, so the n-th mutation is the same one in every run
FETCH = ["fetch", "--jobs", "1"]
#: where a scenario's argv names the far ``datamanifest`` command (see :class:`FarScenario`)
REMOTE = "@REMOTE@"

HEADER = """\
# Project data -- this header comment must survive every crash
[_META]
schema = 1   # manifest schema

[_STORAGE]
datasets_dir = "store"   # relative to the project
"""


class FarScenario(CommandScenario):
    """A command talking to a far ``datamanifest`` over SSH (``push``, ``pull``): the
    :data:`REMOTE` argument becomes the far command -- this interpreter and this package,
    the isolated home. ``fault_far`` says where a sweep's kill lands: ``""`` in the local
    command (its own mutations), ``"receiver"`` in the far receiver (the fault environment
    goes into the far command), ``"sender"`` in the local command at each of the far
    receiver's mutations: the receiver stops itself there (SIGSTOP), the runner kills the
    sender's process group (the command, its ssh and rsync), then lets the receiver go on
    to find its sender gone."""

    fault_far: str = ""

    def _remote(self, trial: Path, extra: dict[str, str]) -> str:
        import datamanifest

        env = {"PYTHONPATH": str(Path(datamanifest.__file__).resolve().parents[1]),
               **{k: v for k, v in crash.isolated_env(trial).items()
                  if k in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME",
                           "DATAMANIFEST_LOCK_STALE_AGE")}, **extra}
        return shlex.join(["env", *(f"{k}={v}" for k, v in env.items()),
                           sys.executable, "-m", "datamanifest"])

    def command(self, trial: Path) -> list[str]:
        return [self._remote(trial, {}) if a == REMOTE else a for a in self.argv]

    def _stops(self, trial: Path) -> Path:
        return trial.parent / "far-stops.txt"

    def place(self, trial: Path, fault: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        if not self.fault_far:
            return self.command(trial), fault
        if self.fault_far == "sender" and "DATAMANIFEST_FAULT" in fault:
            self._stops(trial).unlink(missing_ok=True)
            fault = {**fault, "DATAMANIFEST_FAULT_SIGNAL": "STOP",
                     "DATAMANIFEST_FAULT_TRACE": str(self._stops(trial))}
        return [self._remote(trial, fault) if a == REMOTE else a for a in self.argv], {}

    def during(self, trial: Path, child: subprocess.Popen, n: int) -> None:
        if self.fault_far != "sender":
            return
        import signal
        import time

        stops = self._stops(trial)
        deadline = time.monotonic() + crash.TIMEOUT
        pid, ended = None, None
        while time.monotonic() < deadline:
            if stops.exists() and len(stops.read_text().splitlines()) >= n:
                pid = _stopped_process(str(stops))
                if pid is not None:
                    break
            if child.poll() is not None:  # the receiver may stop after answering
                ended = ended or time.monotonic()
                if time.monotonic() - ended > 3:
                    break
            time.sleep(0.01)
        crash.kill_group(child)  # the sender dies while the receiver waits at point n
        if pid is None:
            return
        os.kill(pid, signal.SIGCONT)
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and \
                _state(pid) not in ("Z", "X", ""):
            time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _stopped_process(trace: str) -> int | None:
    """The stopped process whose fault layer writes ``trace`` (the far receiver)."""
    needle = f"DATAMANIFEST_FAULT_TRACE={trace}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0") and \
                    _state(int(proc.name)) == "T":
                return int(proc.name)
        except OSError:
            continue
    return None


# --------------------------------------------------------------------------- building


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
                        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"})


def _git_repo(root: Path) -> Path:
    work, bare = root / "git-work", root / "repo.git"
    if bare.exists():
        return bare
    work.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("config", "user.email", "chaos@example.org", cwd=work)
    _git("config", "user.name", "chaos", cwd=work)
    for i in range(6):
        (work / f"part{i}.csv").write_bytes(os.urandom(2048).hex().encode())
    (work / "sub").mkdir()
    (work / "sub" / "notes.txt").write_text("notes\n")
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "v1", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(bare))
    return bare


def build(root: Path, url: Callable[[str], str], served: Path, size: int = 4 << 20,
          ssh: dict[str, Any] | None = None) -> dict[str, CommandScenario]:
    """Every command scenario, by name.

    Parameters
    ----------
    root : Path
        The work folder of the trials (``<root>/trial`` is where each runs).
    url : callable
        ``url(rel)``: the HTTP server's URL of ``served/rel``.
    served : Path
        The folder the server serves; the files are written there.
    size : int
        Bytes of the large file (default 4 MiB).
    ssh : dict, optional
        An SSH server (:func:`datamanifest.testing.servers.sshd`: ``port``, ``user``,
        ``ssh``); without it the SSH scenarios are left out.

    Returns
    -------
    dict of str to CommandScenario
    """
    rng = random.Random(13)
    served.mkdir(parents=True, exist_ok=True)
    big = rng.randbytes(size)
    (served / "big.bin").write_bytes(big)
    members = {f"data/f{i}.txt": rng.randbytes(64 << 10) for i in range(8)}
    members["data/sub/readme.txt"] = b"archive\n"
    archive = _tar_gz(members)
    (served / "bundle.tar.gz").write_bytes(archive)
    parts = {f"p{i}.bin": rng.randbytes(256 << 10) for i in range(3)}
    for name, data in parts.items():
        (served / name).write_bytes(data)
    a, b = rng.randbytes(1 << 20), rng.randbytes(1 << 20)
    (served / "a.bin").write_bytes(a)
    (served / "b.bin").write_bytes(b)
    x, y = b"x,y\n" + rng.randbytes(300 << 10).hex().encode(), b"u\n" * 50_000
    (served / "x.csv").write_bytes(x)
    (served / "y.csv").write_bytes(y)
    old, new = rng.randbytes(1 << 20), rng.randbytes(1 << 20)
    (served / "old.bin").write_bytes(old)
    (served / "moved.bin").write_bytes(new)
    repo = _git_repo(root)
    uris = ", ".join(f'"{url(n)}"' for n in parts)
    out: list[CommandScenario] = []
    add = out.append
    add(CommandScenario("file", FETCH, HEADER + f'\n# one large file\n[big]\nuri = '
                        f'"{url("big.bin")}"\nchecksum = "sha256:{sha256(big)}"\n', ["big"]))
    add(CommandScenario("archive", FETCH, HEADER + f'\n[bundle]   # extracted\nuri = '
                        f'"{url("bundle.tar.gz")}"\nchecksum = "sha256:{sha256(archive)}"\n'
                        'extract = true\n', ["bundle"]))
    add(CommandScenario("uris", FETCH, HEADER + f"\n[parts]\nuris = [{uris}]\n", ["parts"]))
    add(CommandScenario("git", FETCH, HEADER + f'\n[repo]\nuri = "file://{repo}"\n'
                        'branch = "main"\n', ["repo"]))
    add(CommandScenario(
        "autofill", FETCH,
        HEADER + f'\n# first dataset: checksum filled in by fetch\n[first]\n'
                 f'uri = "{url("x.csv")}"   # trailing comment\ndescription = "kept"\n\n'
                 f'[second]   # header comment\nuri = "{url("y.csv")}"\n'
                 f'checksum = ""   # empty on purpose\n\n[second._LANG.julia]\n'
                 f'loader = "CSV:read"   # another language\'s table\n',
        ["first", "second"],
        filled={"first": f"sha256:{sha256(x)}", "second": f"sha256:{sha256(y)}"}))
    add(CommandScenario(
        "state", [*FETCH, "a"],
        HEADER + f'\n[a]\nuri = "{url("a.bin")}"\nchecksum = "sha256:{sha256(a)}"\n\n'
                 f'[b]\nuri = "{url("b.bin")}"\nchecksum = "sha256:{sha256(b)}"\n',
        ["a"], partner_argv=[*FETCH, "b"], partner_datasets=["b"]))
    both = (HEADER + f'\n# one large file\n[big]\nuri = "{url("big.bin")}"\n'
            f'checksum = "sha256:{sha256(big)}"\n\n[bundle]   # extracted\n'
            f'uri = "{url("bundle.tar.gz")}"\nchecksum = "sha256:{sha256(archive)}"\n'
            f'extract = true\n')
    rm = CommandScenario("rm", ["rm", "b*"], both, prepare=[FETCH], absent=["big", "bundle"])
    rm.again = lambda t: ["rm", "b*"] if _listed(rm, t) else ["refresh"]
    add(rm)
    add(CommandScenario("mv", ["mv", "big", "store2"], both, prepare=[FETCH],
                        invariant=lambda t: _one_copy(t, big, need_new=False),
                        final=lambda t: _one_copy(t, big, need_new=True)))
    add_argv = ["add", url("x.csv"), "--name", "extra", "-q"]
    add(CommandScenario("add", add_argv,
                        HEADER + "\n# datasets are added below by `datamanifest add`\n",
                        ["extra"], filled={"extra": f"sha256:{sha256(x)}"},
                        again=lambda t: FETCH if "extra" in tomllib.loads(
                            (t / "project" / "datamanifest.toml").read_text()) else add_argv))
    produce = CommandScenario(
        "produce", ["--python", "produce.py"],
        HEADER.replace('relative to the project', 'relative to the project\n'
                       'datacache_dir = "cache"') + "\n# produced datasets only\n",
        files={"project/produce.py": PRODUCE})
    produce.invariant = lambda t: _produced(produce, t, require=False)
    produce.final = lambda t: _produced(produce, t, require=True)
    add(produce)
    want = {"big": big, "bundle": members}
    far_root = ("project", "far", "127.0.0.1")
    add(CommandScenario("push", ["push", "b*", "far", "--root"], both, prepare=[FETCH],
                        invariant=lambda t: _pushed(t, want, far_root, require=False),
                        final=lambda t: _pushed(t, want, far_root, require=True)))
    add(CommandScenario("tree", ["tree", "store/127.0.0.1/bundle", "-o", "bundle.tree.json",
                                 "-q"], both, prepare=[FETCH],
                        invariant=lambda t: _tree_file(t, require=False),
                        final=lambda t: _tree_file(t, require=True)))
    _netcdf(root / "data.nc")
    add(CommandScenario("virtualize", ["virtualize", str(root / "data.nc"), "-o",
                                       "data.chunks.json"],
                        HEADER + "\n# no datasets: a chunk manifest is written beside\n",
                        invariant=lambda t: _chunk_file(t, require=False),
                        final=lambda t: _chunk_file(t, require=True)))
    # update-checksums --refetch: the source moved to new bytes under the same key
    moving = (HEADER + f'\n# a dataset whose source changed\n[moving]   # refetched\n'
              f'uri = "{url("old.bin")}"\nkey = "data/moving.bin"\n'
              f'checksum = "sha256:{sha256(old)}"   # updated in place\n')
    add(CommandScenario("update-checksums", ["update-checksums", "--refetch", "-q"], moving,
                        ["moving"], filled={"moving": f"sha256:{sha256(new)}"},
                        prepare=[FETCH, _replace("old.bin", "moved.bin")]))
    # refresh --scan: one record points at nothing, one object has no record
    add(CommandScenario("refresh", ["refresh", "--scan", "-q"], both, ["big"],
                        absent=["bundle"], prepare=[FETCH, _forget("big", "bundle")]))
    exported = ("export", "127.0.0.1")
    add(CommandScenario("export", ["export", "../export", "-q"], both, prepare=[FETCH],
                        only=("project", "export"),
                        invariant=lambda t: _exported(t, want, exported, require=False),
                        final=lambda t: _exported(t, want, exported, require=True),
                        again=_export_again))
    if ssh is not None:
        target = f"ssh://{ssh['user']}@127.0.0.1:{ssh['port']}{root / 'trial' / 'far'}"
        env = {"DATAMANIFEST_SSH": ssh["ssh"]}
        far_store = ("far", "store", "127.0.0.1")
        files = {"far/datamanifest.toml": both}
        pull = FarScenario("pull-ssh", ["pull", "--remote-command", REMOTE, "big", "bundle",
                                        target], both, ["big", "bundle"], files=files,
                           env=env)
        pull.prepare = [lambda base: _fetch_far(pull, base)]
        add(pull)
        for where in ("sender", "receiver"):
            push = FarScenario(f"push-ssh-{where}", ["push", "--remote-command", REMOTE,
                                                     "big", "bundle", target], both,
                               prepare=[FETCH], files=files, env=env, only=("far",),
                               invariant=lambda t: _pushed(t, want, far_store, require=False),
                               final=lambda t: _pushed(t, want, far_store, require=True))
            push.fault_far = where
            add(push)
    return {s.name: s for s in out}


# --------------------------------------------------------------------------- preparing


def _replace(old: str, new: str) -> Callable[[Path], None]:
    """A preparation step: replace ``old`` by ``new`` in the base's manifest."""
    def step(base: Path) -> None:
        m = base / "project" / "datamanifest.toml"
        m.write_text(m.read_text().replace(old, new))
    return step


def _forget(recorded: str, removed: str) -> Callable[[Path], None]:
    """A preparation step: drop the state record of ``recorded`` (its bytes stay, untracked)
    and delete the bytes of ``removed`` (its record stays, pointing at nothing)."""
    def step(base: Path) -> None:
        from ..project import Project
        from ..store.state import update_state

        project = Project.open(base / "project" / "datamanifest.toml")
        update_state(project.state_file, {}, remove=[project.storage_key(recorded)])
        gone = project.target(removed).path
        shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
        for marker in gone.parent.glob(gone.name + ".complete"):
            marker.unlink()
    return step


def _fetch_far(scenario: CommandScenario, base: Path) -> None:
    r = crash.run(scenario, base, FETCH, cwd=base / "far")
    if r.returncode:
        raise RuntimeError(f"preparing the far project of {scenario.name}: {r.stderr}")


def _export_again(trial: Path) -> list[str]:
    # the export's manifest is its last write: once there, the export is whole and the
    # next export into the folder must say --force (DM133)
    done = (trial / "export" / "datamanifest.toml").exists()
    return ["export", "../export", "-q", *(["--force"] if done else [])]


# --------------------------------------------------------------------------- judging


def _netcdf(path: Path) -> None:
    """A small NetCDF4 file with a few chunked variables (written once)."""
    if path.exists():
        return
    from ..optional import need

    np = need("numpy", extra="virtual", feature="the crash harness")
    xr = need("xarray", extra="virtual", feature="the crash harness")
    rng = np.random.default_rng(13)
    ds = xr.Dataset({v: (("time", "y", "x"), rng.random((24, 30, 40)).astype("f4"))
                     for v in ("t2m", "tp", "u10")},
                    coords={"time": np.arange(24), "y": np.arange(30.0), "x": np.arange(40.0)})
    enc = {v: {"chunksizes": (6, 30, 40), "zlib": True} for v in ("t2m", "tp", "u10")}
    ds.to_netcdf(path, engine="h5netcdf", encoding=enc)


def _whole(path: Path, data: Any) -> bool:
    if isinstance(data, bytes):
        return path.is_file() and sha256(path.read_bytes()) == sha256(data)
    return all((path / rel).is_file() and (path / rel).read_bytes() == b
               for rel, b in data.items())


def _pushed(trial: Path, want: dict[str, Any], root: tuple[str, ...], require: bool) -> str:
    """`push`: an object with a marker at the far root is whole; ``require``: all are."""
    far = trial.joinpath(*root)
    for name, data in want.items():
        path = far / ("big.bin" if name == "big" else "bundle")
        marker = far / "big.bin.complete" if name == "big" else path / ".complete"
        if not marker.exists():
            if require:
                return f"{name} was not pushed"
            continue
        if not _whole(path, data):
            return f"{name} is marked at the far end but its bytes differ"
    return ""


def _exported(trial: Path, want: dict[str, Any], root: tuple[str, ...], require: bool) -> str:
    """`export`: a manifest in the export parses and names only whole copies; ``require``:
    it is there and every dataset is whole beside it."""
    manifest = trial / "export" / "datamanifest.toml"
    if not manifest.exists():
        return "the export has no manifest" if require else ""
    try:
        doc = tomllib.loads(manifest.read_text())
    except ValueError as e:
        return f"the export's manifest is torn: {e}"
    for name, data in want.items():
        if name not in doc:
            return f"the export's manifest does not name {name}"
        path = trial.joinpath(*root) / ("big.bin" if name == "big" else "bundle")
        if not _whole(path, data):
            return f"the export's manifest names {name} but its copy is not whole"
    return ""


def _listed(scenario: CommandScenario, trial: Path) -> bool:
    """Does ``datamanifest list`` still show an object, present or only recorded (so a
    selection would not be empty)?"""
    r = crash.run(scenario, trial, ["list"])
    return r.returncode == 0 and bool(r.stdout.strip()) and not r.stdout.startswith("0 ")


def _one_copy(trial: Path, data: bytes, need_new: bool) -> str:
    """`mv`: a verified copy exists at the old or the new root (both: fine mid-move);
    ``need_new``: exactly one, at the new root, and the state record points at it."""
    old = trial / "project" / "store" / "127.0.0.1" / "big.bin"
    new = trial / "project" / "store2" / "127.0.0.1" / "big.bin"
    good = [p for p in (old, new) if p.is_file() and p.with_name("big.bin.complete").exists()
            and sha256(p.read_bytes()) == sha256(data)]
    if not good:
        return "the move lost the dataset: no verified copy at either root"
    if need_new and good != [new]:
        return f"after the move the dataset is at {[str(p) for p in good]}"
    if need_new:
        from ..store.state import read_state

        rec = read_state(trial / "project" / ".datamanifest" / "state.toml").datasets.get(
            "127.0.0.1/big.bin")
        if rec is None or not rec.storage_path.startswith("store2/"):
            return f"the state record does not point at the moved copy: {rec}"
    return ""


def _tree_file(trial: Path, require: bool) -> str:
    """`tree -o`: the output is absent or a whole manifest of the folder's checksum."""
    from ..tree import checksum_from_manifest, walk

    out = trial / "project" / "bundle.tree.json"
    if not out.exists():
        return "the tree manifest was not written" if require else ""
    try:
        got = checksum_from_manifest(json.loads(out.read_text()))
    except Exception as e:  # noqa: BLE001
        return f"the tree manifest is torn: {e}"
    want = walk(trial / "project" / "store" / "127.0.0.1" / "bundle",
                exclude_root=(".complete",)).checksum
    return "" if got == want else f"the tree manifest says {got}, the folder {want}"


def _chunk_file(trial: Path, require: bool) -> str:
    """`virtualize -o`: the output is absent or a chunk manifest that checks clean."""
    from ..check import check_text

    out = trial / "project" / "data.chunks.json"
    if not out.exists():
        return "the chunk manifest was not written" if require else ""
    r = check_text(out.read_text(), str(out))
    return "" if r.ok else f"the chunk manifest does not check: {r.diagnostics[0].render()}"


#: the produced-datasets scenario's script: two results; with DM_CHAOS_JUDGE set it judges
PRODUCE = """\
import json, os, sys
import datamanifest

computed = []


@datamanifest.cached(cachetype="chaos.means", format="json")
def means(n: int, scale: float = 1.5):
    computed.append(n)
    return {"n": n, "values": [i * scale for i in range(n)]}


def want(n):
    return {"n": n, "values": [i * 1.5 for i in range(n)]}


if os.environ.get("DM_CHAOS_JUDGE"):
    # what a later run sees: a stored result loads without computing, and is right
    for n in (10, 20000):
        if means.exists(n):
            assert means(n) == want(n) and not computed, (n, computed)
        elif os.environ["DM_CHAOS_JUDGE"] == "require":
            sys.exit(f"no stored result for {n}")
    print("OK")
else:
    for n in (10, 20000):
        assert means(n) == want(n)
"""


def _produced(scenario: CommandScenario, trial: Path, require: bool) -> str:
    r = crash.run(scenario, trial, ["--python", "produce.py"],
                  DM_CHAOS_JUDGE="require" if require else "1")
    if r.returncode != 0 or "OK" not in r.stdout:
        return (f"produced datasets: rc {r.returncode} {r.stdout[-200:]} "
                f"{r.stderr.strip()[-400:]}")
    return ""


#: the scenarios' names in the order of a report
ORDER = ["file", "archive", "uris", "git", "autofill", "state", "rm", "mv", "add", "produce",
         "push", "tree", "virtualize", "update-checksums", "refresh", "export", "pull-ssh",
         "push-ssh-sender", "push-ssh-receiver"]

__all__ = ["build", "FarScenario", "FETCH", "HEADER", "ORDER", "REMOTE", "PRODUCE"]
