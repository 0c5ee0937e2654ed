"""The CLI as a user runs it: exit codes, output formats, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import ROOT, run_cli, write_manifest


def test_check_clean_exit_0(project: Path):
    write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\n')
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "ok: 1 file(s), 1 dataset(s)" in proc.stderr


def test_check_json_format(project: Path):
    m = write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\nextract = "yes"\n')
    proc = run_cli("check", "--format", "json", str(m))
    assert proc.returncode == 1
    diags = json.loads(proc.stdout)
    assert diags == [{
        "code": "DM011", "severity": "error", "rule": "MAN-010", "file": str(m), "line": 9,
        "column": 11, "path": ["a", "extract"],
        "message": "dataset 'a': extract must be a boolean, not a string",
        "hint": "write extract = true or false (unquoted)",
    }]


def test_check_syntax_error_no_traceback(tmp_path: Path):
    p = tmp_path / "datamanifest.toml"
    p.write_text("[a\nuri = 1\n")
    proc = run_cli("check", str(p))
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"{p}:1:3: error DM001 TOML syntax error")
    assert "Traceback" not in proc.stderr


def test_check_binary_garbage(tmp_path: Path):
    p = tmp_path / "datamanifest.toml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    proc = run_cli("check", str(p))
    assert proc.returncode == 2 and "DM002" in proc.stdout and "Traceback" not in proc.stderr


def test_check_usage_errors_exit_2(tmp_path: Path):
    assert run_cli("check", "--format", "xml").returncode == 2
    proc = run_cli("check", cwd=tmp_path)  # no manifest anywhere up from an empty tmp dir
    assert proc.returncode == 2 and "DM003" in proc.stderr


def test_check_strict_and_warnings(project: Path):
    write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\nlocal_path = "x"\n')
    assert run_cli("check", cwd=project).returncode == 0
    assert run_cli("check", "--strict", cwd=project).returncode == 1


def test_check_many_files_at_once():
    files = sorted((ROOT / "fixtures" / "manifest" / "invalid").glob("*.toml"))
    proc = run_cli("check", *map(str, files))
    assert proc.returncode == 1
    lines = [l for l in proc.stdout.splitlines() if ": error DM" in l]
    assert len(lines) == len(files)


def test_discovery_order_and_env(tmp_path: Path):
    (tmp_path / "Datasets.toml").write_text('[old]\nuri = "https://h.example.org/o.csv"\n')
    (tmp_path / "datamanifest.toml").write_text('[new]\nuri = "https://h.example.org/n.csv"\n')
    sub = tmp_path / "sub" / "deeper"
    sub.mkdir(parents=True)
    st = run_cli("status", "--json", cwd=sub)
    assert [r["name"] for r in json.loads(st.stdout)] == ["new"]
    st = run_cli("status", "--json", cwd=sub, env={"DATAMANIFEST_TOML": str(tmp_path / "Datasets.toml")})
    assert [r["name"] for r in json.loads(st.stdout)] == ["old"]


def test_help_and_version():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "fetch" in proc.stdout and "check" in proc.stdout
    assert run_cli("--version").stdout.startswith("datamanifest, version")
    assert '"$schema"' in run_cli("schema", "manifest").stdout


def test_ambiguous_alias_lookup(project: Path):
    write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\n')
    proc = run_cli("path", "zzz", cwd=project)
    assert proc.returncode == 1 and "DM076" in proc.stderr


def test_readme_minimal_manifest_is_valid(tmp_path: Path):
    import re

    # the README's tour became the site's tour of the commands (issue 26)
    text = (ROOT / "docs" / "pages" / "reference" / "tour.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[_META\].*?)```", text, re.S).group(1)
    (tmp_path / "datamanifest.toml").write_text(block)
    proc = run_cli("check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_typos_outside_dataset_tables_are_caught(project: Path):
    """Issue 20 point 4: `datasets_dri` in [_STORAGE], `[_STORGE]` and `schma = 2` in [_META]
    passed `check --strict`; the data then silently landed in the default store."""
    m = project / "datamanifest.toml"
    m.write_text('[_META]\nschema = 1\nschma = 2\n\n[_STORAGE]\ndatasets_dri = "data"\n\n'
                 '[_STORGE]\ndatasets_dir = "data"\n\n[a]\nuri = "https://h.example.org/a.csv"\n')
    proc = run_cli("check", "--strict", "--json", cwd=project)
    assert proc.returncode == 1
    got = [(d["code"], d["line"], d["column"], d["hint"]) for d in json.loads(proc.stdout)]
    assert got[0] == ("DM010", 3, 1, "did you mean 'schema'?")
    assert got[1][:3] == ("DM010", 6, 1) and got[1][3].startswith("did you mean 'datasets_dir'?")
    assert got[2] == ("DM175", 8, 1, "did you mean [_STORAGE]?")
    cfg = project / ".datamanifest" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text('datacache_dri = "/scratch"\n')
    proc = run_cli("check", str(cfg))
    assert proc.returncode == 1 and f"{cfg}:1:1: error DM010 " in proc.stdout
    assert "did you mean 'datacache_dir'?" in proc.stdout


def test_command_table_lists_every_family_command_and_imports_lazily(tmp_path):
    """cli.FAMILIES names exactly the commands each cli/<family>.py lists, and running one
    command imports its family alone (start-up of `tree`, `check` ...)."""
    import importlib
    import subprocess
    import sys

    from datamanifest import cli

    for family, names in cli.FAMILIES.items():
        module = importlib.import_module(f"datamanifest.cli.{family}")
        assert tuple(c.name for c in module.COMMANDS) == names, family
    assert sorted(cli.main.commands) == sorted([*cli._FAMILY_OF, *cli.ALIASES])
    (tmp_path / "d").mkdir()
    code = ("import sys; from datamanifest.cli import main\n"
            "try:\n    main(['tree', '-q', sys.argv[1]], prog_name='datamanifest')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('datamanifest.cli.')))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True,
                         text=True, check=True).stdout
    loaded = eval(out.strip().splitlines()[-1])
    assert "datamanifest.cli.trees" in loaded
    assert not {"datamanifest.cli.fetch", "datamanifest.cli.sync", "datamanifest.cli.author",
                "datamanifest.cli.virtual"} & set(loaded)
