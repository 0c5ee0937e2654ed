"""One CLI convention (issue 20 point 7; the tour of the commands, "Conventions"), asserted on every command:

- every command that prints results takes ``--json`` and then prints one parseable JSON
  document on stdout;
- every command takes ``-q/--quiet``;
- ``-n`` means ``--dry-run`` and nothing else, and every ``--dry-run`` has it;
- ``--format`` never filters objects by data format (``--data-format`` does);
- sizes are in one unit family (KiB, MiB, GiB), an extracted archive counts its tree;
- a silent wait says what it waits for.

The commands are enumerated from the click tree, so a new command without the conventions
fails here.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from datamanifest.cli import main

from .conftest import run_cli, write_manifest

#: commands whose stdout is a line protocol of their own (JSON already) or a program (a
#: shell completion script): no --json flag
PROTOCOL = {("conformance", "serve"), ("receive",), ("completion",)}


def _commands(group: click.Group = main, path: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def _opts(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option)]


def test_every_command_follows_the_flag_conventions():
    seen = 0
    for path, cmd in _commands():
        seen += 1
        flags = {o for p in _opts(cmd) for o in p.opts + p.secondary_opts}
        assert {"-q", "--quiet"} <= flags, f"{' '.join(path)} lacks -q/--quiet"
        if path not in PROTOCOL:
            assert "--json" in flags, f"{' '.join(path)} lacks --json"
        for p in _opts(cmd):
            names = p.opts + p.secondary_opts
            if "-n" in names:
                assert "--dry-run" in names, f"{' '.join(path)}: -n is {names}"
            if "--dry-run" in names:
                assert "-n" in names, f"{' '.join(path)}: --dry-run without -n"
            if "--format" in names and not p.hidden:
                # an output document's format, never a filter of objects by data format
                assert p.name in ("fmt",), f"{' '.join(path)}: --format is {p.name}"
    assert seen >= 35


def test_list_format_is_not_a_silent_filter(project: Path):
    """`list --format json` filtered by data format and printed "0 object(s)"."""
    write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\n')
    proc = run_cli("list", "--format", "json", cwd=project)
    assert proc.returncode == 2 and "--json" in proc.stderr and "--data-format" in proc.stderr
    proc = run_cli("list", "--data-format", "csv", "--json", cwd=project)
    assert proc.returncode == 0 and [o["id"] for o in json.loads(proc.stdout)] == ["a"]
    proc = run_cli("add", "-n", "x", "https://h.example.org/b.csv", cwd=project)
    assert proc.returncode == 2  # -n is --dry-run everywhere; add names with --name


def _invoke(runner: CliRunner, args: list[str]):
    result = runner.invoke(main, args, catch_exceptions=False)
    return result


def _scenario(tmp: Path, http, served: Path) -> tuple[Path, dict[tuple[str, ...], list[str]]]:
    """A project with a file, an extracted archive and the documents every command needs;
    command path -> its arguments (--json added by the test)."""
    import numpy as np
    import xarray as xr

    project = tmp / "project"
    project.mkdir()
    (served / "a.csv").write_text("x\n1\n")
    (served / "b.csv").write_text("y\n2\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("t/one.txt", "t/two.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    (served / "bundle.tar.gz").write_bytes(buf.getvalue())
    m = write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\n\n'
                       f'[bundle]\nuri = "{http.url("bundle.tar.gz")}"\nextract = true\n')
    folder = tmp / "folder"
    folder.mkdir()
    (folder / "f.txt").write_text("f")
    tree = tmp / "tree.json"
    (tmp / "urls.txt").write_text(http.url("a.csv") + "\n")
    (tmp / "registry.txt").write_text("a.csv " + "0" * 64 + "\n")
    dvc = project / "dvc"
    dvc.mkdir()
    (dvc / "data.csv.dvc").write_text("outs:\n- md5: d41d8cd98f00b204e9800998ecf8427e\n"
                                      "  size: 0\n  path: data.csv\n")
    nc = tmp / "f.nc"
    xr.Dataset({"t": ("x", np.arange(4.0))}).to_netcdf(nc, engine="scipy")
    usb = tmp / "usb"
    mm = ["-m", str(m)]
    table: dict[tuple[str, ...], list[str]] = {
        ("check",): [*mm, "check"],
        ("fetch",): [*mm, "fetch"],
        ("status",): [*mm, "status"],
        ("path",): [*mm, "path", "a"],
        ("show",): [*mm, "show", "a"],
        ("where",): [*mm, "where"],
        ("trust",): [*mm, "trust", "--show"],
        ("graph",): [*mm, "graph"],
        ("config", "show"): [*mm, "config", "show"],
        ("config", "set"): [*mm, "config", "set", "scratch", "/scratch"],
        ("config", "unset"): [*mm, "config", "unset", "scratch"],
        ("schema",): ["schema", "manifest"],
        ("list",): [*mm, "list"],
        ("ls",): [*mm, "ls", "--kind", "data"],
        ("rm",): [*mm, "rm", "a", "--dry-run"],
        ("mv",): [*mm, "mv", "a", str(tmp / "elsewhere"), "--dry-run"],
        ("refresh",): [*mm, "refresh", "--dry-run"],
        ("export",): [*mm, "export", str(tmp / "export"), "a", "--dry-run"],
        ("verify",): [*mm, "verify"],
        ("versions",): [*mm, "versions", "bundle"],
        ("tree",): ["tree", str(folder), "-o", str(tree)],
        ("diff",): ["diff", str(tree), str(tree)],
        ("format",): ["format", str(m)],
        ("migrate",): ["migrate", str(m), "--dry-run"],
        ("init",): ["init", str(tmp / "fresh")],
        ("add",): [*mm, "add", http.url("b.csv"), "--name", "again", "--no-fetch"],
        ("remove",): [*mm, "remove", "again", "--dry-run"],
        ("update-checksums",): [*mm, "update-checksums", "--dry-run"],
        ("import", "urls"): [*mm, "import", "urls", str(tmp / "urls.txt"), "--dry-run"],
        ("import", "pooch"): [*mm, "import", "pooch", str(tmp / "registry.txt"), "--base-url",
                              http.url(""), "--dry-run"],
        ("import", "dvc"): [*mm, "import", "dvc", str(dvc), "--dry-run"],
        ("push",): [*mm, "push", "a", str(usb), "--root", "--remote-command",
                    f"{sys.executable} -m datamanifest"],
        ("pull",): [*mm, "pull", "a", str(usb), "--root", "--dry-run", "--remote-command",
                    f"{sys.executable} -m datamanifest"],
        ("append",): ["append", "--status", str(tmp / "cube.zarr")],
        ("virtualize",): ["virtualize", str(nc), "-o", str(tmp / "f.chunks.json")],
        ("refs", "info"): ["refs", "info", str(tmp / "f.chunks.json")],
        ("conformance", "run"): ["conformance", "run", "--only", "key"],
        ("conformance", "index"): ["conformance", "index", "--check"],
    }
    return m, table


def test_every_result_printing_command_emits_parseable_json(tmp_path: Path, http, served,
                                                            monkeypatch):
    monkeypatch.delenv("DATAMANIFEST_TOML", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # conformance finds ./fixtures
    m, table = _scenario(tmp_path, http, served)
    commands = {path for path, _ in _commands()} - PROTOCOL
    assert commands - set(table) == set(), "add the new command to this scenario"
    runner = CliRunner()
    for path, args in table.items():  # in order: fetch comes before what needs the data
        result = _invoke(runner, [*args, "--json"])
        assert result.exit_code == 0, (path, result.stdout, result.stderr)
        try:
            json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"{' '.join(path)} --json printed no JSON: {result.stdout[:300]!r}")
    # -q: informational messages go, results stay
    quiet = _invoke(runner, ["-m", str(m), "check", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    loud = _invoke(runner, ["-m", str(m), "check"])
    assert "ok: 1 file(s)" in loud.stderr


def test_sizes_in_one_unit_family_and_archives_at_their_tree_size(http, served, project: Path):
    (served / "big.bin").write_bytes(b"\0" * (3 * 1024 * 1024 + 100 * 1024))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("inside/zeros.bin")
        info.size = 2 * 1024 * 1024
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    (served / "z.tar.gz").write_bytes(buf.getvalue())  # compresses to a few KiB
    write_manifest(project, f'[big]\nuri = "{http.url("big.bin")}"\n\n'
                   f'[z]\nuri = "{http.url("z.tar.gz")}"\nextract = true\n')
    plan = run_cli("fetch", "--dry-run", cwd=project)
    assert plan.returncode == 0 and "big: would fetch 3.1 MiB from" in plan.stdout
    # the summary, one space between its parts however many kinds of row there are
    assert plan.stderr.splitlines()[-1] == \
        "dry run: 2 to fetch (3.1 MiB) -- nothing was downloaded", plan.stderr
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "big: fetched, 3.1 MiB sha256:" in proc.stdout
    assert "z: fetched, 2.0 MiB tree-sha256:" in proc.stdout  # the tree, not the archive
    plan = run_cli("fetch", "--dry-run", cwd=project)
    assert plan.stderr.splitlines()[-1] == \
        "dry run: 0 to fetch, 2 present -- nothing was downloaded", plan.stderr
    plan = run_cli("fetch", "--dry-run", "--verbose", "--json", cwd=project)
    rows = {r["name"]: r for r in json.loads(plan.stdout)["datasets"]}
    assert rows["z"]["action"] == "present" and rows["z"]["size"] == 2 * 1024 * 1024


def test_a_silent_wait_says_what_it_waits_for(http, served, project: Path):
    (served / "slow.csv").write_text("s\n")
    http.delay["/slow.csv"] = 1.2  # headers, then nothing for 1.2 s
    write_manifest(project, f'[slow]\nuri = "{http.url("slow.csv")}"\n')
    proc = run_cli("fetch", "--verbose", cwd=project, env={"DATAMANIFEST_PATIENCE": "0.5"})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"note: waiting [01] s for slow: bytes from 127\.0\.0\.1", proc.stderr), \
        proc.stderr
    quiet = run_cli("fetch", "--force", cwd=project, env={"DATAMANIFEST_PATIENCE": "0.5"})
    assert "waiting" not in quiet.stderr  # not a TTY and not --verbose: nothing
    # a lock held by a live process: the holder is named
    import os

    lock = project / "store" / "127.0.0.1" / "slow.csv.lock"
    (project / "store" / "127.0.0.1" / "slow.csv.complete").unlink()
    lock.write_text(f"{os.getpid()} {__import__('socket').gethostname()}\n")
    proc = run_cli("fetch", "--verbose", "--lock-timeout", "1.5", cwd=project,
                   env={"DATAMANIFEST_PATIENCE": "0.5"})
    assert proc.returncode == 1 and "DM075" in proc.stderr
    assert f"for slow: pid {os.getpid()} on " in proc.stderr and "holds the lock" in proc.stderr


def test_the_readme_and_the_tour_show_the_same_conventions_table():
    """The README's CLI section carries the conventions table (issue 20 point 7) and the
    site's tour shows it at work: the two copies may not drift apart."""
    root = Path(__file__).resolve().parents[1]

    def table(path: Path) -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        start = lines.index("| convention | meaning |")
        end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
        return lines[start:end]

    readme = table(root / "README.md")
    assert len(readme) >= 12  # header, rule and every convention
    assert readme == table(root / "docs" / "pages" / "reference" / "tour.md")


def test_quiet_leaves_only_results_and_problems_on_every_command(tmp_path: Path, http, served,
                                                                  monkeypatch):
    """`-q`: the same scenario as the JSON test, every command run with `-q` instead: each
    succeeds and writes nothing on stderr but problems (located diagnostics): no notes,
    summaries or progress; its results, if any, stay on stdout."""
    monkeypatch.delenv("DATAMANIFEST_TOML", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # conformance finds ./fixtures
    m, table = _scenario(tmp_path, http, served)
    runner = CliRunner()
    noisy = {}
    for path, args in table.items():
        result = _invoke(runner, [*args, "-q"])
        assert result.exit_code == 0, (path, result.stdout, result.stderr)
        # problems stay (a located diagnostic); anything else on stderr is noise
        noise = [line for line in result.stderr.splitlines()
                 if not re.search(r"\b(error|warning) DM\d{3}\b", line)]
        if noise:
            noisy[" ".join(path)] = noise
    assert noisy == {}
    # and results stay: `path` still prints the path
    assert _invoke(runner, ["-m", str(m), "path", "a", "-q"]).stdout.strip().endswith("a.csv")
