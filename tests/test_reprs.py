"""Notebook displays (SCHEMA.md INT-030): `__repr__` and `_repr_html_` of a project, a chunk
manifest, a produced artifact and an append target's status, on real objects; the HTML is
parsed by html5lib (strict: any parse error fails) and by the standard library's parser
(every element closed, in order), and carries no script."""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import datamanifest

from . import realdata as rd
from .conftest import run_cli, sha256_of, write_manifest

html5lib = pytest.importorskip("html5lib")

_VOID = {"br", "hr", "img", "input", "meta", "link", "col", "wbr"}


class _Text(HTMLParser):
    """Checks that every element is closed in order, keeps the text, and records what a
    page without JavaScript could not show."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.scripted: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script" or any(k.startswith("on") for k, _ in attrs):
            self.scripted.append(tag)
        if any(k in ("href", "src") and (v or "").lower().startswith("javascript:")
               for k, v in attrs):
            self.scripted.append(tag)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        assert tag in _VOID, f"<{tag}/> is not a void element"

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def checked_html(fragment: str) -> str:
    """Parse ``fragment`` strictly; return its text (what a reader sees without scripts)."""
    assert isinstance(fragment, str) and fragment.startswith("<div")
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parseFragment(fragment)
    p = _Text()
    p.feed(fragment)
    p.close()
    assert p.stack == [], f"unclosed: {p.stack}"
    assert p.scripted == []
    assert "<style" not in fragment and "<link" not in fragment  # inline styles only
    return re.sub(r"\s+", " ", " ".join(p.text))


@pytest.mark.covers("INT-030")
def test_project_shows_datasets_states_and_sizes(http, served, project: Path):
    (served / "a.csv").write_bytes(b"x,y\n1,2\n")
    write_manifest(project, f"""
[a]
uri = "{http.url('a.csv')}"
checksum = "sha256:{sha256_of(b'x,y' + bytes([10]) + b'1,2' + bytes([10]))}"

[b]
uri = "{http.url('b.csv')}"
description = "<b>not markup</b> & co"

