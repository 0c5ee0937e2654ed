"""`format` (canonical form, SCHEMA.md §18) and `migrate` (§19) as a user runs them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamanifest.spec.canonical import dumps, key_orders

from .conftest import ROOT, examples, run_cli
from .test_properties import manifests

LEGACY = """\
# Project data (keep this header)
[old]   # old style
uri = "https://h.example.org/old.csv"
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local_path = "data/old.csv"
host = "h.example.org"

[old._LANG.shell]
fetcher = "wget -O $download_path $uri"

[keep]
uri = "https://h.example.org/k.csv"   # stays as it is
python = "pandas:read_csv"
"""


def test_migrate_in_place_keeps_comments_and_is_idempotent(tmp_path: Path):
    m = tmp_path / "datamanifest.toml"
    m.write_text(LEGACY)
    proc = run_cli("migrate", str(m))
    assert proc.returncode == 0, proc.stderr
    text = m.read_text()
    assert text.startswith("# Project data (keep this header)\n\n[_META]\nschema = 1\n")
    assert "[old]   # old style" in text and "# stays as it is" in text
    assert 'checksum = "sha256:e3b0c442' in text and "sha256 =" not in text
    assert 'storage_path = "data/old.csv"' in text and "local_path" not in text
    assert "host =" not in text and "_LANG" not in text
    assert 'shell = "wget -O $download_path $uri"' in text
    assert "left alone: [keep] python" in proc.stderr
    check = run_cli("check", str(m))
    assert check.returncode == 0 and "DM050" in check.stdout and "DM022" not in check.stdout
    again = run_cli("migrate", str(m))
    assert "nothing to migrate" in again.stderr and m.read_text() == text


def test_migrate_dry_run_changes_nothing(tmp_path: Path):
    m = tmp_path / "datamanifest.toml"
    m.write_text(LEGACY)
    proc = run_cli("migrate", "--dry-run", str(m))
    assert proc.returncode == 0 and "[_META]" in proc.stdout
    assert m.read_text() == LEGACY


@pytest.mark.covers("FMT-003", "FMT-005", "FMT-006")
def test_format_keeps_comments_and_refuses_orphans(tmp_path: Path):
    """Issue 20 point 6: `format -i` exited 1 with DM094 on any commented file; comments now
    move with the key or table they annotate, and only one that belongs to nothing is DM094."""
    m = tmp_path / "datamanifest.toml"
    m.write_text('[zeta]\nuri = "https://h.example.org/z.csv"  # z\n\n[_META]\nschema = 1\n')
    proc = run_cli("format", str(m))
    assert proc.returncode == 0
    assert proc.stdout == '[_META]\nschema = 1\n\n[zeta]\nuri = "https://h.example.org/z.csv"  # z\n'
    assert run_cli("format", "--check", str(m)).returncode == 1
    assert run_cli("format", "-i", str(m)).returncode == 0
    assert m.read_text() == proc.stdout
    assert run_cli("format", "--check", str(m)).returncode == 0
    m.write_text(proc.stdout + "\n# ---- inputs ----\n\n[alpha]\nuri = \"https://h.example.org/a\"\n")
    refused = run_cli("format", "-i", str(m))
    assert refused.returncode == 1 and f"{m}:7:1: error DM094 " in refused.stderr
    assert "# ---- inputs" in m.read_text()
    assert run_cli("format", "-i", "--drop-comments", str(m)).returncode == 0
    assert "#" not in m.read_text()


def test_readme_manifest_formats_cleanly(tmp_path: Path):
    """The README's own commented manifest formats in place, every comment kept with its key."""
    readme = (ROOT / "docs" / "pages" / "reference" / "tour.md").read_text(encoding="utf-8")
    block = readme.split("## A minimal `datamanifest.toml`", 1)[1].split("```toml\n", 1)[1]
    text = block.split("```", 1)[0]
    m = tmp_path / "datamanifest.toml"
    m.write_text(text)
    proc = run_cli("format", "-i", str(m))
    assert proc.returncode == 0, proc.stderr
    out = m.read_text()
    comments = [l.split("#", 1)[1] for l in text.splitlines() if "#" in l]
    assert comments and all(c in out for c in comments)
    assert "# Global temperature anomalies\n[hadcrut5]\n" in out
    assert tomllib.loads(out) == tomllib.loads(text)
    assert run_cli("format", "--check", str(m)).returncode == 0


