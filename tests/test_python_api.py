"""The Python surface a notebook imports (issue 20 point 9): ``datamanifest.Project`` with
``list``, ``add``, ``fetch`` (a report by name), ``load``; errors whose text starts with the
real file and position and keep their cause."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest

import datamanifest
from datamanifest.errors import DataManifestError

from .conftest import write_manifest


def test_project_list_add_and_fetch_report(http, served, project: Path):
    (served / "a.csv").write_text("x\n1\n")
    (served / "b.csv").write_text("y\n2\n")
    m = write_manifest(project, f'# my data\n[a]\nuri = "{http.url("a.csv")}"  # first\n')
    p = datamanifest.Project.open(project)
    added = p.add(http.url("b.csv"))
    assert added.name == "b" and added.fetched and added.checksum.startswith("sha256:")
    assert "b" in p.manifest.datasets  # the project reads the new manifest
    assert "# first" in m.read_text() and "# my data" in m.read_text()
    report = p.fetch()
    assert isinstance(report, Mapping) and set(report) == {"a", "b"}
    assert report["a"].status == "fetched" and report["b"].status == "present"
    assert report.paths["a"] == report["a"].path and report["a"].path.read_text() == "x\n1\n"
    assert repr(report) == "<FetchReport 1 fetched, 1 present>"
    objs = p.list()
    assert sorted(o.id for o in objs) == ["a", "b"] and all(o.state == "clean" for o in objs)
    assert [o.id for o in p.list("a")] == ["a"] and p.list(kind="cached") == []
    assert p.load("a").x.tolist() == [1]


def test_error_text_starts_with_the_file_and_position(project: Path):
    m = write_manifest(project, '[here]\nuri = "data/here.csv"\n\n[gone]\nuri = "data/gone.csv"\n')
    (project / "data").mkdir()
    (project / "data" / "here.csv").write_text("1")
    p = datamanifest.Project.open(m)
    with pytest.raises(DataManifestError) as e:
        p.fetch()
    text = str(e.value)
    # the position of gone's uri: line 11, column 7 (after the 6 lines write_manifest adds)
    assert text.startswith(f"{m}:11:7: error DM074 "), text
    assert "<input>" not in text
    assert isinstance(e.value.__cause__, FileNotFoundError)  # the cause is kept
    assert e.value.report["here"].status == "fetched" and e.value.report["gone"].status == "failed"
    report = p.fetch(raise_on_error=False)
    assert report["gone"].error.code == "DM074" and report["here"].status == "present"
    with pytest.raises(DataManifestError) as e:
        p.path("gone")
    assert str(e.value).startswith(f"{m}:11:1: error DM078 ")  # here's checksum line was added
    with pytest.raises(DataManifestError) as e:
        p.path("gon")
    assert str(e.value).startswith(f"{m}: error DM076 ") and "did you mean 'gone'?" in str(e.value)


def test_load_of_an_extracted_archive_returns_its_folder(http, served, project: Path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"a,b\n1,2\n"
        info = tarfile.TarInfo("inner/table.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (served / "bundle.tar.gz").write_bytes(buf.getvalue())
    write_manifest(project, f'[bundle]\nuri = "{http.url("bundle.tar.gz")}"\nextract = true\n')
    folder = datamanifest.Project.open(project).load("bundle")  # was DM087
    assert isinstance(folder, Path) and folder.is_dir()
    assert (folder / "inner" / "table.csv").read_bytes() == b"a,b\n1,2\n"


# -- the one entry of fetching (issue 23, point 2) ------------------------------------------------
def test_project_fetch_takes_the_options_the_cli_has(http, served, project: Path):
    """Project.fetch and `datamanifest fetch` share one entry (datamanifest.fetch.run):
    offline (FET-006), per_host (FET-007) and a progress of the caller's own reach it."""
    from datamanifest.progress import NullProgress

    (served / "a.csv").write_text("x\n1\n")
    (served / "b.csv").write_text("y\n2\n")
    write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\n\n'
                            f'[b]\nuri = "{http.url("b.csv")}"\n')
    p = datamanifest.Project.open(project)
    report = p.fetch(offline=True, raise_on_error=False)
    assert {o.status for o in report.outcomes} == {"missing"} and http.requested == []

    class Recorder(NullProgress):
        def __init__(self) -> None:
            self.started: list[str] = []
            self.done = 0

        def start(self, label, size):
            self.started.append(label)
            return label

        def done_one(self) -> None:
            self.done += 1

    seen = Recorder()
    report = p.fetch(per_host=1, jobs=2, progress=seen)
    assert {o.status for o in report.outcomes} == {"fetched"}
    assert sorted(seen.started) == ["a", "b"] and seen.done == 2
    assert p.fetch(offline=True)["a"].status == "present"


def test_a_source_kind_of_your_own_is_asked_first(project: Path, monkeypatch):
    """Source kinds are a table a user extends (datamanifest.fetch.kinds.register, as pooch's
    downloaders): a registered kind stages the bytes, the engine verifies (FET-004),
    publishes and records them as for a built-in kind."""
    import hashlib

    from datamanifest.errors import ChecksumMismatch
    from datamanifest.fetch import kinds

    payload = b"bytes from a place only this kind knows\n"

    class Memory(kinds.SourceKind):
        name = "memory"

        def matches(self, job):
            return job.dataset.uri.startswith("mem://")

        def fetch(self, engine, job, lock):
            job.target.staging.parent.mkdir(parents=True, exist_ok=True)
            job.target.staging.write_bytes(payload)
            digest = hashlib.new(job.file_algorithm, payload).hexdigest()
            job.check_file(digest)
            return kinds.Staged(job, len(payload), digest, job.file_algorithm)

    monkeypatch.setattr(kinds, "KINDS", list(kinds.KINDS))  # the table as it was, afterwards
    kinds.register(Memory(), before="download")
    assert [k.name for k in kinds.KINDS].index("memory") == \
        [k.name for k in kinds.KINDS].index("download") - 1
    good = hashlib.sha256(payload).hexdigest()
    bad = "0" * 64
    write_manifest(project, f'[mine]\nuri = "mem://here/mine.txt"\nchecksum = "sha256:{good}"\n\n'
                            f'[bad]\nuri = "mem://here/bad.txt"\nchecksum = "sha256:{bad}"\n')
    report = datamanifest.Project.open(project).fetch(raise_on_error=False)
    assert report["mine"].status == "fetched" and report["mine"].path.read_bytes() == payload
    assert report["bad"].status == "failed" and isinstance(report["bad"].error, ChecksumMismatch)
    again = datamanifest.Project.open(project)
    assert report["bad"].path is None and not again.target("bad").path.exists()
    assert again.fetch("mine")["mine"].status == "present"
