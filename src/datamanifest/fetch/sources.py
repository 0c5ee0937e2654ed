"""Source schemes behind one small interface (SCHEMA.md §11.1, FET-001).

A source turns a URI into a :class:`Download`: a context manager with
``size`` (bytes, or None when unknown) and ``chunks()`` yielding bytes.
``file://`` URIs and plain paths read local files; ``http(s)://`` streams with
httpx; ``s3://`` with boto3; ``gs://`` and ``az://`` through fsspec (gcsfs, adlfs).
Another scheme is error DM072 naming it (never a silent skip).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .._version import __version__
from ..errors import FetchError
from ..optional import need
from ..interrupt import run_child

CHUNK = 1024 * 1024  # bytes per read from local files
USER_AGENT = f"datamanifest/{__version__} (+https://github.com/datamanifest)"


class Download:
    """An open source of bytes. ``size`` in bytes or None; iterate ``chunks()`` once."""

    size: int | None = None

    def chunks(self) -> Iterator[bytes]:  # pragma: no cover - interface
        raise NotImplementedError

    def __enter__(self) -> "Download":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """Wake a reader blocked in :meth:`chunks` from another thread (FET-023); the reader
        then ends with an error. Local reads never block for long: nothing to do."""


def _pause(seconds: float) -> None:
    """Sleep between retries, ending early (DM172) when the run is stopped (FET-023)."""
    from ..interrupt import current

    stop = current()
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)
        stop.check()


class FileDownload(Download):
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.f = open(path, "rb")
        except FileNotFoundError as e:
            raise FetchError(f"source file {path} does not exist", code="DM074",
                             hint="check the uri; relative paths start at the manifest's folder") from e
        except IsADirectoryError as e:
            raise FetchError(f"source {path} is a directory", code="DM074",
                             hint="point uri at a file, or use uris for several files") from e
        except OSError as e:
            raise FetchError(f"cannot read {path}: {e.strerror}", code="DM074") from e
        self.size = os.fstat(self.f.fileno()).st_size

    def chunks(self) -> Iterator[bytes]:
        read = self.f.read
        while chunk := read(CHUNK):
            yield chunk

    def close(self) -> None:
        self.f.close()


def local_path(uri: str, base: Path) -> Path:
    """The local path of a ``file://`` URI or plain path; relative to ``base`` (FET-011)."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    p = Path(os.path.expanduser(uri))
    return p if p.is_absolute() else base / p


_local = threading.local()

if hasattr(os, "register_at_fork"):
    # a forked fetch worker opens its own connections; the parent's pooled ones stay its own
    os.register_at_fork(after_in_child=lambda: _local.__dict__.pop("client", None))


def _netrc_auth():
    """httpx's NetRCAuth when ``$NETRC`` or ``~/.netrc`` exists (FET-013), else None."""
    import httpx

    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not os.path.isfile(path):
        return None
    try:
        return httpx.NetRCAuth(path)
    except Exception:  # a malformed netrc must not break unauthenticated downloads
        return None


def tls_verify() -> bool:
    """FET-017: TLS certificates are verified unless ``DATAMANIFEST_TLS_VERIFY`` is a false
    value (``0``, ``false``, ``no``, ``off``; ``fetch --insecure`` sets it). Never read from
    a manifest. Extra certificate authorities come from ``SSL_CERT_FILE``/``SSL_CERT_DIR``."""
    return os.environ.get("DATAMANIFEST_TLS_VERIFY", "1").strip().lower() not in (
        "0", "false", "no", "off")


def _transport_error(uri: str, e: Exception) -> FetchError | None:
    """The errors no retry can cure: a certificate that does not verify (DM088) and a
    redirect to a scheme other than http(s) (DM089). None for anything else."""
    import httpx

    text = str(e)
    if isinstance(e, httpx.UnsupportedProtocol):
        return FetchError(f"{uri}: refused a redirect to another scheme ({text})", code="DM089",
                          hint="an HTTP source may only redirect to http:// or https:// "
                               "(FET-018); ask the server's owner, or use the final URL")
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return FetchError(f"{uri}: the server's TLS certificate could not be verified ({text})",
                          code="DM088",
                          hint="if you trust this server, add its certificate authority with "
                               "SSL_CERT_FILE=<file.pem>, or skip verification once with "
                               "`datamanifest fetch --insecure` (checksums are still verified)")
    return None


