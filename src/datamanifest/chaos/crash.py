"""Crash sweeps of the commands that write (issue 13; ``design/2026-12-02-reliability.md``):
``fetch`` (a file, an archive, a ``uris`` folder, a git source, checksum auto-fill, a state
merge beside a second writer), ``rm``, ``mv``, ``add`` and produced datasets.

A *scenario* is a project folder (a manifest, a store, the files a loopback HTTP server
serves, a git repository) and one command run in it. A *trial* copies the scenario's
base folder, runs the command in a child process and kills it -- SIGKILL just before
its n-th file-system mutation (:mod:`datamanifest.faults`), or at a random moment after
the child has imported everything -- and then, with no manual step, judges what is left:

consistent
    the manifest parses, keeps every comment of the original and holds, for each
    dataset, either the checksum it had or the right one; the state file (when present)
    parses and keeps every record another process wrote; and no dataset looks present
    (marker) unless its bytes verify against the checksum it was published with.
continued
    the same command, run again without faults, succeeds; every dataset is then present
    and verifies, the manifest holds every checksum, and the state file a record of
    each dataset.
clean
    and nothing is left in the store but datasets, markers and tree manifests (no
    staging folder, lock, partial download or resume record).

Counts per run: ``trials``, ``killed`` (the child died before finishing), ``corrupt``
(not consistent), ``blocked`` (consistent, but the next run failed), ``left_over``
(continued, not clean) and ``recovered`` (all three held).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..optional import need
from ..testing import first_line

#: the child: imports everything, says READY, waits for GO when asked, runs the CLI
CHILD = r"""
import os, runpy, sys
from datamanifest.cli import main
import datamanifest.fetch.engine, datamanifest.fetch.sources, datamanifest.fetch.archive
import datamanifest.tree, datamanifest.store.state, tomlkit, httpx
python = sys.argv[1] == "--python"
if python:
    import datamanifest.cache, pickle
sys.stdout.write("READY\n"); sys.stdout.flush()
if os.environ.get("DM_CHAOS_GO"):
    sys.stdin.readline()
if python:
    runpy.run_path(sys.argv[2], run_name="__main__")
else:
    main(args=sys.argv[1:], prog_name="datamanifest")
"""

#: files a finished run may leave in the store besides the datasets themselves
_LEFTOVER = re.compile(r"(\.tmp|\.lock|\.part|\.resume\.json|\.reclaim|\.tmp\.[^/]*)$")
#: the lock stale age of every run (seconds): short, so a dead holder's lock is tested
#: to be reclaimed within it
STALE_AGE = 1.0
_COMMENT = re.compile(r"#[^\n\"']*$")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Scenario:
    """One command over one project. ``argv`` is run in ``<trial>/project``; ``partner``
    (optional) is a second command started at the same moment and never killed, whose
    state records must survive (a concurrent state-file merge). ``datasets`` are the
    names the finished run must have present; ``filled`` maps a dataset to the checksum
    the run writes into the manifest (auto-fill)."""

    name: str
    argv: list[str]
    datasets: list[str]
    partner: list[str] | None = None
    partner_datasets: list[str] = field(default_factory=list)
    filled: dict[str, str] = field(default_factory=dict)
    #: commands run once in the base folder before the trials (e.g. a fetch before `rm`)
    prepare: list[list[str]] = field(default_factory=list)
    #: datasets the finished run must have removed (present nowhere, no state record)
    absent: list[str] = field(default_factory=list)
    #: extra judges, '' when the property holds: after the kill, and after the next run
    invariant: Callable[[Path], str] | None = None
    final: Callable[[Path], str] | None = None
    #: the next run's command (default: ``argv`` again)
    again: Callable[[Path], list[str]] | None = None


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
    work = root / "git-work"
    bare = root / "repo.git"
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


#: one download at a time, so the n-th mutation is the same one in every run
FETCH = ["fetch", "--jobs", "1"]

HEADER = """\
# Project data -- this header comment must survive every crash
[_META]
schema = 1   # manifest schema

