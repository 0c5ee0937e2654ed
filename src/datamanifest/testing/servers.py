"""Real servers on 127.0.0.1 for the demo, the tests and the benchmarks (no mocks).

* :class:`LoopbackServer` -- an HTTP/1.1 file server (``sendfile`` bodies) that records
  every request and can misbehave on purpose (cut a body short, stall, answer 503, demand
  authentication, redirect, serve TLS) so tests exercise the failure paths;
* :class:`CuttingProxy` -- a TCP proxy that drops connections midway, in front of servers
  that cannot cut a body themselves (the object-store emulators);
* :func:`moto`, :func:`gcs`, :func:`azurite`, :func:`sshd` -- the S3, Google Cloud
  Storage and Azure Blob emulators and an OpenSSH server, each started on a free port and
  stopped when its ``with`` block ends;
* :func:`free_port`, :func:`wait_for_port`, :func:`first_line`, :func:`self_signed`.

::

    with LoopbackServer(folder) as srv:
        url = srv.url("data.csv")        # http://127.0.0.1:<port>/data.csv
        ...
        srv.hits["/data.csv"]            # GET requests served
"""

from __future__ import annotations

import email.utils
import os
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (killed by a crash test) is not an error."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serve the files below ``root`` on 127.0.0.1 (a free port).

    ``cut``: path -> byte count after which the connection is dropped (the
    full Content-Length is still announced). ``delay``: path -> seconds to
    stall before the body. ``script``: path -> status codes answered (with
    ``Retry-After: 0``) before the file is served. ``auth``: path -> required
    ``Authorization`` header value. Ranges (``bytes=N-``) are honoured, with
    ``If-Range`` compared to the ETag (for a path in ``no_etag``: to its Last-Modified, sent
    instead of an ETag); ``ranges`` counts 206 answers. ``redirect``: path ->
    ``Location`` answered with 302; ``authorizations`` lists each request's
    ``Authorization`` header. ``tls``: (certificate, key) PEM files to serve https.
    ``rate``: path -> bytes per second at which its body is sent (a slow link, so a test can
    interrupt a download midway; ``"*"`` applies to every path). ``log`` records each
    request: ``path``, ``range`` and ``if_range`` (the headers, or None), ``status``, and
    ``sent`` (body bytes written before the request ended).
    """

    def __init__(self, root: str | Path, *, tls: tuple[str, str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.scheme = "https" if tls else "http"
        self.hits: Counter[str] = Counter()
        self.cut: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.script: dict[str, list[int]] = {}
        self.auth: dict[str, str] = {}
        self.ranges: Counter[str] = Counter()
        self.user_agents: list[str] = []
        self.redirect: dict[str, str] = {}  # path -> Location answered with a 302
        self.authorizations: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.rate: dict[str, float] = {}  # path (or "*") -> bytes per second
        self.no_etag: set[str] = set()  # paths validated by Last-Modified only
        self.log: list[dict] = []  # one entry per request (see the class docstring)
        self.requested: list[str] = []  # paths in the order requests arrived
        self.served: list[str] = []  # paths in the order their whole body was sent
        self.active = 0  # requests between arrival and the start of their body (see do_GET)
        self.max_active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body are separate writes: without TCP_NODELAY, Nagle's algorithm
                # waits for the client's delayed ACK on every keep-alive request (~6 ms here)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _file(self) -> Path | None:
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                p = (server.root / rel).resolve()
                if server.root not in p.parents and p != server.root:
                    return None
                return p if p.is_file() else None

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                # ``active`` counts requests from arrival until their body starts: a client
                # holds its download slot for all of that time, so a count above a client's
                # cap is a real violation, never the race of a slot released while this
                # handler is still finishing
                with server._lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                self._counted = True
                try:
                    self._serve(body=True)
                finally:
                    self._uncount()

            def _uncount(self) -> None:
                if getattr(self, "_counted", False):
                    self._counted = False
                    with server._lock:
                        server.active -= 1

            def _serve(self, body: bool) -> None:
                path = urlsplit(self.path).path
                entry = {"path": path, "method": self.command,
                         "range": self.headers.get("Range"),
                         "if_range": self.headers.get("If-Range"), "status": None, "sent": 0}
                with server._lock:
                    server.log.append(entry)
                    server.hits[path] += 1
                    server.requested.append(path)
                    server.user_agents.append(self.headers.get("User-Agent", ""))
                    server.authorizations.append((path, self.headers.get("Authorization")))
                    scripted = server.script.get(path)
                    status = scripted.pop(0) if scripted else None
                    location = server.redirect.get(path)
                if location is not None:
                    entry["status"] = 302
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if status is not None:
                    entry["status"] = status
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path in server.auth and self.headers.get("Authorization") != server.auth[path]:
                    entry["status"] = 401
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="data"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                p = self._file()
                if p is None:
                    entry["status"] = 404
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = p.stat().st_size
                etag = f'"{int(p.stat().st_mtime_ns)}-{size}"' if path not in server.no_etag \
                    else email.utils.formatdate(p.stat().st_mtime, usegmt=True)
                start, end = 0, size  # end exclusive
                rng = self.headers.get("Range", "")
                if_range = self.headers.get("If-Range")
                partial = False
                if rng.startswith("bytes=") and "," not in rng and (if_range in (None, etag)):
                    first, _, last = rng[6:].partition("-")
                    try:
                        start = int(first) if first else 0
                        end = min(size, int(last) + 1) if last else size
                        partial = 0 <= start < end and (start > 0 or end < size)
                    except ValueError:
                        partial = False
                    if not partial:
                        start, end = 0, size
                if partial:
                    with server._lock:
                        server.ranges[path] += 1
                    entry["status"] = 206
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                else:
                    entry["status"] = 200
                    self.send_response(200)
                self.send_header("Content-Length", str(end - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Last-Modified" if path in server.no_etag else "ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if not body:
                    return
                if path in server.delay:
                    time.sleep(server.delay[path])
                self._uncount()
                self.wfile.flush()
                rate = server.rate.get(path, server.rate.get("*"))
                with open(p, "rb") as f:
                    f.seek(start)
                    if path in server.cut:
                        data = f.read(max(min(server.cut[path], end) - start, 0))
                        self.wfile.write(data)
                        self.wfile.flush()
                        entry["sent"] = len(data)
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if rate:
                        self._throttled(f, end - start, rate, entry)
                    else:
                        self.connection.sendfile(f, offset=start, count=end - start)
                        entry["sent"] = end - start
                with server._lock:
                    server.served.append(path)

            def _throttled(self, f, count: int, rate: float, entry: dict) -> None:
                """Send ``count`` bytes of ``f`` at ``rate`` bytes per second, in pieces of
                1/50 s; a client that goes away ends it."""
                piece = max(1024, int(rate / 50))
                t0 = time.monotonic()
                sent = 0
                while sent < count:
                    data = f.read(min(piece, count - sent))
                    if not data:
                        break
                    try:
                        self.wfile.write(data)
                        self.wfile.flush()
                    except OSError:
                        self.close_connection = True
                        return
                    sent += len(data)
                    entry["sent"] = sent
                    ahead = t0 + sent / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        if tls:  # (certificate file, key file), PEM
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def url(self, rel: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{rel.lstrip('/')}"

    def start(self) -> "LoopbackServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="dm-http",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream_port`` that cuts responses midway.

    The first ``cuts`` connections whose server-to-client bytes pass ``cut_after`` (bytes)
    are closed at that point, on both sides, as a dropped connection would be; later
    connections pass through whole. ``cut`` counts the cuts made. For tests of interrupted
    downloads against real servers (object stores) that cannot cut a body themselves."""

    def __init__(self, upstream_port: int, cut_after: int, cuts: int = 1) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.cut = 0
        self._mutex = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if downstream:
                    with self._mutex:
                        cutting = self.cuts_left > 0 and sent + len(data) > self.cut_after
                        if cutting:
                            self.cuts_left -= 1
                            self.cut += 1
                    if cutting:
                        dst.sendall(data[: max(0, self.cut_after - sent)])
                        break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self.sock.close()


