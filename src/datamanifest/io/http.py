"""The HTTP family: one httpx client configuration for every request (FET-010, FET-012,
FET-013, FET-017, FET-018, CHK-012).

httpx is kept here, rather than obstore's HTTP store, for what fetching over HTTP must do:
``~/.netrc`` and user-information credentials that never follow a redirect to another
origin, a redirect policy refusing other schemes (DM089), resumes with ``Range`` and
``If-Range``, retries honouring ``Retry-After``, a socket that another thread can shut down
(FET-023) and TLS verification switched by ``DATAMANIFEST_TLS_VERIFY`` only
(``design/2026-12-03-package-map.md``). :func:`new_client` is the one place a client is
built; :func:`client` is this thread's shared one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

from .._version import __version__
from ..errors import DataManifestError, FetchError
from .base import Identity, Stream, coalesce, split_blocks

USER_AGENT = f"datamanifest/{__version__} (+https://github.com/datamanifest)"
#: ranges closer than this are read as one (bytes): less than another request costs
REMOTE_GAP = 1024 * 1024

_local = threading.local()

if hasattr(os, "register_at_fork"):
    # a forked fetch worker opens its own connections; the parent's pooled ones stay its own
    os.register_at_fork(after_in_child=lambda: _local.__dict__.pop("client", None))


def netrc_auth():
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


_SSL_CONTEXTS: dict = {}


def ssl_context(verify: bool):
    """The TLS context of clients that verify (or not), built once per process and per
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` (httpx's ``create_ssl_context`` with the environment:
    certifi's authorities unless those name others). Loading the authorities costs ~25 ms;
    forked fetch workers inherit the parent's context instead of each loading them."""
    key = (verify, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    found = _SSL_CONTEXTS.get(key)
    if found is None:
        import httpx

        found = _SSL_CONTEXTS[key] = httpx.create_ssl_context(verify=verify, trust_env=True)
    return found


def warm() -> None:
    """Import what a first request imports (httpcore, h11, certifi) and build the TLS
    context, once, in a process about to fork fetch workers (each would otherwise pay
    ~0.1 s of CPU for it)."""
    new_client().close()


def new_client(*, read_timeout: float = 30.0, verify: bool | None = None):
    """An httpx client as every request of datamanifest makes it: redirects followed (httpx
    drops ``Authorization`` on a change of origin, FET-018), TLS verified per
    :func:`tls_verify` unless ``verify`` says otherwise, our User-Agent, the proxies of the
    environment, netrc credentials. ``read_timeout`` in seconds (connect: 10 s)."""
    import httpx

    return httpx.Client(
        follow_redirects=True,
        verify=ssl_context(tls_verify() if verify is None else verify),
        timeout=httpx.Timeout(read_timeout, connect=10.0),
        headers={"User-Agent": USER_AGENT},
        trust_env=True,
        auth=netrc_auth(),
    )


def client():
    """This thread's client (made on first use; a forked child makes its own)."""
    found = getattr(_local, "client", None)
    if found is None:
        found = _local.client = new_client()
    return found


def transport_error(uri: str, e: Exception) -> FetchError | None:
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


def pause(seconds: float) -> None:
    """Sleep between retries, ending early (DM172) when the run is stopped (FET-023)."""
    from ..interrupt import current

    stop = current()
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)
        stop.check()


def retry_after(value: str | None, default: float) -> float:
    """Seconds to wait before a retry: a ``Retry-After`` in seconds (at most 60), else
    ``default``."""
    if value and value.strip().isdigit():
        return min(float(value), 60.0)
    return default


class Interrupted(FetchError):
    """A body cut midway (DM071); ``received`` bytes and the response's ``validator`` (its ETag,
    else Last-Modified) allow a resume with If-Range (FET-012)."""

    code = "DM071"

    def __init__(self, message: str, received: int, validator: str | None) -> None:
        self.received = received
        self.validator = validator
        super().__init__(message, hint="run the fetch again: it resumes where it stopped")


class HTTPStream(Stream):
    """A streaming GET (FET-010). Connection errors and 429/5xx are retried before any byte is
    read.

    ``resume_from`` (bytes) with ``validator`` asks for the rest of a response with
    ``Range`` and ``If-Range`` (FET-012); ``resumed`` tells whether the server agreed (206).
    Raises FetchError: DM071 (unreachable, 401/403, other 4xx/5xx), DM074 (404), DM088 (a
    certificate that does not verify), DM089 (a redirect to another scheme).
    """

    RETRIES = 3

    def __init__(self, uri: str, resume_from: int = 0, validator: str | None = None) -> None:
        import httpx

        self.uri = uri
        self.resumed = False
        session = client()
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
                req = session.build_request("GET", uri, headers=headers)
                resp = session.send(req, stream=True, auth=auth)
            except httpx.TransportError as e:
                fatal = transport_error(uri, e)
                if fatal is not None:
                    raise fatal from e
                if attempt < self.RETRIES:
                    pause(delay)
                    delay *= 2
                    continue
                raise FetchError(f"cannot reach {uri}: {e}", code="DM071",
                                 hint="check the network and the URL") from e
            if resp.status_code in (429, 500, 502, 503, 504) and attempt < self.RETRIES:
                wait = retry_after(resp.headers.get("Retry-After"), delay)
                resp.close()
                pause(wait)
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


class HTTPRanges:
    """An http(s) resource read with Range requests (one per coalesced block, up to
    ``jobs`` at once), through a client of :func:`new_client` (netrc credentials as for
    fetching). Errors are ``error``: DM071 unreachable or no range support, DM074 absent."""

    def __init__(self, url: str, jobs: int = 8,
                 error: type[DataManifestError] = DataManifestError) -> None:
        self.url = url
        self.jobs = jobs
        self.error = error
        self.client = new_client(read_timeout=60.0)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _send(self, method: str, headers: dict | None = None):
        """One request; a connection that fails is DM071 (FET-010)."""
        import httpx

        try:
            return self.client.request(method, self.url, headers=headers)
        except httpx.HTTPError as e:
            raise self.error(f"source {self.url}: {type(e).__name__}: {e}", code="DM071",
                             hint="check the network and the URL") from e

    def identity(self) -> Identity:
        r = self._send("HEAD")
        if r.status_code == 404:
            raise self.error(f"source {self.url} is not found (HTTP 404)", code="DM074")
        if r.status_code >= 400:
            raise self.error(f"source {self.url}: HTTP {r.status_code}", code="DM071")
        size = int(r.headers.get("content-length", -1))
        modified = r.headers.get("last-modified")
        return Identity(size, r.headers.get("etag"), http_date(modified) if modified else None)

    def _get(self, start: int, end: int) -> bytes:
        r = self._send("GET", {"Range": f"bytes={start}-{end - 1}"})
        if r.status_code == 200 and start == 0 and len(r.content) >= end:
            return r.content[:end]
        if r.status_code != 206:
            raise self.error(f"source {self.url}: HTTP {r.status_code} to a range request",
                             code="DM071", hint="the server must answer Range requests")
        return r.content

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list:
        blocks = coalesce(ranges, REMOTE_GAP)

        def fetch(bs):
            if len(bs) == 1:
                return [self._get(bs[0][0], bs[0][1])]
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="dm-range")
            return list(self._pool.map(lambda b: self._get(b[0], b[1]), bs))
        return split_blocks(ranges, blocks, fetch, self.error)

    def close(self) -> None:
        self.client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


def http_date(value: str) -> str | None:
    """An HTTP date (``Last-Modified``) as RFC 3339 UTC, or None when malformed."""
    from email.utils import parsedate_to_datetime

    from .base import rfc3339_of

    try:
        return rfc3339_of(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None


def probe(uri: str) -> dict:
    """One HEAD request (``fetch --dry-run``): ``{"size", "reachable", "problem"}``; never
    raises."""
    import httpx

    try:
        resp = client().head(uri)
    except httpx.HTTPError as e:
        fatal = transport_error(uri, e)
        return {"size": None, "reachable": False,
                "problem": fatal.message if fatal is not None else str(e) or type(e).__name__}
    if resp.status_code >= 400:
        return {"size": None, "reachable": resp.status_code not in (404, 410),
                "problem": f"HTTP {resp.status_code} {resp.reason_phrase}"}
    length = resp.headers.get("Content-Length")
    return {"size": int(length) if length and length.isdigit() else None,
            "reachable": True, "problem": None}