[_STORAGE]
datasets_dir = "store"   # relative to the project
"""


def build(root: Path, url: Callable[[str], str], served: Path,
          size: int = 4 << 20) -> dict[str, tuple[Scenario, str]]:
    """Write the served files and every scenario's manifest below ``root``; return
    ``{name: (scenario, manifest text)}``. ``url(rel)`` is the server's URL of
    ``served/rel``."""
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
    repo = _git_repo(root)
    uris = ", ".join(f'"{url(n)}"' for n in parts)
    out: dict[str, tuple[Scenario, str]] = {}
    out["file"] = (Scenario("file", FETCH, ["big"]),
                   HEADER + f'\n# one large file\n[big]\nuri = "{url("big.bin")}"\n'
                   f'checksum = "sha256:{sha256(big)}"\n')
    out["archive"] = (Scenario("archive", FETCH, ["bundle"]),
                      HEADER + f'\n[bundle]   # extracted\nuri = "{url("bundle.tar.gz")}"\n'
                      f'checksum = "sha256:{sha256(archive)}"\nextract = true\n')
    out["uris"] = (Scenario("uris", FETCH, ["parts"]),
                   HEADER + f"\n[parts]\nuris = [{uris}]\n")
    out["git"] = (Scenario("git", FETCH, ["repo"]),
                  HEADER + f'\n[repo]\nuri = "file://{repo}"\nbranch = "main"\n')
    out["autofill"] = (
        Scenario("autofill", FETCH, ["first", "second"],
                 filled={"first": f"sha256:{sha256(x)}", "second": f"sha256:{sha256(y)}"}),
        HEADER + f'\n# first dataset: checksum filled in by fetch\n[first]\n'
                 f'uri = "{url("x.csv")}"   # trailing comment\ndescription = "kept"\n\n'
                 f'[second]   # header comment\nuri = "{url("y.csv")}"\n'
                 f'checksum = ""   # empty on purpose\n\n[second._LANG.julia]\n'
                 f'loader = "CSV:read"   # another language\'s table\n')
    out["state"] = (
        Scenario("state", [*FETCH, "a"], ["a"], partner=[*FETCH, "b"],
                 partner_datasets=["b"]),
        HEADER + f'\n[a]\nuri = "{url("a.bin")}"\nchecksum = "sha256:{sha256(a)}"\n\n'
                 f'[b]\nuri = "{url("b.bin")}"\nchecksum = "sha256:{sha256(b)}"\n')
    both = (HEADER + f'\n# one large file\n[big]\nuri = "{url("big.bin")}"\n'
            f'checksum = "sha256:{sha256(big)}"\n\n[bundle]   # extracted\n'
            f'uri = "{url("bundle.tar.gz")}"\nchecksum = "sha256:{sha256(archive)}"\n'
            f'extract = true\n')
    out["rm"] = (Scenario("rm", ["rm", "b*"], [], prepare=[FETCH], absent=["big", "bundle"],
                          again=lambda t: ["rm", "b*"] if _listed(t) else ["refresh"]), both)
    out["mv"] = (Scenario("mv", ["mv", "big", "store2"], [], prepare=[FETCH],
                          invariant=lambda t: _one_copy(t, big, need_new=False),
                          final=lambda t: _one_copy(t, big, need_new=True)), both)
    add_url = url("x.csv")
    out["add"] = (Scenario("add", ["add", add_url, "--name", "extra", "-q"], ["extra"],
                           filled={"extra": f"sha256:{sha256(x)}"},
                           again=lambda t: FETCH if "extra" in tomllib.loads(
                               (t / "project" / "datamanifest.toml").read_text())
                           else ["add", add_url, "--name", "extra", "-q"]),
                  HEADER + "\n# datasets are added below by `datamanifest add`\n")
    out["produce"] = (Scenario("produce", ["--python", "produce.py"], [],
                               invariant=lambda t: _produced(t, require=False),
                               final=lambda t: _produced(t, require=True)),
                      HEADER.replace('datasets_dir = "store"   # relative to the project',
                                     'datasets_dir = "store"   # relative to the project\n'
                                     'datacache_dir = "cache"')
                      + "\n# produced datasets only\n")
    out["push"] = (Scenario("push", ["push", "b*", "far", "--root"], [], prepare=[FETCH],
                            invariant=lambda t: _pushed(t, {"big": big, "bundle": members},
                                                        require=False),
                            final=lambda t: _pushed(t, {"big": big, "bundle": members},
                                                    require=True)), both)
    out["tree"] = (Scenario("tree", ["tree", "store/127.0.0.1/bundle", "-o", "bundle.tree.json",
                                     "-q"], [], prepare=[FETCH],
                            invariant=lambda t: _tree_file(t, require=False),
                            final=lambda t: _tree_file(t, require=True)), both)
    _netcdf(root / "data.nc")
    out["virtualize"] = (Scenario("virtualize", ["virtualize", str(root / "data.nc"), "-o",
                                                 "data.chunks.json"], [],
                                  invariant=lambda t: _chunk_file(t, require=False),
                                  final=lambda t: _chunk_file(t, require=True)),
                         HEADER + "\n# no datasets: a chunk manifest is written beside\n")
    return out


def _netcdf(path: Path) -> None:
    """A small NetCDF4 file with a few chunked variables (written once)."""
    if path.exists():
        return
    np = need("numpy", extra="virtual", feature="the crash harness")
    xr = need("xarray", extra="virtual", feature="the crash harness")

    rng = np.random.default_rng(13)
    ds = xr.Dataset({v: (("time", "y", "x"), rng.random((24, 30, 40)).astype("f4"))
                     for v in ("t2m", "tp", "u10")},
                    coords={"time": np.arange(24), "y": np.arange(30.0), "x": np.arange(40.0)})
    enc = {v: {"chunksizes": (6, 30, 40), "zlib": True} for v in ("t2m", "tp", "u10")}
    ds.to_netcdf(path, engine="h5netcdf", encoding=enc)


def _pushed(trial: Path, want: dict[str, Any], require: bool) -> str:
    """`push`: an object with a marker at the far root is whole; ``require``: both are."""
    far = trial / "project" / "far" / "127.0.0.1"
    for name, data in want.items():
        path = far / ("big.bin" if name == "big" else "bundle")
        marker = far / "big.bin.complete" if name == "big" else path / ".complete"
        if not marker.exists():
            if require:
                return f"{name} was not pushed"
            continue
        if isinstance(data, bytes):
            ok = path.is_file() and sha256(path.read_bytes()) == sha256(data)
        else:
            ok = all((path / rel).is_file() and (path / rel).read_bytes() == b
                     for rel, b in data.items())
        if not ok:
            return f"{name} is marked at the far end but its bytes differ"
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


def _listed(trial: Path) -> bool:
    """Does ``datamanifest list`` still show an object, present or only recorded (so a
    selection would not be empty)?"""
    r = run(trial, ["list"])
    return r.returncode == 0 and bool(r.stdout.strip()) and not r.stdout.startswith("0 ")


def _one_copy(trial: Path, data: bytes, need_new: bool) -> str:
    """`mv`: a verified copy exists at the old or the new root (both: fine mid-move);
    ``need_new``: exactly one, at the new root."""
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
_FILES = {"produce": {"produce.py": PRODUCE}}


def _produced(trial: Path, require: bool) -> str:
    r = run(trial, ["--python", "produce.py"], DM_CHAOS_JUDGE="require" if require else "1")
    if r.returncode != 0 or "OK" not in r.stdout:
        return (f"produced datasets: rc {r.returncode} {r.stdout[-200:]} "
                f"{r.stderr.strip()[-400:]}")
    return ""


# --------------------------------------------------------------------------- running


def _env(trial: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATAMANIFEST_", "XDG_")) and k not in ("NETRC",)}
    home = trial / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local"),
               NO_COLOR="1", DATAMANIFEST_LOCK_STALE_AGE=str(STALE_AGE))
    env.update(extra)
    return env


def _start(trial: Path, argv: list[str], *, go: bool = False, **env: str) -> subprocess.Popen:
    # its own process group: a random kill takes the command with its helpers (tree's
    # hashing workers, push's receiver), as the OOM killer or a closed terminal would
    p = subprocess.Popen([sys.executable, "-c", CHILD, *argv], cwd=trial / "project",
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True,
                         env=_env(trial, **({"DM_CHAOS_GO": "1"} if go else {}), **env))
    line = first_line(p)
    if line.strip() != "READY":
        p.kill()
        raise RuntimeError(f"the child did not start: {line}{p.stderr.read()}")
    return p


def run(trial: Path, argv: list[str], timeout: float = 120, **env: str
        ) -> subprocess.CompletedProcess:
    p = _start(trial, argv, **env)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def fresh(base: Path, work: Path) -> Path:
    trial = work / "trial"
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(base, trial, symlinks=True)
    return trial


def make_base(work: Path, scenario: Scenario, text: str) -> Path:
    """``work/base-<name>/project/datamanifest.toml`` (and any files the scenario's
    ``files`` names); the scenario's ``prepare`` commands are run in it first."""
    base = work / f"base-{scenario.name}"
    shutil.rmtree(base, ignore_errors=True)
    (base / "project").mkdir(parents=True)
    (base / "project" / "datamanifest.toml").write_text(text)
    for rel, content in _FILES.get(scenario.name, {}).items():
        (base / "project" / rel).write_text(content)
    for argv in scenario.prepare:
        r = run(base, argv)
        if r.returncode:
            raise RuntimeError(f"preparing {scenario.name} ({argv}): {r.stderr}")
    shutil.rmtree(base / "home", ignore_errors=True)
    return base


