"""A project's command as a crash scenario, and its judge (:class:`CommandScenario`).

The base folder holds ``project/`` (a manifest, its store) and whatever else the command
reaches (``far/``, a second project a push or pull talks to). After the kill the judge asks:

consistent
    the manifest parses, keeps every comment of the original and holds, for each dataset,
    either the checksum it had or the right one; the state file (when present) parses and
    keeps every record another process wrote; no dataset looks present (marker) unless
    its bytes verify against the checksum it was published with; and the scenario's own
    ``invariant`` holds (a far copy, an output file).
continued
    the command, run again without faults, succeeds; every dataset it must provide is
    present, verifies, has its checksum in the manifest and a record in the state file;
    every dataset it must remove is gone; and the scenario's ``final`` judge holds.
clean
    and nothing is left in the stores but datasets, markers and tree manifests (no
    staging folder, lock, partial download or resume record).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import crash
from .crash import Verdict

#: files a finished run may not leave in a store besides the datasets themselves
LEFTOVER = re.compile(r"(\.tmp|\.lock|\.part|\.resume\.json|\.reclaim|\.tmp\.[^/]*)$")
#: the folders of a trial searched for leftovers
STORES = ("project/store", "project/store2", "project/cache", "project/far",
          "project/.datamanifest", "far/store", "far/cache", "far/.datamanifest", "export")
_COMMENT = re.compile(r"#[^\n\"']*$")

#: a judge: '' when its property holds on the trial, else why not
Judge = Callable[[Path], str]
#: a preparation step of the base: CLI arguments run in ``project/``, or a callable on the base
Step = list[str] | Callable[[Path], None]


def sha256(data: bytes) -> str:
    """The SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def comments(text: str) -> list[str]:
    """The comments of a TOML text, in order (outside strings; good enough for our files)."""
    out = []
    for line in text.splitlines():
        m = _COMMENT.search(line)
        if m:
            out.append(m.group(0).strip())
    return out


