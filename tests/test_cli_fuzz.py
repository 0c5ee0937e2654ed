"""No traceback for a user's mistake, anywhere (SCHEMA.md DIAG-006): every command and
subcommand of the click app -- enumerated from the group, so a new command is covered the day
it is added -- run with mistaken arguments: missing paths, a file where a folder is expected
and the reverse, unreadable files, empty and non-TOML manifests, unknown names, bad numbers
and sizes, URLs of unknown schemes. Each must end with status 0, 1 or 2; any failure must say
what went wrong with a DM### code on stderr; none may raise out of the command (CliRunner with
``catch_exceptions=False``: an exception escaping a command fails the test) or print
``Traceback``. A certain mistake (a missing file, a non-number for a number, an unknown
choice) must fail. Most runs are in-process; a sample runs as real processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from datamanifest.cli import main
from datamanifest.cli._common import SECONDS

from .conftest import sha256_of

CODED = re.compile(r"\bDM\d{3}\b")


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield prefix + (name,), cmd  # a group alone, with a bad subcommand
            yield from _leaves(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


COMMANDS = {path: cmd for path, cmd in _leaves(main)}

# -- the mistakes ---------------------------------------------------------------------------------
#: (value, certain): a path-like mistake; ``certain``: wrong for any argument that must exist
PATHS = [("no/such/folder", True), ("missing.toml", True), ("plain.txt", False),
         ("afolder", False), ("sock", False), ("secret.toml", False), ("dangling", True),
         ("empty.toml", False), ("notoml.toml", False), ("binary.bin", False),
         ("wrongtypes.toml", False), ("future.toml", False), ("afolder/", False)]
NAMES = ["nosuchdataset", "", "a b/../..", "ü*[", "@@@"]
URLS = ["foo://bar/baz", "ftp://example.invalid/x", "http://[::1", "s3://", "gs://",
        "file://{world}/no/such/file", "https://127.0.0.1:1/refused.bin"]
NUMBERS = ["-1", "abc", "1e999", "0", "99999999999999999999", "nan", "1.5"]
SIZES = ["10XB", "-5M", "abc", "1.5.5G", "", "1e400"]

MANIFEST = """\
# a project for the fuzz
[_META]
schema = 1

[_STORAGE]
datasets_dir = "store"

[a]
uri = "src/a.txt"
checksum = "sha256:{a}"

