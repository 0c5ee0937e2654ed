"""Interpreters for peer tools: a venv made once with another Python and its packages
(VirtualiZarr 2 needs Python 3.12; the tests and benchmarks compare against it)."""

from __future__ import annotations

from pathlib import Path


def python_venv(folder: str | Path, packages: list[str], version: str = "3.12") -> str | None:
    """The interpreter of a venv at ``folder`` made with Python ``version`` (found on PATH or
    under pyenv: ``$PYENV_ROOT``, ``~/.pyenv``, the account's own home) and holding ``packages``; made on first use. None when no such Python
    exists here or the packages cannot be installed (the caller skips). For tests and
    benchmarks that run a peer tool needing another Python (VirtualiZarr 2 needs 3.12)."""
    import fcntl

    folder = Path(folder)
    py = folder / "bin" / "python"
    if (folder / ".ready").exists() and py.exists():
        return str(py)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:  # one maker at a time
        fcntl.flock(lock, fcntl.LOCK_EX)  # (pytest-xdist workers share the folder)
        return _make_venv(folder, py, packages, version)


def _make_venv(folder: Path, py: Path, packages: list[str], version: str) -> str | None:
    import shutil
    import subprocess

    if (folder / ".ready").exists() and py.exists():
        return str(py)
    import os
    import pwd

    roots = [os.environ.get("PYENV_ROOT"), Path.home() / ".pyenv",  # and the account's own
             Path(pwd.getpwuid(os.getuid()).pw_dir) / ".pyenv"]   # home under another HOME
    candidates = []
    for root in dict.fromkeys(Path(r) for r in roots if r):
        candidates += [str(p) for p in sorted(root.glob(f"versions/{version}*/bin/python"),
                                              reverse=True)]
    if shutil.which(f"python{version}"):
        candidates.append(shutil.which(f"python{version}"))
    base = None
    for c in candidates:  # a pyenv shim exists even when it cannot run that version
        if subprocess.run([c, "--version"], capture_output=True).returncode == 0:
            base = c
            break
    if base is None:
        return None
    if not py.exists():
        subprocess.run([base, "-m", "venv", str(folder)], check=True)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return None
    (folder / ".ready").write_text("\n".join(packages) + "\n")
    return str(py)