@dataclass
class CommandScenario(crash.Scenario):
    """One ``datamanifest`` command over one project.

    Parameters
    ----------
    name : str
        The scenario's name.
    argv : list of str
        The command, run in ``<trial>/project`` (``["--python", script]`` runs a script).
    text : str
        The manifest the base starts from.
    datasets : list of str
        Datasets the finished run must have present.
    partner : list of str, optional
        A second command started at the same moment and never killed, whose state records
        must survive (a concurrent state-file merge); ``partner_datasets`` are its datasets.
    filled : dict of str to str
        Dataset name -> the checksum the run writes into the manifest.
    prepare : list
        Steps run once on the base before the trials: CLI arguments (run in ``project/``)
        or callables given the base folder.
    absent : list of str
        Datasets the finished run must have removed (no bytes, no state record).
    invariant, final : callable, optional
        Extra judges of the trial folder: after the kill, and after the next run.
    again : callable, optional
        The next run's argv (default: ``argv`` again).
    files : dict of str to str
        Files written into the base (path relative to it) before ``prepare``.
    env : dict of str to str
        Variables of every run (an SSH command, say).
    only : tuple of str
        Folders of the trial whose mutations are counted (default: ``project``).
    """

    name: str
    argv: list[str]
    text: str
    datasets: list[str] = field(default_factory=list)
    partner_argv: list[str] | None = None
    partner_datasets: list[str] = field(default_factory=list)
    filled: dict[str, str] = field(default_factory=dict)
    prepare: list[Step] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    invariant: Judge | None = None
    final: Judge | None = None
    again: Callable[[Path], list[str]] | None = None
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    only: tuple[str, ...] = ("project",)
    #: the base's manifest after ``prepare`` (set by :meth:`make_base`)
    original: str = ""

    # -- the runner's questions
    def command(self, trial: Path) -> list[str]:
        return list(self.argv)

    def cwd(self, trial: Path) -> Path:
        return trial / "project"

    def fault_only(self, trial: Path) -> list[Path]:
        return [trial / rel for rel in self.only]

    def environment(self, trial: Path) -> dict[str, str]:
        return dict(self.env)

    def partner(self, trial: Path) -> list[str] | None:
        return self.partner_argv

    # -- the base
    def make_base(self, work: Path) -> Path:
        """Write ``<work>/base-<name>`` (``project/datamanifest.toml``, :attr:`files`), run
        :attr:`prepare` in it and remember the manifest as :attr:`original`.

        Raises
        ------
        RuntimeError
            A preparation command failed.
        """
        import shutil

        base = work / f"base-{self.name}"
        shutil.rmtree(base, ignore_errors=True)
        (base / "project").mkdir(parents=True)
        (base / "project" / "datamanifest.toml").write_text(self.text)
        for rel, content in self.files.items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_text(content)
        for step in self.prepare:
            if callable(step):
                step(base)
                continue
            r = crash.run(self, base, step)
            if r.returncode:
                raise RuntimeError(f"preparing {self.name} ({step}): {r.stderr}")
        shutil.rmtree(base / "home", ignore_errors=True)
        self.original = (base / "project" / "datamanifest.toml").read_text()
        return base

    # -- the judge
    def judge(self, trial: Path, point: str, killed: bool, *, partner_ok: bool = True
              ) -> Verdict:
        why = self.consistent(trial, partner_ok)
        if why:
            return Verdict(point, killed, False, reason=why)
        continued, clean, why = self.continued(trial)
        return Verdict(point, killed, True, continued, clean, why)

    def interrupted(self, trial: Path, result: subprocess.CompletedProcess) -> str:
        """LCK-008 right after a SIGINT: exit 130 with DM172, no traceback, and every lock
        it held (in the stores and the project) released."""
        why = super().interrupted(trial, result)
        if why:
            return why
        if "DM172" not in result.stderr:
            return f"not a clean interruption: {result.stderr.strip()[-400:]}"
        locks = [p for p in leftovers(trial) if p.endswith(".lock")]
        return f"locks left by the interrupted run: {locks[:5]}" if locks else ""

    def consistent(self, trial: Path, partner_ok: bool = True) -> str:
        """'' when the trial is consistent (module docstring), else why not."""
        from ..project import Project
        from ..store.state import read_state

        original = self.original or self.text
        mpath = trial / "project" / "datamanifest.toml"
        try:
            text = mpath.read_text(encoding="utf-8")
            doc = tomllib.loads(text)
        except (OSError, ValueError) as e:
            return f"the manifest does not parse: {e}"
        if comments(text) != comments(original):
            return "the manifest lost or changed a comment"
        before = tomllib.loads(original)
        for name, value in self.filled.items():
            now = doc.get(name, {}).get("checksum", "")
            if now not in (before.get(name, {}).get("checksum", ""), value):
                return f"{name}: checksum {now!r} is neither the old nor the right one"
        state = trial / "project" / ".datamanifest" / "state.toml"
        if state.exists():
            try:
                records = read_state(state).datasets
            except Exception as e:  # noqa: BLE001 - any failure to read is the verdict
                return f"the state file does not parse: {e}"
            if partner_ok:
                project = Project.open(mpath)
                for name in self.partner_datasets:
                    if project.storage_key(name) not in records:
                        return f"the state file lost the other process's record of {name}"
        try:
            project = Project.open(mpath)
        except Exception as e:  # noqa: BLE001
            return f"the manifest no longer opens: {e}"
        for name in self.datasets + self.partner_datasets + self.absent:
            if name not in project.manifest.datasets:
                continue  # not declared yet (an `add` killed before it wrote the manifest)
            target = project.target(name)
            if target.status() != "present":
                continue
            published = target.read_marker().get("checksum")
            declared = project.dataset(name).effective_checksum
            if published and declared and published != declared:
                # present but not current (STO-011): published under another checksum (an
                # `update-checksums` killed before its manifest write); its bytes must
                # match what its marker says
                why = _matches_marker(target, published)
                if why:
                    return f"{name}: {why}"
                continue
            try:
                ok = verified(project, name)
            except Exception as e:  # noqa: BLE001
                return f"{name} looks present but cannot be verified: {e}"
            if not ok:
                return f"{name} looks present but its bytes do not verify"
        return self.invariant(trial) if self.invariant is not None else ""

    def next_argv(self, trial: Path) -> list[str]:
        """The next run's argv."""
        return self.again(trial) if self.again else self.command(trial)

    def continued(self, trial: Path) -> tuple[bool, bool, str]:
        """Run the command again: ``(continued, clean, why)``."""
        from ..project import Project
        from ..store.state import read_state

        argv = self.next_argv(trial)
        r = crash.run(self, trial, argv)
        waited = ""
        if r.returncode != 0 and "DM131" in r.stderr:
            # a killed helper that the container's init has not reaped yet still looks
            # alive: its lock is honoured until it is stale by age alone (LCK-004: 5 x)
            time.sleep(5 * crash.STALE_AGE + 0.5)
            r = crash.run(self, trial, argv)
            waited = "waited out a busy lock"
        if r.returncode != 0:
            return False, False, (f"the next run ({' '.join(argv)}) failed: "
                                  f"{r.stderr.strip()[-400:]}")
        mpath = trial / "project" / "datamanifest.toml"
        project = Project.open(mpath)
        doc = tomllib.loads(mpath.read_text(encoding="utf-8"))
        for name, value in self.filled.items():
            if doc[name].get("checksum") != value:
                return False, False, f"{name}: the checksum was not filled in"
        records = read_state(project.state_file).datasets
        for name in self.datasets + self.partner_datasets:
            if project.target(name).status() != "present":
                return False, False, f"{name} is not present after the next run"
            if not verified(project, name):
                return False, False, f"{name} does not verify after the next run"
            if project.storage_key(name) not in records:
                return False, False, f"the state file has no record of {name}"
        for name in self.absent:
            if project.locate(name) is not None or project.target(name).path.exists():
                return False, False, f"{name} is still there after the next run"
            if project.storage_key(name) in records:
                return False, False, f"the state file still records {name}"
        if self.final is not None:
            why = self.final(trial)
            if why:
                return False, False, why
        left = leftovers(trial)
        if left and all(p.endswith(".lock") for p in left):
            # a holder killed between its last write and its release: its lock must be
            # gone after one more run once the stale age has passed (LCK-004), never sooner
            time.sleep(crash.STALE_AGE + 0.2)
            r = crash.run(self, trial, self.next_argv(trial))
            left = leftovers(trial) if r.returncode == 0 else [f"rc {r.returncode}"]
        if left:
            return True, False, f"left behind: {left[:5]}"
        return True, True, waited