def _client():
    import httpx

    client = getattr(_local, "client", None)
    if client is None:
        client = httpx.Client(
            follow_redirects=True,  # httpx drops Authorization on a change of origin (FET-018)
            verify=tls_verify(),
            timeout=httpx.Timeout(30.0, connect=10.0),
            headers={"User-Agent": USER_AGENT},
            trust_env=True,
            auth=_netrc_auth(),
        )
        _local.client = client
    return client


class Interrupted(FetchError):
    """A body cut midway (DM071); ``received`` bytes and the response's ``validator`` (its ETag,
    else Last-Modified) allow a resume with If-Range (FET-012)."""

    code = "DM071"

    def __init__(self, message: str, received: int, validator: str | None) -> None:
        self.received = received
        self.validator = validator
        super().__init__(message, hint="run the fetch again: it resumes where it stopped")


class HTTPDownload(Download):
    """A streaming GET (FET-010). Connection errors and 429/5xx are retried before any byte is read.

    ``resume_from`` (bytes) with ``validator`` asks for the rest of a response with
    ``Range`` and ``If-Range`` (FET-012); ``resumed`` tells whether the server agreed (206).
    """

    RETRIES = 3

    def __init__(self, uri: str, resume_from: int = 0, validator: str | None = None) -> None:
        import httpx

        self.uri = uri
        self.resumed = False
        client = _client()
        delay = 0.5
        headers = {}
        if resume_from and validator:
            headers = {"Range": f"bytes={resume_from}-", "If-Range": validator}
        parts = urlsplit(uri)
        # FET-013: user information in the URI is basic authentication for this origin
        # (httpx drops it on a redirect to another origin, FET-018); it outranks netrc
        auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or "")) \
            if parts.username or parts.password else httpx.USE_CLIENT_DEFAULT
        for attempt in range(self.RETRIES + 1):
            try:
                req = client.build_request("GET", uri, headers=headers)
                resp = client.send(req, stream=True, auth=auth)
            except httpx.TransportError as e:
                fatal = _transport_error(uri, e)
                if fatal is not None:
                    raise fatal from e
                if attempt < self.RETRIES:
                    _pause(delay)
                    delay *= 2
                    continue
                raise FetchError(f"cannot reach {uri}: {e}", code="DM071",
                                 hint="check the network and the URL") from e
            if resp.status_code in (429, 500, 502, 503, 504) and attempt < self.RETRIES:
                wait = _retry_after(resp.headers.get("Retry-After"), delay)
                resp.close()
                _pause(wait)
                delay *= 2
                continue
            break
        if resp.status_code in (401, 403):
            resp.close()
            raise FetchError(f"{uri}: HTTP {resp.status_code} {resp.reason_phrase}", code="DM071",
                             hint="credentials for this host go in ~/.netrc (or $NETRC)")
        if resp.status_code == 404:
            resp.close()
            raise FetchError(f"{uri}: HTTP 404 Not Found", code="DM074",
                             hint="check the uri in the manifest")
        if resp.status_code >= 400:
            resp.close()
            raise FetchError(f"{uri}: HTTP {resp.status_code} {resp.reason_phrase}", code="DM071")
        self.resp = resp
        self.validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        if resp.status_code == 206 and headers:
            self.resumed = True
            self.validator = validator
        length = resp.headers.get("Content-Length")
        encoded = resp.headers.get("Content-Encoding", "identity") not in ("identity", "")
        self.size = int(length) if length and length.isdigit() and not encoded else None

    def chunks(self) -> Iterator[bytes]:
        import httpx

        got = 0
        try:
            for chunk in self.resp.iter_bytes():
                got += len(chunk)
                yield chunk
        except httpx.HTTPError as e:
            raise Interrupted(f"{self.uri}: download interrupted after {got} bytes: {e}", got,
                              self.validator) from e
        if self.size is not None and got != self.size:
            raise Interrupted(f"{self.uri}: received {got} of {self.size} bytes", got,
                              self.validator)

    def close(self) -> None:
        self.resp.close()

    def abort(self) -> None:
        """Shut the response's socket down (both ways), so that a read blocked in another
        thread returns at once; :meth:`chunks` then raises :class:`Interrupted` with the
        validator (FET-023)."""
        import socket

        stream = self.resp.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:  # the plain socket's shutdown, also under TLS: no TLS close is attempted
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def _retry_after(value: str | None, default: float) -> float:
    if value and value.strip().isdigit():
        return min(float(value), 60.0)
    return default


