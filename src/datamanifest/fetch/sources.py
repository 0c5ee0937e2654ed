"""The sources that are programs rather than places: git clones and rsync over SSH
(SCHEMA.md FET-014, FET-015). Places (files, http, object stores) are
:mod:`datamanifest.io`.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import FetchError
from ..interrupt import run_child
from ..io.places import scheme_of


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