[ext]
uri = "file:///data/elsewhere.nc"
skip_download = true
""")
    assert run_cli("fetch", "a", cwd=project).returncode == 0
    p = datamanifest.Project.open(project)
    assert isinstance(p, datamanifest.Project) and "Project" in datamanifest.__all__
    assert repr(p) == f"<Project {project.resolve() / 'datamanifest.toml'}: 3 datasets>"
    fragment = p._repr_html_()
    text = checked_html(fragment)
    assert "3 dataset(s): 1 present, 1 missing, 1 external" in text
    assert re.search(r"a present 8 B \S+a\.csv sha256:", text)
    assert re.search(r"b missing \u2014 \S+b\.csv", text)
    assert "ext external \u2014 file:///data/elsewhere.nc" in text
    assert [r["status"] for r in p.status()] == ["present", "missing", "external"]
    # the same rows as `status --json`
    import json

    assert json.loads(run_cli("status", "--json", cwd=project).stdout) == p.status()


def test_a_long_project_is_cut_with_a_count(project: Path):
    write_manifest(project, "".join(f'[d{i:03}]\nuri = "https://h.example.org/{i}.csv"\n'
                                    for i in range(230)))
    text = checked_html(datamanifest.Project.open(project)._repr_html_())
    assert "d199" in text and "d200" not in text and "\u2026 30 more" in text


@pytest.mark.covers("INT-030")
def test_chunk_manifest_shows_arrays_and_whether_sources_match(tmp_path: Path):
    drb = rd.wheel_files(rd.PYWATERSHED, "pywatershed/data/drb_2yr")
    src = tmp_path / "prcp.nc"
    shutil.copy(drb / "prcp.nc", src)
    m = datamanifest.virtualize([src])
    assert repr(m) == f"<ChunkManifest: 3 arrays, 1 source>"
    text = checked_html(m._repr_html_())
    assert "3 array(s), 1 source(s) (1 matching)" in text
    assert re.search(r"prcp float32 \(731, 765\) \(30, 765\) 25 \(25 referenced, 0 inline, "
                     r"0 missing\)", text), text
    assert re.search(r"file://\S+prcp\.nc \S+ \S+ \S+ \S+ ok", text)
    with open(src, "ab") as f:
        f.write(b"\0" * 8)  # the source changed after it was indexed
    text = checked_html(m._repr_html_())
    assert "(0 matching)" in text and "changed" in text and "size" in text
    # read back from its file: relative sources resolve against the document (CHK-007)
    from datamanifest.virtual import document, load_manifest

    m.base = None
    doc = m.as_json()
    doc["sources"][0]["url"] = "prcp.nc"
    del doc["checksum"]
    from datamanifest.spec import virtual as spec

    document.write(spec.parse(doc, verify_checksum=False), tmp_path / "p.chunks.json")
    loaded, _ = load_manifest(tmp_path / "p.chunks.json")
    assert "changed" in checked_html(loaded._repr_html_())
    orphan = spec.parse(doc, verify_checksum=False)  # no location: said, not raised
    assert "has no base" in checked_html(orphan._repr_html_())


@pytest.mark.covers("INT-030")
def test_artifact_shows_parameters_formats_and_path(project: Path, monkeypatch):
    write_manifest(project, 'datacache_dir = "cache"\n')
    monkeypatch.chdir(project)

    @datamanifest.cached(cachetype="test-reprs.means", format="json")
    def means(region: str, year: int = 2020):
        return {"region": region, "year": year}

    before = means.artifact("<nordic & baltic>")
    assert repr(before).startswith("<Artifact test-reprs.means/") and "absent" in repr(before)
    text = checked_html(before._repr_html_())
    assert "state absent" in text and "region '<nordic & baltic>'" in text
    means("<nordic & baltic>")
    after = means.artifact("<nordic & baltic>")
    assert "present (store)" in repr(after) and str(project / "cache") in repr(after)
    text = checked_html(after._repr_html_())
    assert "state present (store)" in text and "year 2020" in text
    assert re.search(r"json data\.json \d+ B sha256:[0-9a-f]{64}", text)
    after.parameters = None  # unknown to the caller: read from config.toml (SC-001)
    assert "region '<nordic & baltic>'" in checked_html(after._repr_html_())


@pytest.mark.covers("INT-030")
def test_append_status_shows_steps_and_last_version(tmp_path: Path):
    pytest.importorskip("zarr")
    from datamanifest.testing import appends as harness

    target = tmp_path / "cube.zarr"
    absent = datamanifest.appends.status(target)
    assert repr(absent) == f"<append target {absent.target}: absent>"
    assert "absent" in checked_html(absent._repr_html_())
    datamanifest.append(target, [harness.make_slice(i, (4, 5)) for i in range(3)],
                        append_step="1D")
    st = datamanifest.appends.status(target)
    assert len(st.steps) == 3 and st.version == st.steps[-1]["checksum"]
    assert repr(st) == (f"<append target {st.target}: time length 3, {len(st.variables)} "
                        f"variable(s), 3 step(s), version {st.version}>")
    text = checked_html(st._repr_html_())
    assert "time length 3, 3 step(s)" in text
    assert f"last version {st.version} at {st.steps[-1]['time']}" in text
    assert "pending transaction none" in text and "lock none" in text
    assert re.search(rf"3 {re.escape(st.version)} \S+ \d+ kept", text)  # newest first


def test_sizes_show_in_the_one_unit_family_of_the_cli():
    """A notebook display, the CLI and the progress bars write a size one way (one function,
    progress.human_size): binary units up to PiB, ``?`` when unknown."""
    from datamanifest import display, progress
    from datamanifest.cli._common import human

    for n in (None, 0, 1023, 1536, 5 * 2**30, 3 * 2**50):
        assert display.human_size(n) == progress.human_size(n) == human(n)
    assert display.human_size(3 * 2**50) == "3.0 PiB" and display.human_size(None) == "?"


def test_append_status_is_reached_from_the_package_alone(tmp_path: Path):
    """`datamanifest.appends.status(target)`, as the tour writes it, works in a fresh
    interpreter after `import datamanifest` alone (the append package loads on first use)."""
    import subprocess
    import sys

    code = ("import sys, datamanifest\n"
            "before = 'datamanifest.appends' in sys.modules\n"
            "st = datamanifest.appends.status(sys.argv[1])\n"
            "print(before, repr(st))\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cube.zarr")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("False <append target ") and r.stdout.rstrip().endswith(
        ": absent>")