def first_line(p) -> str:
    """The first line a child process (``subprocess.Popen`` with ``stdout=PIPE``) printed,
    read from the pipe byte by byte: ``p.stdout.readline()`` could buffer what a fast child
    printed next, which ``p.communicate()`` (reading the file descriptor) would then miss."""
    data = b""
    while not data.endswith(b"\n"):
        byte = os.read(p.stdout.fileno(), 1)
        if not byte:
            break
        data += byte
    return data.decode(errors="replace")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 5.0) -> bool:
    """True once something accepts connections on 127.0.0.1:``port`` (False on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def start_server_process(root: str | Path):
    """Serve ``root`` from a separate process (its own GIL, as for benchmarks): returns
    ``(process, base_url)``; terminate the process when done."""
    import subprocess
    import sys
    import tempfile

    port_file = Path(tempfile.mkstemp(prefix="dm-port-")[1])
    proc = subprocess.Popen([sys.executable, "-m", "datamanifest.testing", str(root),
                             str(port_file)])
    for _ in range(200):
        text = port_file.read_text()
        if text:
            break
        time.sleep(0.05)
    port_file.unlink(missing_ok=True)
    return proc, f"http://127.0.0.1:{text}"


def serve_forever(root: str, port_file: str) -> None:  # pragma: no cover - used by bench/tests
    """Run a server in this process, writing its port to ``port_file``."""
    srv = LoopbackServer(root)
    Path(port_file).write_text(str(srv.port))
    try:
        srv.httpd.serve_forever()
    finally:
        srv.httpd.server_close()


def self_signed(folder: str | Path, host: str = "127.0.0.1") -> tuple[str, str]:
    """A self-signed certificate for ``host`` (an IP address) and its key, written as PEM
    files in ``folder``: (certificate path, key path). For TLS tests on loopback."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


# -- emulators and an SSH server ---------------------------------------------------------------
class Unavailable(RuntimeError):
    """A server this machine cannot start (its program is not installed); a test skips."""