def trace(base: Path, work: Path, scenario: Scenario) -> list[str]:
    """The file mutations of one run of the scenario's command (``n event path``)."""
    trial = fresh(base, work)
    tfile = work / "trace.txt"
    tfile.unlink(missing_ok=True)
    r = run(trial, scenario.argv, DATAMANIFEST_FAULT_TRACE=str(tfile),
            DATAMANIFEST_FAULT_ONLY=str(trial / "project"))
    if r.returncode != 0:
        raise RuntimeError(f"the calibration run of {scenario.name} failed: {r.stderr}")
    return tfile.read_text().splitlines() if tfile.exists() else []


# --------------------------------------------------------------------------- judging


@dataclass
class Outcome:
    point: str
    killed: bool
    consistent: bool
    continued: bool = False
    clean: bool = False
    reason: str = ""

    @property
    def corrupt(self) -> bool:
        return not self.consistent

    @property
    def blocked(self) -> bool:
        return self.consistent and not self.continued


def comments(text: str) -> list[str]:
    """The comments of a TOML text, in order (outside strings, good enough for our files)."""
    out = []
    for line in text.splitlines():
        m = _COMMENT.search(line)
        if m:
            out.append(m.group(0).strip())
    return out


def _consistent(trial: Path, original: str, scenario: Scenario,
                partner_ok: bool) -> str:
    """'' when consistent, else why not."""
    from ..project import Project
    from ..store.state import read_state
    from ..verify import verify_dataset

    mpath = trial / "project" / "datamanifest.toml"
    try:
        text = mpath.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, ValueError) as e:
        return f"the manifest does not parse: {e}"
    if comments(text) != comments(original):
        return "the manifest lost or changed a comment"
    before = tomllib.loads(original)
    for name, value in scenario.filled.items():
        now = doc.get(name, {}).get("checksum", "")
        if now not in (before.get(name, {}).get("checksum", ""), value):
            return f"{name}: checksum {now!r} is neither the old nor the right one"
    state = trial / "project" / ".datamanifest" / "state.toml"
    if state.exists():
        try:
            tomllib.loads(state.read_text(encoding="utf-8"))
            records = read_state(state).datasets
        except Exception as e:  # noqa: BLE001 - any failure to read is the verdict
            return f"the state file does not parse: {e}"
        if partner_ok:
            project = Project.open(mpath)
            for name in scenario.partner_datasets:
                if project.storage_key(name) not in records:
                    return f"the state file lost the other process's record of {name}"
    try:
        project = Project.open(mpath)
    except Exception as e:  # noqa: BLE001
        return f"the manifest no longer opens: {e}"
    for name in scenario.datasets + scenario.partner_datasets + scenario.absent:
        if name not in project.manifest.datasets:
            continue  # not declared yet (an `add` killed before it wrote the manifest)
        target = project.target(name)
        if target.status() != "present":
            continue
        try:
            r = verify_dataset(project, name, full=True)
        except Exception as e:  # noqa: BLE001
            return f"{name} looks present but cannot be verified: {e}"
        if not r.ok:
            return f"{name} looks present but its bytes do not verify"
    if scenario.invariant is not None:
        return scenario.invariant(trial)
    return ""