def verified(project, name: str) -> bool:
    """Do a present dataset's bytes verify in full (``datamanifest verify --full``)? A
    folder is judged against the tree manifest its marker names (STO-012), which every
    command that publishes one, `pull` and `receive` included, stores before its marker."""
    from ..verify import verify_dataset

    return verify_dataset(project, name, full=True).ok


def _matches_marker(target, checksum: str) -> str:
    """'' when a file dataset's bytes have the checksum its marker records (a folder is
    judged by the next run)."""
    from ..io.local import hash_file

    algo, _, hexdigest = checksum.partition(":")
    if target.is_dir:
        return ""
    try:
        return "" if hash_file(str(target.path), algo)[0] == hexdigest else \
            "its bytes differ from what its marker records"
    except Exception as e:  # noqa: BLE001
        return f"its bytes cannot be hashed: {e}"


def leftovers(trial: Path) -> list[str]:
    """Staging folders, locks, partial downloads and resume records in the trial's stores
    and ``.datamanifest`` folders (paths relative to the trial)."""
    out = [f"project/{p.name}" for p in (trial / "project").iterdir()
           if p.name.endswith(".tmp")]
    for rel in STORES:
        top = trial / rel
        if top.exists():
            out += [str(p.relative_to(trial)) for p in top.rglob("*")
                    if LEFTOVER.search(p.name) and ".git" not in p.parts]
    return sorted(set(out))


__all__ = ["CommandScenario", "comments", "leftovers", "sha256", "LEFTOVER", "Judge"]