def test_format_refuses_invalid_documents(tmp_path: Path):
    m = tmp_path / "datamanifest.toml"
    m.write_text('[a]\nuri = "x"\nrequires = ["nope"]\n')
    proc = run_cli("format", str(m))
    assert proc.returncode == 1 and "DM040" in proc.stderr and "Traceback" not in proc.stderr


def test_format_reads_stdin():
    proc = run_cli("format", "-", input='[b]\nuri = "https://h.example.org/b"\n[a]\nuri = "https://h.example.org/a"\n')
    assert proc.returncode == 0 and proc.stdout.index("[a]") < proc.stdout.index("[b]")


def test_conformance_byte_identity_through_the_cli():
    proc = run_cli("conformance", "run", "--only", "roundtrip", "--bytes")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("passed, 0 failed")


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_canonical_form_is_idempotent_and_semantic(doc):
    once = dumps(tomllib.loads(tomli_w.dumps(doc)))
    twice = dumps(tomllib.loads(once))
    assert once == twice
    parsed = tomllib.loads(once)
    assert parsed == doc
    assert key_orders(parsed) == key_orders(tomllib.loads(twice))


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.lists(st.tuples(st.integers(0, 400), st.booleans()), max_size=8))
def test_comments_survive_the_canonical_form(doc, marks):
    """FMT-005: comments above a key or header, or at the end of its line, are all kept,
    the result parses to the same document, and formatting it again changes nothing."""
    from datamanifest.spec.comments import dumps_with_comments

    lines = tomli_w.dumps(doc).split("\n")
    placed = []
    for n, (at, trailing) in enumerate(marks):
        i = at % max(1, len(lines) - 1)
        line = lines[i]
        text = f"# note {n}"
        if trailing and line.strip() and not line.rstrip().endswith(("[", ",")) \
                and not line.lstrip().startswith("#"):
            lines[i] = line + "  " + text
        elif line.strip() and "=" in line or line.startswith("["):
            lines.insert(i, text)
        else:
            continue
        placed.append(text)
    source = "\n".join(lines)
    out = dumps_with_comments(source, tomllib.loads(source))  # each is above or beside an item
    assert tomllib.loads(out) == doc
    assert all(out.count(t + "\n") + out.count(t + "  #") >= 1 for t in placed)
    assert dumps_with_comments(out, tomllib.loads(out)) == out


def test_a_filled_checksum_stays_in_its_own_table_when_there_is_no_uri():
    """MAN-004: a dataset without ``uri`` gets its checksum under its last key, not after the
    blank line and the comment that introduce the next table (they belong to that table)."""
    from datamanifest.migrate import fill_checksums_text

    text = (
        '[made]\nkey = "made.txt"  # produced here\nshell = "make-it $download_path"\n\n'
        '# the next dataset\n[b]\nuri = "https://h.example.org/b.csv"\n\n'
        '[c]\nkey = "c.txt"\n[c.params]\nx = 1\n'
    )
    out, filled = fill_checksums_text(text, {"made": "sha256:aa", "c": "sha256:cc"})
    assert filled == ["made", "c"]
    assert out == (
        '[made]\nkey = "made.txt"  # produced here\nshell = "make-it $download_path"\n'
        'checksum = "sha256:aa"\n\n'
        '# the next dataset\n[b]\nuri = "https://h.example.org/b.csv"\n\n'
        '[c]\nkey = "c.txt"\nchecksum = "sha256:cc"\n[c.params]\nx = 1\n'
    )
    assert tomllib.loads(out)["made"]["checksum"] == "sha256:aa"