class S3Download(Download):
    """A streaming GET of ``s3://bucket/key`` through boto3 (FET-001; endpoint and credentials
    from the usual AWS settings such as ``AWS_ENDPOINT_URL``)."""

    def __init__(self, uri: str) -> None:
        boto3 = need("boto3", extra="s3", feature=f"fetching {uri}")
        self.errors = botocore = need("botocore.exceptions", extra="s3", feature=f"fetching {uri}")
        parts = urlsplit(uri)
        self.uri = uri
        try:
            obj = boto3.client("s3").get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))
        except botocore.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            raise FetchError(f"{uri}: {code or e}", code="DM074" if code in (
                "NoSuchKey", "NoSuchBucket", "404") else "DM071") from e
        except botocore.BotoCoreError as e:
            raise FetchError(f"{uri}: {e}", code="DM071") from e
        self.body = obj["Body"]
        self.size = obj.get("ContentLength")

    def chunks(self) -> Iterator[bytes]:
        got = 0
        try:
            for chunk in self.body.iter_chunks(CHUNK):
                got += len(chunk)
                yield chunk
        except (self.errors.BotoCoreError, OSError) as e:  # a connection cut midway
            raise FetchError(f"{self.uri}: download interrupted after {got} bytes: {e}",
                             code="DM071", hint="run the fetch again") from e
        if self.size is not None and got != self.size:
            raise FetchError(f"{self.uri}: received {got} of {self.size} bytes", code="DM071",
                             hint="run the fetch again")

    def close(self) -> None:
        self.body.close()


def is_git(uri: str) -> bool:
    """True for git sources (FET-014); see :func:`datamanifest.spec.keys.is_git_uri`."""
    from ..spec.keys import is_git_uri

    return is_git_uri(uri)


