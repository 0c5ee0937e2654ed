"""Shared test fixtures: a real loopback HTTP server and project folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer
from datamanifest.testing.servers import azurite_connection_string  # noqa: F401 - for tests

ROOT = Path(__file__).resolve().parents[1]

#: `make reliability` sets DATAMANIFEST_THOROUGH=1: property tests run their full budgets
THOROUGH = os.environ.get("DATAMANIFEST_THOROUGH") == "1"


def pytest_configure(config) -> None:
    """Fix the sweep seed of this run (crash.sweep_seed) before pytest-xdist starts its
    workers, so they all sample the same kill points; and give SIGINT its default handler
    when this run started with it ignored (a shell's `make test &` without job control
    does that, and the ignored disposition would pass to every child): the tests send
    SIGINT to their children and expect what a Ctrl-C does."""
    import signal

    from datamanifest.testing.crash import sweep_seed

    os.environ["DATAMANIFEST_SWEEP_SEED"] = sweep_seed()
    # the test venv installs no pydantic plugin: every process the tests start (thousands)
    # skips pydantic's search of the installed packages' entry points (~10 ms each)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config) -> str:
    return (f"crash sweeps sampled with seed {os.environ['DATAMANIFEST_SWEEP_SEED']} "
            "(DATAMANIFEST_SWEEP_SEED=... repeats a run's kill points)")


def examples(n: int) -> int:
    """A Hypothesis budget: ``n`` examples under DATAMANIFEST_THOROUGH=1 (`make
    reliability`), a quarter (at least 25) in `make test`."""
    return n if THOROUGH else max(25, n // 4)


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


def mermaid_node() -> tuple[str, Path]:
    """``(node, folder)``: Node.js and the folder whose ``node_modules`` holds Mermaid and jsdom
    (``make test-tools`` installs them with npm). Skips the test without them; under CI,
    where they must be there, fails it."""
    import shutil

    where = ROOT / ".cache" / "mermaid"
    node = shutil.which("node")
    if node is None or not (where / "node_modules" / "mermaid").is_dir():
        if os.environ.get("CI"):
            pytest.fail("Mermaid is missing (make test-tools installs it with npm)")
        pytest.skip("Mermaid is missing: run `make test-tools` (needs npm)")
    return node, where


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m datamanifest ARGS` as a user would (a real process)."""
    full_env = dict(os.environ)
    full_env.pop("DATAMANIFEST_TOML", None)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "datamanifest", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, input=input, timeout=timeout)


def write_manifest(project: Path, body: str) -> Path:
    p = project / "datamanifest.toml"
    p.write_text('[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n\n' + body)
    return p


@contextlib.contextmanager
def _serving(manager, *args):
    """A server of the test kit for the session; skip (fail under CI) when this machine
    cannot start it."""
    from datamanifest.testing import servers

    cm = manager(*args)
    try:
        value = cm.__enter__()
    except servers.Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))
    try:
        yield value
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto's standalone server) on 127.0.0.1; its environment
    is set for the session."""
    from datamanifest.testing import servers

    with servers.moto() as env:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        yield env["AWS_ENDPOINT_URL"]
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def gcs_endpoint():
    """A real Google Cloud Storage emulator (gcp-storage-emulator) on 127.0.0.1, bucket
    ``data``. Yields the environment a client needs (``STORAGE_EMULATOR_HOST``)."""
    from datamanifest.testing import servers

    with servers.gcs() as env:
        yield env


@pytest.fixture(scope="session")
def azure_endpoint(tmp_path_factory):
    """A real Azure Blob Storage emulator (Azurite, from npm) on 127.0.0.1, container ``data``.

    `make test` installs Azurite into .cache/azurite when node is there. Yields
    ``(environment, port)``; the environment carries ``AZURE_STORAGE_CONNECTION_STRING``.
    """
    from datamanifest.testing import servers

    with _serving(servers.azurite, tmp_path_factory.mktemp("azurite")) as found:
        yield found


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (key login, no password); DATAMANIFEST_SSH points at it."""
    from datamanifest.testing import servers

    with _serving(servers.sshd, tmp_path_factory.mktemp("ssh")) as found:
        old = os.environ.get("DATAMANIFEST_SSH")
        os.environ["DATAMANIFEST_SSH"] = found["ssh"]
        yield {k: found[k] for k in ("port", "user", "dir")}
        if old is None:
            os.environ.pop("DATAMANIFEST_SSH", None)
        else:
            os.environ["DATAMANIFEST_SSH"] = old