def _leftovers(trial: Path) -> list[str]:
    """Staging folders, locks, partial downloads and resume records in the store and the
    project's ``.datamanifest`` folder."""
    project = trial / "project"
    out = [p.name for p in project.iterdir() if p.name.endswith(".tmp")]
    for top in (project / "store", project / "store2", project / "cache", project / "far",
                project / ".datamanifest"):
        if top.exists():
            out += [str(p.relative_to(project)) for p in top.rglob("*")
                    if _LEFTOVER.search(p.name) and ".git" not in p.parts]
    return sorted(out)


def _continued(trial: Path, scenario: Scenario) -> tuple[bool, bool, str]:
    from ..project import Project
    from ..store.state import read_state
    from ..verify import verify_dataset

    argv = scenario.again(trial) if scenario.again else scenario.argv
    r = run(trial, argv)
    waited = ""
    if r.returncode != 0 and "DM131" in r.stderr:
        # a killed helper that the container's init has not reaped yet still looks alive:
        # its lock is honoured until it is stale by age alone (LCK-004: 5 x stale age)
        time.sleep(5 * STALE_AGE + 0.5)
        r = run(trial, argv)
        waited = "waited out a busy lock"
    if r.returncode != 0:
        return False, False, f"the next run ({' '.join(argv)}) failed: {r.stderr.strip()[-400:]}"
    mpath = trial / "project" / "datamanifest.toml"
    project = Project.open(mpath)
    doc = tomllib.loads(mpath.read_text(encoding="utf-8"))
    for name, value in scenario.filled.items():
        if doc[name].get("checksum") != value:
            return False, False, f"{name}: the checksum was not filled in"
    records = read_state(project.state_file).datasets
    for name in scenario.datasets + scenario.partner_datasets:
        if project.target(name).status() != "present":
            return False, False, f"{name} is not present after the next run"
        if not verify_dataset(project, name, full=True).ok:
            return False, False, f"{name} does not verify after the next run"
        if project.storage_key(name) not in records:
            return False, False, f"the state file has no record of {name}"
    for name in scenario.absent:
        if project.locate(name) is not None or project.target(name).path.exists():
            return False, False, f"{name} is still there after the next run"
        if project.storage_key(name) in records:
            return False, False, f"the state file still records {name}"
    if scenario.final is not None:
        why = scenario.final(trial)
        if why:
            return False, False, why
    left = _leftovers(trial)
    if left and all(p.endswith(".lock") for p in left):
        # a holder killed between its last write and its release: its lock must be gone
        # after one more run once the stale age has passed (LCK-004), never sooner
        time.sleep(STALE_AGE + 0.2)
        argv = scenario.again(trial) if scenario.again else scenario.argv
        r = run(trial, argv)
        left = _leftovers(trial) if r.returncode == 0 else [f"rc {r.returncode}"]
    if left:
        return True, False, f"left behind: {left[:5]}"
    return True, True, waited


