"""Interpreters for peer tools: a venv made once with another Python and its packages
(VirtualiZarr 2 needs Python 3.12; the tests and benchmarks compare against it)."""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

#: VirtualiZarr 2.8 and kerchunk 0.2.10, the chunk-manifest peers of the interop tests and
#: of ``bench/virtualize.py``: their venv below the checkout's ``.cache/`` and its packages
VIRTUALIZARR_VENV = Path(".cache") / "bench-virtualizarr"
VIRTUALIZARR_PACKAGES = ["virtualizarr==2.8.0", "kerchunk==0.2.10", "h5py", "h5netcdf",
                         "xarray", "obstore", "zarr>=3.1", "numcodecs", "ujson", "fastparquet",
                         "pandas"]


def virtualizarr_python(root: str | Path) -> str | None:
    """The interpreter of the VirtualiZarr peers' venv under the checkout ``root`` (made on
    first use, :func:`python_venv`); None without Python 3.12."""
    return python_venv(Path(root) / VIRTUALIZARR_VENV, VIRTUALIZARR_PACKAGES)


def python_venv(folder: str | Path, packages: list[str], version: str = "3.12") -> str | None:
    """The interpreter of a venv at ``folder`` made with Python ``version`` (found on PATH or
    under pyenv: ``$PYENV_ROOT``, ``~/.pyenv``, the account's own home) and holding
    ``packages``; made on first use. None when no such Python exists here or the packages
    cannot be installed (the caller skips). For tests and benchmarks that run a peer tool
    needing another Python (VirtualiZarr 2 needs 3.12)."""
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
    # uv, when the running venv has it (make test installs it), takes seconds where pip
    # takes most of a minute; pip otherwise, or when uv fails
    r = subprocess.run([sys.executable, "-m", "uv", "pip", "install", "-q", "--compile-bytecode",
                        "--python", str(py), *packages], capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *packages],
                           capture_output=True, text=True)
    if r.returncode != 0:
        return None
    (folder / ".ready").write_text("\n".join(packages) + "\n")
    return str(py)


def main() -> None:
    """``make peers`` (part of ``make test``'s setup): the VirtualiZarr peers' venv under the
    current checkout, made before the tests start instead of inside the first test."""
    made = virtualizarr_python(Path.cwd())
    print(f"VirtualiZarr peers: {made}" if made else
          "note: no Python 3.12 here: the VirtualiZarr interop tests will be skipped")
