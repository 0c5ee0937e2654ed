"""Shared test fixtures: a real loopback HTTP server and project folders."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]

#: `make reliability` sets DATAMANIFEST_THOROUGH=1: property tests run their full budgets
THOROUGH = os.environ.get("DATAMANIFEST_THOROUGH") == "1"


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


def _serve(cmd: list[str], port: int, what: str, cwd: Path | None = None):
    """Start a server process and wait until it accepts connections on 127.0.0.1:port."""
    from datamanifest.testing import wait_for_port

    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"dm-{what}-{port}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    if not wait_for_port(port, timeout=60):
        proc.kill()
        pytest.fail(f"{what} did not start: {cmd}")
    return proc


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory):
    """A real Google Cloud Storage emulator (gcp-storage-emulator) on 127.0.0.1, bucket ``data``.

    Yields the environment a client needs (``STORAGE_EMULATOR_HOST``); gcsfs's gRPC bucket-type
    probe, which the emulator does not serve, is turned off.
    """
    import shutil

    from datamanifest.testing import free_port

    exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).parent / "gcp-storage-emulator")
    port = free_port()
    proc = _serve([exe, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory",
                   "--default-bucket=data"], port, "gcs")
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
           "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    yield env
    _stop(proc)


#: Azurite's documented development account (a public, fixed test credential)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def azurite_connection_string(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")


@pytest.fixture(scope="session")
def azure_endpoint(tmp_path_factory):
    """A real Azure Blob Storage emulator (Azurite, from npm) on 127.0.0.1, container ``data``.

    `make test` installs Azurite into .cache/azurite when node is there. Yields
    ``(environment, port)``; the environment carries ``AZURE_STORAGE_CONNECTION_STRING``.
    """
    import shutil

    from datamanifest.testing import free_port

    exe = shutil.which("azurite-blob") or str(ROOT / ".cache" / "azurite" / "node_modules" / ".bin"
                                                / "azurite-blob")
    if not os.path.exists(exe) or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("Azurite is not installed (make test installs it with npm)")
        pytest.skip("Azurite is not installed (make test installs it with npm)")
    port = free_port()
    where = tmp_path_factory.mktemp("azurite")
    proc = _serve([exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(where),
                   "--silent", "--skipApiVersionCheck", "--loose"], port, "azurite")
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(port)}
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]) \
        .create_container("data")
    yield env, port
    _stop(proc, grace=0.5)  # its data is a throw-away folder


SSHD = "/usr/sbin/sshd"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (key login, no password); DATAMANIFEST_SSH points at it."""
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