def judge(trial: Path, original: str, scenario: Scenario, point: str, killed: bool,
          partner_ok: bool = True) -> Outcome:
    why = _consistent(trial, original, scenario, partner_ok)
    if why:
        return Outcome(point, killed, False, reason=why)
    continued, clean, why = _continued(trial, scenario)
    return Outcome(point, killed, True, continued, clean, why)


# --------------------------------------------------------------------------- trials


def _with_partner(trial: Path, scenario: Scenario, killed_argv: list[str], **env: str
                  ) -> tuple[int, bool]:
    """Run the scenario's command (with ``env``) and its partner together; return the
    command's return code and whether the partner succeeded."""
    p = _start(trial, killed_argv, go=True, **env)
    q = _start(trial, scenario.partner, go=True)  # type: ignore[arg-type]
    for proc in (p, q):
        proc.stdin.write("GO\n")
        proc.stdin.flush()
    p.communicate(timeout=120)
    q.communicate(timeout=120)
    return p.returncode, q.returncode == 0


def _interrupted(trial: Path, r: subprocess.CompletedProcess) -> str:
    """LCK-008 right after a SIGINT: '' when the command exited 130 with DM172 and no
    traceback, and released every lock it held (in the store and the project)."""
    if r.returncode != 130:
        return f"rc {r.returncode} after a SIGINT: {r.stderr.strip()[-300:]}"
    if "Traceback" in r.stderr or "DM172" not in r.stderr:
        return f"not a clean interruption: {r.stderr.strip()[-400:]}"
    locks = [p for p in _leftovers(trial) if p.endswith(".lock")]
    return f"locks left by the interrupted run: {locks[:5]}" if locks else ""


