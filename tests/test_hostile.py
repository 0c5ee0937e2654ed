"""Hostile inputs (issue 13): each is refused with a coded error, and nothing is written
outside the store. Real archives, a real loopback HTTP(S) server, real processes."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer, self_signed

from .conftest import run_cli, sha256_of, write_manifest


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path below ``root`` with its bytes (files) or link target (links)."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the project and the store that nothing may touch."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim.txt").write_text("precious\n")
    return d


def _tar(members: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("data/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        for m in members:
            info, data = m if isinstance(m, tuple) else (m, None)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _special(name: str, kind) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info


def _zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    """(name, data, unix mode) entries; a symlink is mode S_IFLNK with its target as data."""
    import warnings

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicate name is one of the hostile cases
        zf.writestr("ok.txt", "ok")
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _cases(outside: Path) -> dict[str, tuple[str, bytes]]:
    victim = str(outside / "victim.txt")
    lnk = stat.S_IFLNK | 0o777
    return {
        "tar absolute": ("a.tar.gz", _tar([_file(str(outside / "abs.txt"), b"evil")])),
        "tar dotdot": ("a.tar.gz", _tar([_file("../../evil.txt", b"evil")])),
        "tar symlink out": ("a.tar.gz", _tar([_link("data/l", "../../../outside")])),
        "tar absolute symlink": ("a.tar.gz", _tar([_link("data/l", str(outside))])),
        "tar hardlink out": ("a.tar.gz", _tar([_link("data/h", "../" * 6 + victim[1:],
                                                     tarfile.LNKTYPE)])),
        "tar hardlink absolute": ("a.tar.gz", _tar([_link("data/h", victim, tarfile.LNKTYPE)])),
        "tar char device": ("a.tar.gz", _tar([_special("data/null", tarfile.CHRTYPE)])),
        "tar block device": ("a.tar.gz", _tar([_special("data/sda", tarfile.BLKTYPE)])),
        "tar fifo": ("a.tar.gz", _tar([_special("data/pipe", tarfile.FIFOTYPE)])),
        # each link is inside the folder on its own; together they lead out of it
        "tar symlink chain": ("a.tar.gz", _tar([_link("b", "."), _link("a", "b/b/b/.."),
                                                _file("a/evil.txt", b"evil")])),
        "zip dotdot": ("a.zip", _zip([("../evil.txt", b"evil", 0o644)])),
        "zip absolute": ("a.zip", _zip([(str(outside / "abs.txt"), b"evil", 0o644)])),
        "zip symlink out": ("a.zip", _zip([("l", b"../../outside", lnk)])),
        "zip symlink chain": ("a.zip", _zip([("b", b".", lnk), ("a", b"b/b/b/..", lnk),
                                             ("a/evil.txt", b"evil", 0o644)])),
        "zip write through a link": ("a.zip", _zip([("d", b"sub", lnk), ("d", b"x", 0o644)])),
        "zip fifo": ("a.zip", _zip([("p", b"", stat.S_IFIFO | 0o644)])),
    }


CASES = list(_cases(Path("/x")))


@pytest.mark.covers("FET-020")
@pytest.mark.parametrize("case", CASES)
def test_hostile_archive_is_refused_and_nothing_escapes(http, served, project, outside, case):
    name, blob = _cases(outside)[case]
    (served / name).write_bytes(blob)
    write_manifest(project, f'[arch]\nuri = "{http.url(name)}"\nextract = true\n')
    before = _snapshot(outside)
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DM073" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(outside) == before
    assert not (project.parent / "evil.txt").exists() and not (project / "evil.txt").exists()
    base = project / "store" / "127.0.0.1"
    assert not (base / "a").exists() and not (base / "a.tmp").exists()
    assert not any(p.name == "evil.txt" for p in project.rglob("*"))


@pytest.mark.covers("FET-022")
@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_decompression_bomb_is_refused_by_the_bound(http, served, project, fmt):
    zeros = b"\0" * (64 << 20)  # 64 MiB of zeros: about 64 kB compressed
    if fmt == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("zeros.bin", zeros)
        blob = buf.getvalue()
    else:
        blob = _tar([_file("data/zeros.bin", zeros)])
    assert len(blob) < 1 << 20
    (served / f"bomb.{fmt}").write_bytes(blob)
    manifest = write_manifest(project, f'[bomb]\nuri = "{http.url(f"bomb.{fmt}")}"\n'
                                       f'extract = true\n')
    manifest.write_text(manifest.read_text().replace(
        'datasets_dir = "store"', 'datasets_dir = "store"\nmax_extract_bytes = 10_000_000'))
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM095" in proc.stderr, proc.stderr
    assert "max_extract_bytes" in proc.stderr
    assert not (project / "store" / "127.0.0.1" / "bomb").exists()
    assert not (project / "store" / "127.0.0.1" / "bomb.tmp").exists()
    # the bound is configurable: through the environment rung, the same archive extracts
    proc = run_cli("fetch", cwd=project, env={"DATAMANIFEST_MAX_EXTRACT_BYTES": str(1 << 30)})
    assert proc.returncode == 0, proc.stderr
    assert (project / "store" / "127.0.0.1" / "bomb").is_dir()


def test_a_lying_zip_header_is_still_bounded(tmp_path: Path):
    from datamanifest.errors import FetchError
    from datamanifest.fetch.archive import extract

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\0" * 5000)
        zf.writestr("b.bin", b"\0" * 5000)
    (tmp_path / "z.zip").write_bytes(buf.getvalue())
    with pytest.raises(FetchError) as e:
        extract(tmp_path / "z.zip", "zip", tmp_path / "out", max_bytes=9000)
    assert e.value.code == "DM095"


@pytest.mark.covers("KEY-004", "STO-004")
@pytest.mark.parametrize("body, code", [
    ('[d]\nuri = "http://h.org/x.csv"\nkey = "../../etc/passwd"\n', "DM030"),
    ('[d]\nuri = "http://h.org/x.csv"\nkey = "/etc/passwd"\n', "DM030"),
    ('[d]\nuri = "http://h.org/x.csv"\nkey = "a/\\u0000b"\n', "DM030"),
    ('[d]\nuri = "http://h.org/x.csv"\nkey = "a/x.lock"\n', "DM030"),
    ('[d]\nuri = "http://h.org/x.csv"\nkey = "a/x.complete"\n', "DM030"),
    ('[d]\nuri = "http://h.org/../../x.csv"\n', "DM031"),
    ('[d]\nuri = "http://h.org/x.csv"\nstorage_path = "$datasets_dir/../../x"\n', "DM032"),
    ('[d]\nuri = "http://h.org/x.csv"\nstorage_path = "store/a\\u0000b"\n', "DM032"),
])
def test_unsafe_keys_and_storage_paths_are_refused(project, outside, body, code):
    write_manifest(project, body)
    for args in (["check"], ["fetch"]):
        proc = run_cli(*args, cwd=project)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert code in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (project / "store").exists()


@pytest.mark.covers("STO-014")
@pytest.mark.parametrize("where", ["folder", "staging", "target", "marker"])
def test_a_link_inside_the_store_is_refused(http, served, project, outside, where):
    data = b"data\n" * 100
    (served / "x.bin").write_bytes(data)
    write_manifest(project, f'[x]\nuri = "{http.url("x.bin")}"\n'
                            f'checksum = "sha256:{sha256_of(data)}"\n')
    host = project / "store" / "127.0.0.1"
    if where == "folder":
        (project / "store").mkdir()
        host.symlink_to(outside, target_is_directory=True)
    else:
        host.mkdir(parents=True)
        name = {"staging": "x.bin.tmp", "target": "x.bin", "marker": "x.bin.complete"}[where]
        (host / name).symlink_to(outside / "victim.txt")
    before = _snapshot(outside)
    if where == "folder":  # untrusted, the link's way out is refused first (TRU-004)
        proc = run_cli("fetch", cwd=project)
        assert proc.returncode == 1 and "DM180" in proc.stderr, proc.stderr
        assert _snapshot(outside) == before
    # even for a trusted manifest (STO-014)
    proc = run_cli("fetch", cwd=project, env={"DATAMANIFEST_TRUST": "1"})
    assert proc.returncode == 1 and "DM096" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(outside) == before


def test_a_store_folder_that_is_a_link_is_the_users_choice(http, served, project, tmp_path):
    data = b"elsewhere\n"
    (served / "x.bin").write_bytes(data)
    disk = tmp_path / "bigdisk"
    disk.mkdir()
    (project / "store").symlink_to(disk, target_is_directory=True)
    write_manifest(project, f'[x]\nuri = "{http.url("x.bin")}"\n')
    # a link leading out of the project is judged where it leads (TRU-004): the user who
    # made it trusts the manifest once
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM180" in proc.stderr and str(disk) in proc.stderr
    assert not list(disk.iterdir())
    proc = run_cli("fetch", "--trust", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (disk / "127.0.0.1" / "x.bin").read_bytes() == data


@pytest.mark.covers("SH-003", "SH-007")
def test_shell_template_values_with_shell_syntax_are_never_run(project):
    evil = "x; touch PWNED1 && $(touch PWNED2) `touch PWNED3` | touch PWNED4 > PWNED5"
    write_manifest(project, '[d]\nkey = "d.txt"\nversion = "v1"\n'
                            f'doi = "{evil}"\n'
                            'shell = "sh -c \'printf %s \\"$0\\" > \\"$1\\"\' $doi $download_path"\n')
    proc = run_cli("fetch", cwd=project, env={"DATAMANIFEST_TRUST": "1"})  # the test's own
    assert proc.returncode == 0, proc.stderr
    assert (project / "store" / "d.txt").read_text() == evil
    assert not any(p.name.startswith("PWNED") for p in project.rglob("*"))


def test_an_http_redirect_to_file_is_refused(http, served, project, outside):
    http.redirect["/x.bin"] = f"file://{outside / 'victim.txt'}"
    write_manifest(project, f'[x]\nuri = "{http.url("x.bin")}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM089" in proc.stderr, proc.stderr
    assert not (project / "store" / "127.0.0.1" / "x.bin").exists()
    assert http.hits["/x.bin"] == 1  # refused at once, not retried


@pytest.mark.covers("FET-013", "FET-018")
def test_netrc_credentials_never_follow_a_redirect_to_another_host(http, served, project,
                                                                    tmp_path):
    other_root = tmp_path / "other"
    other_root.mkdir()
    (other_root / "x.bin").write_bytes(b"from the other host\n")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    with LoopbackServer(other_root) as other:
        http.redirect["/x.bin"] = other.url("x.bin")
        write_manifest(project, f'[x]\nuri = "{http.url("x.bin")}"\n')
        proc = run_cli("fetch", cwd=project, env={"NETRC": str(netrc)})
        assert proc.returncode == 0, proc.stderr
        first = [a for p, a in http.authorizations if p == "/x.bin"]
        assert first and first[0] and first[0].startswith("Basic ")  # sent to its own host
        assert [a for _, a in other.authorizations] == [None]  # and not to the other one
    assert (project / "store" / "127.0.0.1" / "x.bin").read_bytes() == b"from the other host\n"


@pytest.fixture
def https(tmp_path: Path):
    root = tmp_path / "tls-served"
    root.mkdir()
    cert, key = self_signed(tmp_path / "tls")
    with LoopbackServer(root, tls=(cert, key)) as srv:
        yield srv, root, cert


@pytest.mark.covers("FET-017")
def test_tls_is_verified_by_default_with_a_clear_error_and_opt_outs(https, project):
    srv, root, cert = https
    data = b"over tls\n"
    (root / "t.bin").write_bytes(data)
    write_manifest(project, f'[t]\nuri = "{srv.url("t.bin")}"\n'
                            f'checksum = "sha256:{sha256_of(data)}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM088" in proc.stderr, proc.stderr
    assert "--insecure" in proc.stderr and "SSL_CERT_FILE" in proc.stderr
    assert "Traceback" not in proc.stderr
    target = project / "store" / "127.0.0.1" / "t.bin"
    assert not target.exists()
    # trusting the certificate's authority, verification passes
    proc = run_cli("fetch", cwd=project, env={"SSL_CERT_FILE": cert})
    assert proc.returncode == 0, proc.stderr
    target.unlink()
    (target.with_name("t.bin.complete")).unlink()
    # the explicit opt-out: the checksum is still verified
    proc = run_cli("fetch", "--insecure", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == data


def test_a_manifest_cannot_switch_tls_verification_off(https, project):
    srv, root, _ = https
    (root / "t.bin").write_bytes(b"x")
    write_manifest(project, f'[t]\nuri = "{srv.url("t.bin")}"\ntls_verify = false\n')
    proc = run_cli("fetch", cwd=project)
    # an unknown field: the dataset is refused before any connection (MAN-011, MAN-012)
    assert proc.returncode == 1 and "DM010" in proc.stderr and "t: refused" in proc.stderr
    # a bare key of [_STORAGE] is a user symbol, not a setting: verification stays on
    m = project / "datamanifest.toml"
    m.write_text(m.read_text().replace('datasets_dir = "store"',
                                       'datasets_dir = "store"\ntls_verify = "0"')
                 .replace("tls_verify = false\n", ""))
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM088" in proc.stderr, proc.stderr