def _program(name: str, *more: Path) -> str | None:
    """``name`` on PATH, beside this Python, or at one of ``more``; None when absent."""
    import shutil
    import sys

    for candidate in (shutil.which(name), str(Path(sys.executable).parent / name), *map(str, more)):
        if candidate and os.path.exists(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _start(cmd: list[str], port: int, what: str, timeout: float = 60.0):
    """Start ``cmd`` (its output in a log file under $TMPDIR) and wait for ``port``."""
    import subprocess
    import tempfile

    log = open(Path(tempfile.gettempdir()) / f"dm-{what}-{port}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    if not wait_for_port(port, timeout=timeout):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{what} did not start on 127.0.0.1:{port}: {cmd}")
    return proc


def _stop(proc, grace: float = 5.0) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _serving(start):
    """A context manager over ``start() -> (process, value)`` stopping the process after."""
    import contextlib

    @contextlib.contextmanager
    def manager(*args, **kwargs):
        proc, value, grace = start(*args, **kwargs)
        try:
            yield value
        finally:
            _stop(proc, grace)
    manager.__doc__ = start.__doc__
    manager.__name__ = start.__name__
    return manager


@_serving
def moto():
    """moto's standalone S3 server on 127.0.0.1: yields the environment a client needs
    (``AWS_ENDPOINT_URL``, test credentials, region). Raises :class:`Unavailable` without
    ``moto_server`` (the ``test`` extra)."""
    exe = _program("moto_server")
    if exe is None:
        raise Unavailable("moto_server is not installed (pip install 'datamanifest[test]')")
    port = free_port()
    proc = _start([exe, "-H", "127.0.0.1", "-p", str(port)], port, "moto")
    return proc, {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                  "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}, 10.0


@_serving
def gcs():
    """gcp-storage-emulator on 127.0.0.1 with a bucket ``data``: yields the environment
    (``STORAGE_EMULATOR_HOST``; gcsfs's gRPC bucket-type probe, which the emulator does not
    serve, turned off). It serves GCS's JSON API only. Raises :class:`Unavailable` without
    it (the ``test`` extra)."""
    exe = _program("gcp-storage-emulator")
    if exe is None:
        raise Unavailable("gcp-storage-emulator is not installed (the test extra)")
    port = free_port()
    proc = _start([exe, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory",
                   "--default-bucket=data"], port, "gcs")
    return proc, {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
                  "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}, 5.0


#: Azurite's documented development account (a public, fixed test credential)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def azurite_connection_string(port: int) -> str:
    """The connection string of Azurite's development account on 127.0.0.1:``port``."""
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")


@_serving
def azurite(where: str | Path | None = None):
    """Azurite (the Azure Blob Storage emulator, from npm) on 127.0.0.1 with a container
    ``data``: yields ``(environment, port)``, the environment carrying
    ``AZURE_STORAGE_CONNECTION_STRING``. ``where``: its data folder (default: a new
    temporary one). Looked for on PATH and in ``.cache/azurite`` (where ``make test``
    installs it). Raises :class:`Unavailable` without it or without node."""
    import shutil
    import tempfile

    exe = _program("azurite-blob", Path.cwd() / ".cache/azurite/node_modules/.bin/azurite-blob",
                   Path(__file__).resolve().parents[3] / ".cache/azurite/node_modules/.bin"
                   / "azurite-blob")
    if exe is None or shutil.which("node") is None:
        raise Unavailable("Azurite is not installed (make test installs it with npm)")
    port = free_port()
    where = where or tempfile.mkdtemp(prefix="dm-azurite-")
    proc = _start([exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
                   str(where), "--silent", "--skipApiVersionCheck", "--loose"], port, "azurite")
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(port)}
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]) \
        .create_container("data")
    return proc, (env, port), 0.5  # its data is a throw-away folder


SSHD = "/usr/sbin/sshd"


@_serving
def sshd(folder: str | Path):
    """An OpenSSH server on 127.0.0.1 (key login only; keys and configuration in
    ``folder``): yields ``{"port", "user", "dir", "ssh"}``, ``ssh`` being the command for
    ``DATAMANIFEST_SSH`` that logs in to it. Raises :class:`Unavailable` without sshd,
    ssh-keygen or rsync (Debian: openssh-server, rsync)."""
    import shutil
    import subprocess

    if not (os.access(SSHD, os.X_OK) and shutil.which("rsync") and shutil.which("ssh-keygen")):
        raise Unavailable("sshd or rsync missing (make test installs them as root)")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        if not (d / name).exists():
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
    if not wait_for_port(port):
        proc.kill()
        raise RuntimeError(f"sshd did not start on 127.0.0.1:{port}")
    ssh = (f"ssh -i {d / 'user_key'} -o UserKnownHostsFile={d / 'known_hosts'} "
           "-o StrictHostKeyChecking=accept-new")
    return proc, {"port": port, "user": os.environ.get("USER") or "root", "dir": d,
                  "ssh": ssh}, 10.0