def sweep(base: Path, work: Path, scenario: Scenario, original: str,
          points: list[int] | None = None, log: Callable[[Outcome], None] | None = None,
          sig: str = "KILL") -> list[Outcome]:
    """SIGKILL just before mutation n, for every n of one run (or only ``points``); with
    ``sig="INT"`` a SIGINT there instead (a Ctrl-C at that point), and the run must also
    stop cleanly (:func:`_interrupted`)."""
    lines = trace(base, work, scenario)
    out = []
    for n in points or range(1, len(lines) + 1):
        trial = fresh(base, work)
        env = {"DATAMANIFEST_FAULT": str(n), "DATAMANIFEST_FAULT_SIGNAL": sig,
               "DATAMANIFEST_FAULT_ONLY": str(trial / "project")}
        why = ""
        if scenario.partner:
            rc, partner_ok = _with_partner(trial, scenario, scenario.argv, **env)
        else:
            r = run(trial, scenario.argv, **env)
            rc, partner_ok = r.returncode, True
            if sig == "INT":
                why = _interrupted(trial, r)
        what = lines[n - 1].split(maxsplit=2) if n <= len(lines) else [str(n), "?", ""]
        point = f"{n} {what[1]} {Path(what[2]).name if len(what) > 2 else ''}".strip()
        stopped = rc == (130 if sig == "INT" else -signal.SIGKILL)
        o = Outcome(point, stopped, False, reason=why) if why else \
            judge(trial, original, scenario, point, stopped, partner_ok)
        out.append(o)
        if log:
            log(o)
    return out


def calibrate(base: Path, work: Path, scenario: Scenario, runs: int = 3) -> float:
    """Median seconds from GO to the end of one run (the window of random kills)."""
    times = []
    for _ in range(runs):
        trial = fresh(base, work)
        p = _start(trial, scenario.argv, go=True)
        t0 = time.perf_counter()
        p.stdin.write("GO\n")
        p.stdin.flush()
        p.communicate(timeout=120)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def random_kills(base: Path, work: Path, scenario: Scenario, original: str, trials: int,
                 seed: int = 0, log: Callable[[Outcome], None] | None = None
                 ) -> list[Outcome]:
    """SIGKILL at a moment drawn from U(0, D) after GO (D: the calibrated run time)."""
    rng = random.Random(seed)
    window = calibrate(base, work, scenario)
    out = []
    for _ in range(trials):
        trial = fresh(base, work)
        p = _start(trial, scenario.argv, go=True)
        q = _start(trial, scenario.partner, go=True) if scenario.partner else None
        delay = rng.uniform(0, window)
        for proc in (p, q):
            if proc:
                proc.stdin.write("GO\n")
                proc.stdin.flush()
        time.sleep(delay)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had finished, helpers and all
            pass
        p.communicate(timeout=60)
        partner_ok = True
        if q:
            q.communicate(timeout=120)
            partner_ok = q.returncode == 0
        o = judge(trial, original, scenario, f"{delay * 1000:.1f} ms",
                  p.returncode == -signal.SIGKILL, partner_ok)
        out.append(o)
        if log:
            log(o)
    return out


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    """The counts of the module docstring."""
    return {"trials": len(outcomes), "killed": sum(o.killed for o in outcomes),
            "corrupt": sum(o.corrupt for o in outcomes),
            "blocked": sum(o.blocked for o in outcomes),
            "left_over": sum(o.continued and not o.clean for o in outcomes),
            "recovered": sum(o.continued and o.clean for o in outcomes),
            "waited": sum(o.reason == "waited out a busy lock" for o in outcomes)}


def as_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [{"point": o.point, "killed": o.killed, "consistent": o.consistent,
             "continued": o.continued, "clean": o.clean, "reason": o.reason}
            for o in outcomes]


__all__ = ["Scenario", "Outcome", "build", "make_base", "sweep", "random_kills", "summary",
           "trace", "judge", "fresh", "run", "comments", "as_json"]