def git_clone(uri: str, dest: Path, branch: str = "", base: Path | None = None) -> None:
    """Shallow-clone ``uri`` (at ``branch``, a branch or tag) into ``dest`` (FET-014).

    Raises FetchError DM071 when git fails (unreachable, no such branch), DM072 without git.
    """
    import shutil
    import subprocess

    url = uri
    if "://" in url:
        bare = url[4:] if url.startswith("git+") else url
        _refuse_option_like(uri, urlsplit(bare).hostname, urlsplit(bare).username)
    git = shutil.which("git")
    if git is None:
        raise FetchError(f"{uri}: git sources need the git program", code="DM072",
                         hint="install git")
    if url.startswith("git+"):
        url = url[4:]
    elif url.startswith("ssh+git://"):
        url = "ssh://" + url[len("ssh+git://"):]
    if scheme_of(url) == "file" and "://" not in url:
        p = Path(url)
        url = str(p if p.is_absolute() else (base or Path.cwd()) / p)
    cmd = [git, "-c", "advice.detachedHead=false", "clone", "--quiet", "--depth", "1"]
    if branch:
        cmd += ["--branch", branch]
    if url.startswith(("/", "file:")):
        cmd += ["--no-local"]  # a real (shallow) clone, not hard links into the source
    cmd += ["--", url, str(dest)]  # SEC-004: the URI is never an option
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    proc = run_child(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise FetchError(f"{uri}: git clone failed: {tail}", code="DM071",
                         hint="check the URL and the branch or tag")


SSH_SCHEMES = ("ssh", "rsync", "sshfs")


def _refuse_option_like(uri: str, host: str | None, user: str | None) -> None:
    """SEC-004: a host or user name that starts with ``-`` would reach ssh as an option
    (``-oProxyCommand=...`` runs a command): DM072."""
    for part in (host, user):
        if part and part.startswith("-"):
            from ..spec.secrets import redact_uri

            raise FetchError(f"{redact_uri(uri)}: a host or user name starting with '-' is "
                             "refused (it would be read as an ssh option)", code="DM072",
                             hint="check the URI; no real host name starts with '-'")


def is_rsync_folder(uri: str) -> bool:
    """An ssh/rsync/sshfs URI whose path ends in '/' names a folder (FET-015)."""
    return urlsplit(uri).path.endswith("/")


def rsync_copy(uri: str, dest: Path) -> None:
    """Copy ``[user@]host[:port]/path`` from an ssh/rsync/sshfs URI into ``dest`` with rsync over
    SSH (FET-015). The SSH command is ``$DATAMANIFEST_SSH`` or ``ssh``; keys and host keys come
    from the user's SSH configuration. Raises FetchError DM071 (DM072 without rsync)."""
    import shlex
    import shutil
    import subprocess

    parts = urlsplit(uri)
    _refuse_option_like(uri, parts.hostname, parts.username)
    rsync = shutil.which("rsync")
    if rsync is None:
        raise FetchError(f"{uri}: ssh/rsync sources need the rsync program", code="DM072",
                         hint="install rsync (and an SSH client)")
    ssh = shlex.split(os.environ.get("DATAMANIFEST_SSH", "ssh")) + ["-o", "BatchMode=yes"]
    if parts.port:
        ssh += ["-p", str(parts.port)]
    remote = f"{parts.username + '@' if parts.username else ''}{parts.hostname}:{unquote(parts.path)}"
    # SEC-004: after "--", the source is never read as one of rsync's options
    cmd = [rsync, "-a", "--protect-args", "-e", shlex.join(ssh), "--", remote, str(dest)]
    if is_rsync_folder(uri):
        dest.mkdir(parents=True, exist_ok=True)
        cmd[-1] = str(dest) + "/"
    proc = run_child(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        code = "DM074" if "No such file" in proc.stderr else "DM071"
        raise FetchError(f"{uri}: rsync over ssh failed: {tail}", code=code,
                         hint="check the host, the path and your SSH keys (DATAMANIFEST_SSH)")


#: scheme -> hint naming what would add it (FET-001)
_PLANNED = {
    "ftp": "ftp sources are not supported by this version",
}

#: object-store schemes read through fsspec (FET-016) -> (extra, fsspec implementation package)
FSSPEC_SCHEMES = {
    "gs": ("gs", "gcsfs"),
    "gcs": ("gs", "gcsfs"),
    "az": ("az", "adlfs"),
    "abfs": ("az", "adlfs"),
}

#: bytes per ranged read from an object store
OBJECT_BLOCK = 8 * 1024 * 1024


def _object_store_options(scheme: str) -> dict:
    """fsspec storage options beyond each library's own settings.

    An emulator named by ``STORAGE_EMULATOR_HOST`` checks no credentials, so without
    ``GOOGLE_APPLICATION_CREDENTIALS`` gcsfs is told to send none instead of probing the
    cloud's metadata server (which waits out its timeouts off the cloud).
    """
    if FSSPEC_SCHEMES[scheme][0] == "gs" and os.environ.get("STORAGE_EMULATOR_HOST") \
            and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return {"token": "anon"}
    return {}


class ObjectStoreDownload(Download):
    """A streaming read of ``gs://bucket/key`` or ``az://container/path`` through fsspec (FET-016).

    The endpoint and credentials come from each store's usual settings (for example
    ``STORAGE_EMULATOR_HOST`` / ``GOOGLE_APPLICATION_CREDENTIALS`` for gcsfs,
    ``AZURE_STORAGE_CONNECTION_STRING`` or ``AZURE_STORAGE_ACCOUNT_NAME`` for adlfs), never
    from the manifest. ``size`` is the object's size in bytes. Raises FetchError DM072 when the
    scheme's fsspec implementation is not installed (naming the extra), DM074 for a missing
    object, DM071 for any other failure or a body cut short.
    """

    def __init__(self, uri: str) -> None:
        scheme = scheme_of(uri)
        extra, package = FSSPEC_SCHEMES[scheme]
        self.uri = uri
        fsspec = need("fsspec", extra=extra, feature=f"fetching {uri}")
        need(package, extra=extra, feature=f"fetching {uri}")
        try:
            fs, path = fsspec.core.url_to_fs(uri, **_object_store_options(scheme))
        except Exception as e:  # bad credentials settings, malformed URI
            raise FetchError(f"{uri}: cannot open the object store: {e}", code="DM071",
                             hint="check the store's endpoint and credential settings") from e
        try:
            info = fs.info(path)
            if info.get("type") == "directory":
                raise IsADirectoryError(path)
            self.f = fs.open(path, "rb", block_size=OBJECT_BLOCK, cache_type="none")
        except FileNotFoundError as e:
            raise FetchError(f"{uri}: no such object", code="DM074",
                             hint="check the bucket or container and the key") from e
        except IsADirectoryError as e:
            raise FetchError(f"{uri} is a prefix, not an object", code="DM074",
                             hint="point uri at one object, or use uris for several") from e
        except FetchError:
            raise
        except Exception as e:
            raise FetchError(f"{uri}: {type(e).__name__}: {e}", code="DM071",
                             hint="check the store's endpoint and credential settings") from e
        self.size = info.get("size")

    def chunks(self) -> Iterator[bytes]:
        got = 0
        try:
            while chunk := self.f.read(OBJECT_BLOCK):
                got += len(chunk)
                yield chunk
        except Exception as e:  # a cut connection surfaces as the library's own error
            raise FetchError(f"{self.uri}: download interrupted after {got} bytes: "
                             f"{type(e).__name__}: {e}", code="DM071",
                             hint="run the fetch again") from e
        if self.size is not None and got != self.size:
            raise FetchError(f"{self.uri}: received {got} of {self.size} bytes", code="DM071",
                             hint="run the fetch again")

    def close(self) -> None:
        f = getattr(self, "f", None)
        if f is not None:
            f.close()


def scheme_of(uri: str) -> str:
    """``"file"`` for plain paths (including Windows drive paths), else the URI scheme."""
    try:
        s = urlsplit(uri).scheme.lower()
    except ValueError:
        return ""
    return "file" if s in ("", "file") or (len(s) == 1 and uri[1:2] == ":") else s


def open_source(uri: str, base: Path) -> Download:
    """Open ``uri`` for reading (FET-001). Raises FetchError DM072 for an unsupported scheme."""
    scheme = scheme_of(uri)
    if scheme == "file":
        return FileDownload(local_path(uri, base))
    if scheme in ("http", "https"):
        return HTTPDownload(uri)
    if scheme == "s3":
        return S3Download(uri)
    if scheme in FSSPEC_SCHEMES:
        return ObjectStoreDownload(uri)
    raise FetchError(
        f"unsupported URI scheme {scheme!r} in {uri}", code="DM072",
        hint=_PLANNED.get(scheme, "supported: file, http, https, s3, gs, az, git, ssh, rsync, sshfs"),
    )


def probe(uri: str, base: Path) -> dict:
    """What a dry run can learn about a source without reading it (``fetch --dry-run``):
    ``{"size": bytes or None, "reachable": True/False/None, "problem": text or None}``. A
    local file is stat'ed; an http(s) URL gets one HEAD request (its Content-Length);
    other schemes are not contacted (``reachable`` None). Never raises."""
    scheme = scheme_of(uri)
    if scheme == "file":
        p = local_path(uri, base)
        try:
            st = p.stat()
        except OSError as e:
            return {"size": None, "reachable": False, "problem": e.strerror or str(e)}
        return {"size": st.st_size if p.is_file() else None, "reachable": True, "problem": None}
    if scheme in ("http", "https"):
        import httpx

        try:
            resp = _client().head(uri)
        except httpx.HTTPError as e:
            fatal = _transport_error(uri, e)
            return {"size": None, "reachable": False,
                    "problem": fatal.message if fatal is not None else str(e) or type(e).__name__}
        if resp.status_code >= 400:
            return {"size": None, "reachable": resp.status_code not in (404, 410),
                    "problem": f"HTTP {resp.status_code} {resp.reason_phrase}"}
        length = resp.headers.get("Content-Length")
        return {"size": int(length) if length and length.isdigit() else None,
                "reachable": True, "problem": None}
    return {"size": None, "reachable": None, "problem": None}
