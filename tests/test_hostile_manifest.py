"""A manifest from a stranger cannot hurt you (issue 21; SCHEMA.md §27, STO-018, SEC-004).

Each case is a hostile manifest in a cloned-looking project, fetched as its user would:
with a decoy home folder as HOME (a .bashrc, SSH keys, a shell profile), a real loopback
HTTP server serving "evil", real processes. Each is refused or contained with a coded
error, and the decoy home is hashed before and after: nothing in it changes, and nothing
appears outside the project (no PWNED file anywhere in the sandbox)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from .conftest import run_cli

HEADER = "[_META]\nschema = 1\n\n"


def _tree_hash(root: Path) -> str:
    """SHA-256 over every path below ``root``: its type, mode, bytes or link target."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + oct(st.st_mode).encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
        h.update(b"\n")
    return h.hexdigest()


class Sandbox:
    def __init__(self, root: Path, http, served: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.project = root / "clone"
        self.http = http
        self.served = served
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".bashrc").write_text("ORIGINAL\n")
        (self.home / ".profile").write_text("# profile\n")
        (self.home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA... me\n")
        (self.home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
        self.project.mkdir()
        (served / "evil").write_bytes(b"evil\n")
        # the tool's own folders are the user's, but not in the decoy home
        xdg = root / "xdg"
        self.env = {"HOME": str(self.home), "XDG_CONFIG_HOME": str(xdg / "config"),
                    "XDG_DATA_HOME": str(xdg / "data"), "XDG_CACHE_HOME": str(xdg / "cache"),
                    "DATAMANIFEST_TRUST": ""}
        self.before = _tree_hash(self.home)

    def manifest(self, body: str) -> None:
        (self.project / "datamanifest.toml").write_text(HEADER + body.replace(
            "{evil}", self.http.url("evil")))

    def run(self, *args: str, trusted: bool = False):
        env = dict(self.env, DATAMANIFEST_TRUST="1" if trusted else "")
        return run_cli(*args, cwd=self.project, env=env)

    def assert_untouched(self) -> None:
        assert _tree_hash(self.home) == self.before, "the decoy home changed"
        assert (self.home / ".bashrc").read_text() == "ORIGINAL\n"
        pwned = [p for p in self.root.rglob("*") if "PWNED" in p.name]
        assert pwned == [], pwned


@pytest.fixture
def box(tmp_path: Path, http, served: Path) -> Sandbox:
    return Sandbox(tmp_path, http, served)


def _refused(proc, code: str) -> None:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert code in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


SHELL_ESCAPE = 'shell = "sh -c \\"touch ../PWNED; echo hi > $download_path\\""\n'


@pytest.mark.covers("TRU-005", "SEC-004", "STO-004")
@pytest.mark.parametrize("body,code", [
    # code the manifest names
    ('[x]\nkey = "x.txt"\n' + SHELL_ESCAPE, "DM180"),
    ('[x]\n' + SHELL_ESCAPE, "DM180"),  # without a key, as the issue found it
    ('[x]\nkey = "x.txt"\nshell = "sh -c \'echo pwned > ~/.bashrc; touch ~/PWNED\'"\n', "DM180"),
    ('[x]\nkey = "x.txt"\nfetcher = "os:system"\n', "DM180"),
    ('[x]\nkey = "x.txt"\n\n[x._LANG.shell]\nfetcher = "touch ../PWNED"\n', "DM180"),
    ('[j]\nkey = "j.txt"\n\n[j._LANG.julia]\nfetcher = "run(`touch PWNED`)"\n', "DM180"),
    # writes outside the project
    ('[_STORAGE]\ndatasets_dir = "/"\n\n[p]\nuri = "{evil}"\nkey = "PWNED"\n', "DM180"),
    ('[_STORAGE]\ndatasets_dir = "~"\n\n[rc]\nuri = "{evil}"\nkey = ".bashrc"\n', "DM180"),
    ('[_STORAGE]\ndatasets_dir = "$HOME"\n\n[rc]\nuri = "{evil}"\nkey = ".profile"\n', "DM180"),
    ('[_STORAGE]\ndatasets_dir = "../home/.ssh"\n\n[k]\nuri = "{evil}"\nkey = "authorized_keys"\n',
     "DM180"),
    ('[rc]\nuri = "{evil}"\nstorage_path = "~/.bashrc"\n', "DM180"),
    ('[_STORAGE]\ndatasets_dir = ".git"\n\n[h]\nuri = "{evil}"\nkey = "hooks/post-checkout"\n',
     "DM180"),
    ('[_STORAGE]\nproject = "../../../home/.ssh"\n\n[a]\nuri = "{evil}"\nkey = "a"\n', None),
    # reads outside the project: a pool named by the manifest
    ('[_STORAGE]\ndatasets_pools = ["~/.ssh"]\n\n[k]\nuri = "{evil}"\nkey = "id_ed25519"\n'
     'checksum = "sha256:' + "0" * 64 + '"\n', "DM180"),
    # keys and paths that would shadow a marker
    ('[m]\nuri = "{evil}"\nkey = "data.csv.complete"\n', "DM030"),
    ('[m]\nuri = "{evil}"\nstorage_path = "data.csv.complete"\n', "DM032"),
    # an unbounded archive
    ('[_STORAGE]\nmax_extract_bytes = inf\n\n[z]\nuri = "{evil}"\nkey = "z.tar.gz"\n'
     'extract = true\n', "DM061"),
    # credentials in a URI are never shown
    ('[m]\nuri = "{missing}"\n', "DM074"),
    # a source that would be an option of ssh (SEC-004)
    ('[s]\nuri = "ssh://-oProxyCommand=touch%20PWNED/x"\nkey = "s"\n', "DM072"),
    ('[g]\nuri = "git+ssh://-oProxyCommand=touch%20PWNED/r.git"\nkey = "g"\n', "DM072"),
], ids=["shell", "shell-no-key", "shell-escapes-download-path", "python-binding",
        "legacy-shell", "peer-fetcher", "store-at-root", "store-at-home", "store-at-HOME",
        "store-climbs-out", "exact-path-in-home", "store-in-git", "project-name-climbs",
        "pool-in-home", "key-shadows-marker", "path-shadows-marker", "extract-unbounded",
        "password-in-uri", "ssh-option-host", "git-option-host"])
def test_a_hostile_manifest_is_refused_and_nothing_outside_changes(box: Sandbox, body: str,
                                                                   code: str | None):
    missing = box.http.url("missing").replace("http://", "http://alice:s3cret@")
    box.manifest(body.replace("{missing}", missing))
    proc = box.run("fetch")
    if code is None:  # the datasets go to the project's store; nothing leaves the project
        assert proc.returncode == 0, proc.stderr
    else:
        _refused(proc, code)
    assert "s3cret" not in proc.stdout + proc.stderr
    box.assert_untouched()


@pytest.mark.covers("STO-018")
@pytest.mark.parametrize("body", [
    '[_STORAGE]\ndatasets_dir = "~"\n\n[rc]\nuri = "{evil}"\nkey = ".bashrc"\n',
    '[rc]\nuri = "{evil}"\nstorage_path = "~/.bashrc"\n',
    '[_STORAGE]\ndatasets_dir = "~"\n\n[k]\nuri = "{evil}"\nkey = ".ssh/authorized_keys"\n',
], ids=["keyed", "exact", "nested"])
def test_even_a_trusted_manifest_never_replaces_a_users_file(box: Sandbox, body: str):
    """Trusted (CI style), the writes are allowed but a file this tool did not publish is
    still refused (DM182), byte for byte as it was."""
    box.manifest(body)
    _refused(box.run("fetch", trusted=True), "DM182")
    box.assert_untouched()


def test_a_store_link_leading_into_home_is_judged_where_it_leads(box: Sandbox):
    (box.project / "store").symlink_to(box.home, target_is_directory=True)
    box.manifest('[_STORAGE]\ndatasets_dir = "store"\n\n[rc]\nuri = "{evil}"\nkey = ".bashrc"\n')
    proc = box.run("fetch")
    _refused(proc, "DM180")
    assert str(box.home / ".bashrc") in proc.stderr
    _refused(box.run("fetch", trusted=True), "DM182")  # and then never replaced
    box.assert_untouched()


def test_a_bomb_with_the_bound_raised_by_the_manifest(box: Sandbox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 50_000_000
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    (box.served / "bomb.tar.gz").write_bytes(buf.getvalue())
    url = box.http.url("bomb.tar.gz")
    box.manifest(f'[_STORAGE]\ndatasets_dir = "store"\nmax_extract_bytes = 18446744073709551615\n\n'
                 f'[z]\nuri = "{url}"\nextract = true\n')
    proc = box.run("fetch")
    _refused(proc, "DM180")
    assert "max_extract_bytes" in proc.stderr
    assert not (box.project / "store").exists()
    # the user's own bound still holds for a trusted manifest that does not raise it
    box.manifest(f'[_STORAGE]\ndatasets_dir = "store"\n\n[z]\nuri = "{url}"\nextract = true\n')
    proc = run_cli("fetch", cwd=box.project,
                   env=dict(box.env, DATAMANIFEST_MAX_EXTRACT_BYTES="1000000"))
    _refused(proc, "DM095")
    box.assert_untouched()


def test_a_committed_checkout_config_pointing_home(box: Sandbox):
    box.manifest('[rc]\nuri = "{evil}"\nkey = ".bashrc"\n')
    (box.project / ".datamanifest").mkdir()
    (box.project / ".datamanifest" / "config.toml").write_text('datasets_dir = "~"\n')
    _refused(box.run("fetch"), "DM180")
    box.assert_untouched()