[b]   # not fetched
uri = "src/b.csv"
"""


@pytest.fixture(scope="module")
def base_world(tmp_path_factory) -> Path:
    """A project with one fetched dataset and one not, and the mistaken files beside it."""
    w = tmp_path_factory.mktemp("fuzz") / "world"
    (w / "src").mkdir(parents=True)
    a = b"alpha\n" * 100
    (w / "src" / "a.txt").write_bytes(a)
    (w / "src" / "b.csv").write_bytes(b"x,y\n1,2\n")
    (w / "datamanifest.toml").write_text(MANIFEST.format(a=sha256_of(a)))
    (w / "plain.txt").write_text("just text\n")
    (w / "afolder").mkdir()
    (w / "afolder" / "inside.txt").write_text("inside\n")
    (w / "empty.toml").write_text("")
    (w / "notoml.toml").write_text("[[[ this is not TOML\nx = = 1\n")
    (w / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (w / "wrongtypes.toml").write_text('[_META]\nschema = 1\n\n[a]\nuri = 5\nrequires = "zz"\n'
                                       '[b]\nuri = "x.csv"\nchecksum = "md5:nothex"\n')
    (w / "future.toml").write_text("[_META]\nschema = 99\n\n[a]\nuri = \"a.csv\"\n")
    (w / "secret.toml").write_text("[_META]\nschema = 1\n")
    os.symlink("gone/target", w / "dangling")  # inside the world: writes through it stay there
    pytest.importorskip("xarray")
    from datamanifest.testing import appends as harness

    harness.make_slice(0, (4, 8)).to_netcdf(w / "slice.nc")
    r = subprocess.run([sys.executable, "-m", "datamanifest", "fetch", "a"], cwd=w,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return w


@pytest.fixture
def world(base_world: Path, tmp_path: Path, monkeypatch) -> Path:
    w = tmp_path / "world"
    shutil.copytree(base_world, w, symlinks=True)
    (w / "secret.toml").chmod(0)  # unreadable for anyone but root
    sock = socket.socket(socket.AF_UNIX)  # opening a socket file fails, even for root
    sock.bind(str(w / "sock"))
    monkeypatch.chdir(w)
    home = tmp_path / "home"
    home.mkdir()
    for k in list(os.environ):
        if k.startswith("DATAMANIFEST_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("DATAMANIFEST_LOCK_STALE_AGE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("DATAMANIFEST_SSH", "false")  # an ssh that fails at once
    import datamanifest.cli as cli

    monkeypatch.setattr(cli, "tune_gc", lambda: None)  # the test process keeps its gc
    yield w
    sock.close()


# -- the runs --------------------------------------------------------------------------------------
class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung("the command did not end within 30 s")


def _invoke(argv: list[str]) -> tuple[int, str, str]:
    """Run ``datamanifest ARGV`` in this process; an exception escaping the command fails."""
    runner = CliRunner()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        r = runner.invoke(main, argv, catch_exceptions=False, input="")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return r.exit_code, r.stdout, r.stderr


def _verdict(argv: list[str], code: int, out: str, err: str, certain: bool,
             protocol: bool = False) -> str | None:
    if "Traceback" in err or "Traceback" in out:
        return f"{argv}: a traceback: {err[-600:]}"
    if code not in (0, 1, 2):
        return f"{argv}: exit {code}: {err[-300:]}"
    if code and not CODED.search(err) and not (protocol and CODED.search(out)):
        return f"{argv}: exit {code} without a DM### code on stderr: {err[-300:]!r}"
    if certain and code == 0:
        return f"{argv}: a certain mistake succeeded: {out[-200:]!r} {err[-200:]!r}"
    return None


#: valid values of required options, given unless the option itself is fuzzed
REQUIRED = {("virtualize",): ["-o", "out.chunks.json"],
            ("receive",): ["--kind", "data", "--rel", "h/x.bin", "--key", "h/x.bin",
                           "--identity", "sha256:" + "0" * 64, "--file"]}
#: machine protocols: their errors are JSON lines on stdout (SYNC-006)
PROTOCOL = {("receive",)}
#: a value that is right for each command's positional arguments (others are "a")
VALID = {("check",): ["datamanifest.toml"], ("tree",): ["src"], ("mv",): ["a", "store2"],
         ("export",): ["exported"], ("init",): ["newproj"], ("import", "pooch"): ["reg.txt"],
         ("import", "dvc"): ["afolder"], ("import", "urls"): ["urls.txt"],
         ("append",): ["cube.zarr", "slice.nc"], ("virtualize",): ["slice.nc"],
         ("refs", "info"): ["x.chunks.json"], ("diff",): ["a", "a"], ("push",): ["a", "far"],
         ("pull",): ["a", "far"], ("config", "set"): ["datasets_dir", "store"],
         ("config", "unset"): ["datasets_dir"], ("schema",): ["manifest"],
         ("format",): ["datamanifest.toml"], ("migrate",): ["datamanifest.toml"]}


def _positionals(cmd: click.Command) -> list[click.Argument]:
    return [p for p in cmd.params if isinstance(p, click.Argument)]


def _value_options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option) and not p.is_flag
            and not p.count and p.name not in ("help",)]


def _option_values(opt: click.Option) -> list[tuple[str, bool]]:
    t = opt.type
    if isinstance(t, click.Choice):
        return [("nosuchchoice", True), ("", True)]
    if isinstance(t, (click.types.IntParamType, click.types.FloatParamType,
                      click.IntRange, click.FloatRange)):
        ints = isinstance(t, (click.types.IntParamType, click.IntRange))
        return [(v, v in ("abc", "nan") or (ints and v in ("1e999", "1.5"))) for v in NUMBERS]
    if isinstance(t, type(SECONDS)):
        return [(v, v in ("abc", "nan", "-1")) for v in NUMBERS]
    if isinstance(t, (click.Path, click.File)):
        must_exist = getattr(t, "exists", False)
        return [(v, must_exist and c) for v, c in PATHS]
    return [(v, False) for v in NAMES + URLS + SIZES[:3]] + [(v, False) for v, _ in PATHS[:4]]


def _cases(path: tuple[str, ...], cmd: click.Command, world: Path
           ) -> list[tuple[list[str], bool]]:
    """(argv, certain) pairs: every mistake in every positional argument (the others right),
    every mistake of its type in every option that takes a value, and every mistaken
    manifest given with -m. Absolute paths stay inside ``world``."""
    cases: list[tuple[list[str], bool]] = []
    if isinstance(cmd, click.Group):
        return [([*path, "nosuchcommand"], True), ([*path, "--nosuchoption"], True)]
    args = _positionals(cmd)
    valid = VALID.get(path, ["a"] * len(args))
    required = REQUIRED.get(path, [])
    cases.append(([*path, "--nosuchoption"], True))
    if any(a.required for a in args):
        cases.append(([*path, *required], True))  # a missing argument
    for i in range(len(valid)):  # each token of a right command line, mistaken in turn
        arg = args[min(i, len(args) - 1)]
        must_exist = isinstance(arg.type, click.Path) and arg.type.exists
        for value, certain in PATHS:
            argv = [*path, *valid[:i], value, *valid[i + 1:], *required]
            cases.append((argv, certain and must_exist))
        for value in NAMES + URLS:
            value = value.format(world=world)
            cases.append(([*path, *valid[:i], value, *valid[i + 1:], *required], False))
    for opt in _value_options(cmd):
        flag = max(opt.opts, key=len)
        others = [] if set(opt.opts) & set(required) else required
        for value, certain in _option_values(opt):
            cases.append(([*path, *valid, *others, flag, value.format(world=world)], certain))
    # the manifest itself mistaken (-m), for every command that opens the project
    for value, _ in PATHS:
        cases.append((["-m", value, *path, *valid, *required], False))
    return cases


#: cases per test: each test stays under ~10 s (an append that succeeds writes a cube)
CHUNK = {("append",): 25}
PARTS = [(path, k, n) for path in sorted(COMMANDS)
         for n in [-(-len(_cases(path, COMMANDS[path], Path("/w"))) // CHUNK.get(path, 50))]
         for k in range(n)]


@pytest.mark.covers("DIAG-006")
@pytest.mark.parametrize("path,part,parts", PARTS,
                         ids=[" ".join(p) + (f" {k + 1}/{n}" if n > 1 else "")
                              for p, k, n in PARTS])
def test_every_command_reports_mistaken_arguments_with_a_code(world, path, part, parts):
    bad = []
    size = CHUNK.get(path, 50)
    for argv, certain in _cases(path, COMMANDS[path], world)[part * size:(part + 1) * size]:
        code, out, err = _invoke(argv)
        why = _verdict(argv, code, out, err, certain, path in PROTOCOL)
        if why:
            bad.append(why)
    assert not bad, "\n".join(bad[:20]) + f"\n({len(bad)} in all)"


def test_the_enumeration_finds_every_command():
    names = {" ".join(p) for p in COMMANDS}
    assert {"fetch", "append", "virtualize", "push", "config set", "import pooch",
            "refs info", "conformance run"} <= names
    assert len(names) >= 35


#: the reported cases, run as a user would: real processes
SAMPLE = [
    ["push", "a", "no/such/folder"],
    ["append", "plain.txt", "src/a.txt"],
    ["append", "afolder", "src/a.txt"],
    ["virtualize", "src/a.txt", "-o", "afolder", "--format", "kerchunk-parquet"],
    ["check", "empty.toml", "notoml.toml"],
    ["-m", "notoml.toml", "fetch"],
    ["tree", "plain.txt", "-o", "afolder"],
    ["fetch", "nosuchdataset"],
]


@pytest.mark.covers("DIAG-006")
def test_a_sample_as_real_processes(world):
    bad = []
    for argv in SAMPLE:
        r = subprocess.run([sys.executable, "-m", "datamanifest", *argv], cwd=world,
                           capture_output=True, text=True, timeout=120)
        why = _verdict(argv, r.returncode, r.stdout, r.stderr, certain=True)
        if why:
            bad.append(why)
    assert not bad, "\n".join(bad)
