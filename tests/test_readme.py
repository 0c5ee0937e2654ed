"""The README's examples, and the tour of the commands (docs/pages/reference/tour.md, which
holds what the README's tour was before the README became the site's front page), run
literally (issue 20: "the README's examples, run literally (with a loopback server), all
succeed"; issue 26: every example is executed).

The README runs through the documentation's example runner (tests/docs_examples.py), like
every page of the site. The tour's page needs a scene of its own, set here: every
``$ datamanifest ...`` line of its ``console`` blocks and every ``python`` block is run in
order, in the state the lines before it leave. What is substituted, and nothing else:

- ``https://example.org/`` is a loopback HTTP server serving the files the examples name;
- the machine's own folders (``/scratch/store``, ``/media/usb``) are folders under the
  test's temporary folder, and ``s3://bucket`` is a local S3 server (moto);
- a version prefix (``station-archive@3f1c``, ``cube.zarr@3f2a``) is the prefix of a real
  version, and a shell glob (``era5/tas_*.nc``) is expanded as a shell would;
- ``datamanifest init`` runs in an empty folder (it never overwrites a manifest).

A line whose shown output has ``error DM###`` must fail with exit 1 and that code; a line
whose comment says "exit 1 when they differ" (``diff``, as diff(1)) may exit 0 or 1; every
other line must exit 0.
"""

from __future__ import annotations

import glob
import importlib.util
import io
import re
import shlex
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from datamanifest.cli import main

from .conftest import ROOT
from .test_docs_examples import reader  # noqa: F401 - the fixture

README = (ROOT / "docs" / "pages" / "reference" / "tour.md").read_text(encoding="utf-8")


def _blocks(lang: str, section: str) -> list[str]:
    """The ``lang`` fenced blocks of the tour's section whose heading starts with
    ``section``."""
    body = README.split("\n## " + section, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", body, re.S)


def _console(block: str) -> list[tuple[str, str]]:
    """(command line, the output shown under it) for each ``$`` line of a console block."""
    out: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], ""))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + line + "\n")
    return out


