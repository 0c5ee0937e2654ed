"""Shared test fixtures: a real loopback HTTP server and project folders."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(tmp_path: Path) -> Path:
    d = tmp_path / "served"
    d.mkdir()
    return d


@pytest.fixture
def http(served: Path):
    with LoopbackServer(served) as srv:
        yield srv


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "project"
    d.mkdir()
    return d


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m datamanifest ARGS` as a user would (a real process)."""
    full_env = dict(os.environ)
    full_env.pop("DATAMANIFEST_TOML", None)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "datamanifest", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, input=input, timeout=120)


def write_manifest(project: Path, body: str) -> Path:
    p = project / "datamanifest.toml"
    p.write_text('[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n\n' + body)
    return p


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto's standalone server) on 127.0.0.1."""
    import shutil
    import time
    import urllib.request

    from datamanifest.testing import free_port

    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield url
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)