class Runner:
    def __init__(self, subs: dict[str, str]) -> None:
        self.subs = subs
        self.cli = CliRunner()
        self.ran = 0

    def argv(self, line: str) -> list[str]:
        for old, new in self.subs.items():
            line = line.replace(old, new)
        words = shlex.split(line, comments=True)
        assert words[0] == "datamanifest", line
        expanded: list[str] = []
        for w in words[1:]:
            hits = sorted(glob.glob(w)) if any(c in w for c in "*?[") and "://" not in w \
                and not w.startswith("'") else []
            expanded.extend(hits or [w])
        return expanded

    def run(self, line: str, shown: str) -> None:
        args = self.argv(line)
        result = self.cli.invoke(main, args, catch_exceptions=False)
        expected = re.search(r"error (DM\d{3})", shown)
        if expected:
            assert result.exit_code == 1, (line, result.stdout, result.stderr)
            assert expected.group(1) in result.stderr + result.stdout, (line, result.stderr)
        elif "exit 1 when they differ" in line:
            assert result.exit_code in (0, 1) and result.stdout, (line, result.stderr)
        else:
            assert result.exit_code == 0, (line, args, result.stdout, result.stderr)
        self.ran += 1


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def site(tmp_path: Path, served: Path, http, monkeypatch):
    """The loopback example.org, the machine's folders, and a clean environment."""
    monkeypatch.delenv("DATAMANIFEST_TOML", raising=False)
    monkeypatch.setenv("DATAMANIFEST_REMOTE", f"{sys.executable} -m datamanifest")
    monkeypatch.setenv("DATAMANIFEST_DATACACHE_DIR", str(tmp_path / "datacache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    (served / "hadcrut").mkdir()
    (served / "hadcrut" / "HadCRUT.5.0.2.0.analysis.summary_series.global.monthly.nc"
     ).write_bytes(b"CDF\x01" + bytes(range(256)) * 8)
    (served / "stations").mkdir()
    (served / "stations" / "archive-2024.tar.gz").write_bytes(_tar_gz(
        {"stations/alpha.csv": b"t,v\n1,2\n", "stations/beta.csv": b"t,v\n3,4\n"}))
    (served / "obs.csv").write_text("time,value\n1,0.5\n2,0.7\n")
    (served / "run.tar.gz").write_bytes(_tar_gz({"run/out.txt": b"done\n"}))
    (served / "data").mkdir()
    (served / "data" / "table.csv").write_text("a,b\n1,2\n")
    subs = {"https://example.org/": http.url(""), "/scratch/store": str(tmp_path / "scratch"),
            "/media/usb": str(tmp_path / "usb")}
    return tmp_path, subs


def _readme_manifest(folder: Path, subs: dict[str, str]) -> Path:
    text = _blocks("toml", "A minimal `datamanifest.toml`")[0]
    for old, new in subs.items():
        text = text.replace(old, new)
    m = folder / "datamanifest.toml"
    m.write_text(text, encoding="utf-8")
    return m


def _version_prefix(cli: CliRunner, *args: str, index: int) -> str:
    import json

    rows = json.loads(cli.invoke(main, [*args, "--json"], catch_exceptions=False).stdout)
    return rows[index]["checksum"].partition(":")[2][:8]


def test_readme_cli_tour(site, s3_endpoint, monkeypatch):
    import boto3

    tmp, subs = site
    project = tmp / "project"
    project.mkdir()
    _readme_manifest(project, subs)
    monkeypatch.chdir(project)
    (project / "data" / "store.zarr" / "t").mkdir(parents=True)
    (project / "data" / "store.zarr" / "zarr.json").write_text('{"zarr_format": 3}')
    (project / "data" / "store.zarr" / "t" / "c0").write_bytes(b"\x00" * 64)
    import hashlib

    digest = hashlib.sha256((tmp / "served" / "data" / "table.csv").read_bytes()).hexdigest()
    (project / "registry.txt").write_text(f"table.csv {digest}\n")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bucket")
    for key in ("prefix/zarr.json", "prefix/t/c0"):
        s3.put_object(Bucket="bucket", Key=key, Body=key.encode())
    runner = Runner(subs)
    fresh = tmp / "fresh"
    fresh.mkdir()
    lines = _console(_blocks("console", "A short tour of the CLI")[0])
    for line, shown in lines:
        if "diff station-archive@" in line:
            runner.subs["@3f1c"] = "@" + _version_prefix(runner.cli, "versions",
                                                         "station-archive", index=0)
        if line.startswith("datamanifest init"):
            monkeypatch.chdir(fresh)
            runner.run(line, shown)
            monkeypatch.chdir(project)
            continue
        runner.run(line, shown)
    assert runner.ran == len(lines) >= 30


def test_readme_python_examples(site, monkeypatch):
    tmp, subs = site
    project = tmp / "project"
    project.mkdir()
    _readme_manifest(project, subs)
    monkeypatch.chdir(project)
    code = _blocks("python", "From Python")[0]
    for old, new in subs.items():
        code = code.replace(old, new)
    scope: dict = {}
    exec(compile(code, "README.md (From Python)", "exec"), scope)  # noqa: S102 - the example
    assert scope["path"].is_file() and list(scope["table"].columns) == ["time", "value"]
    assert {o.id for o in scope["objects"]} == {"hadcrut5", "station-archive", "obs"}
    # produced datasets: the example is a module of the project (mymodule.py)
    (project / "mymodule.py").write_text(_blocks("python", "Produced datasets")[0])
    spec = importlib.util.spec_from_file_location("mymodule", project / "mymodule.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mymodule", module)
    spec.loader.exec_module(module)
    assert (module.regrid.path("tas", 0.5) / "data.zarr").is_dir()


def _slice(path: Path, day: int, var: str = "tas") -> None:
    import numpy as np
    import pandas as pd
    import xarray as xr

    time = pd.date_range("2020-01-01", periods=1) + pd.Timedelta(days=day)
    ds = xr.Dataset({var: (("time", "lat"), np.full((1, 4), float(day), dtype="float32"))},
                    coords={"time": time, "lat": np.arange(4.0)})
    ds.to_netcdf(path, encoding={"time": {"units": "days since 2020-01-01",
                                          "calendar": "standard", "dtype": "float64"}})


def test_readme_chunk_manifest_and_append_examples(site, s3_endpoint, monkeypatch):
    import boto3

    tmp, subs = site
    work = tmp / "work"
    (work / "era5").mkdir(parents=True)
    monkeypatch.chdir(work)
    for day in range(3):
        _slice(work / "era5" / f"tas_{day}.nc", day)
        _slice(work / f"day_{day + 1:03d}.nc", day)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bucket")
    s3.upload_file(str(work / "era5" / "tas_0.nc"), "bucket", "sst.nc")
    runner = Runner(subs)
    for line, shown in _console(_blocks("console", "Chunk manifests")[0]):
        runner.run(line, shown)
    import datamanifest
    from datamanifest.virtual import document

    for name, day in (("a", 0), ("b", 1)):  # the two manifests its open_mfdataset line reads
        document.write(datamanifest.virtualize([work / "era5" / f"tas_{day}.nc"]),
                       work / f"{name}.chunks.json")
    scope: dict = {}
    exec(compile(_blocks("python", "Chunk manifests")[0], "README.md", "exec"), scope)  # noqa: S102
    assert scope["ds"].sizes["time"] == 2  # the last line: a.chunks.json and b.chunks.json
    for line, shown in _console(_blocks("console", "Appending to Zarr")[0]):
        if "diff cube.zarr@" in line:
            runner.subs["@3f2a"] = "@" + _version_prefix(runner.cli, "versions", "cube.zarr",
                                                         index=0)
            runner.subs["@9b1c"] = "@" + _version_prefix(runner.cli, "versions", "cube.zarr",
                                                         index=-1)
        runner.run(line, shown)
    exec(compile(_blocks("python", "Appending to Zarr")[0], "README.md", "exec"), {})  # noqa: S102
    import xarray as xr

    assert xr.open_zarr(work / "era5.zarr").sizes["time"] == 3
    assert runner.ran == 9


def test_readme_front_page_examples(reader, request, monkeypatch):
    """The README's own examples (the 30-second example) run like a page of the site."""
    from .test_docs_examples import run_doc

    from .docs_examples import console_lines, split_page

    session = run_doc("README.md", reader, request, monkeypatch)
    _, blocks = split_page((ROOT / "README.md").read_text(encoding="utf-8"))
    runnable = [b for b in blocks if b.lang in ("python", "console") and not b.not_run
                and not b.file]
    # every python block and every command line of every console block ran (the ``sh``
    # blocks are the install and make lines: `make demo` and `make test` run in CI)
    assert session.ran == sum(1 if b.lang == "python" else len(console_lines(b.code))
                              for b in runnable) >= 5
