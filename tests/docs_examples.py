"""Run the examples of a Markdown page (README.md, docs/pages/**.md) as a reader would.

One page is one session, in order, in a fresh project folder, against a loopback HTTP server
that serves real files from packages (what `make demo` serves) as ``https://example.org/``.
What a page's fenced blocks mean:

- ``console``: each ``$ COMMAND`` line runs (``\\`` continues a line). A ``datamanifest``
  line without shell syntax runs in-process (click's runner); ``cd DIR`` changes the
  session's folder; anything else runs in ``bash`` with this environment's ``bin/`` first on
  ``PATH`` (so ``python`` and ``datamanifest`` are the ones under test). The lines shown
  under a command are its expected output: each non-blank one must appear, in order, in
  what the command printed (stdout and stderr; runs of spaces count as one; ``...`` matches
  anything). Exit status: 1 with that code when a shown line has ``error DM###``, the
  number of a ``# exit N`` comment, else 0.
- ``python``: executed in one namespace per page, in the session's folder.
- a block whose title is a file name (```` ```toml title="datamanifest.toml" ````) is
  written to that file (and, for ``python``, not executed).
- a block whose title starts with ``Not run`` is skipped; the title (shown on the page)
  gives the reason. Other languages (``text``, ``mermaid``, ...) are not examples.

What is substituted, and nothing else: ``https://example.org/`` by the loopback server, the
reader's folders (``/home/me/project`` is the
session's project folder, ``/home/me`` its home), the page's front-matter ``examples.subs`` (``{http}``, ``{tmp}``, ``{ssh}`` expanded), and a
version written ``TARGET@<hex>`` that is not a real version by a real one (the first such
placeholder of a target is its oldest version, the next its newest), as ``datamanifest
versions TARGET`` lists them. Front matter (``examples:``): ``needs`` (fixtures: ``ssh``,
``s3``), ``subs``, ``env``, ``rate`` (served path -> bytes per second: a slow link, so that
a download can be interrupted midway). In ``subs``, ``{host}`` is the server's
``host:port``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                   re.M | re.S)
SHELL_SYNTAX = re.compile(r"[|<>;&`$(){}*?]")
ERROR_CODE = re.compile(r"error (DM\d{3})")


@dataclass
class Block:
    lang: str
    title: str
    code: str
    line: int

    @property
    def not_run(self) -> bool:
        return self.title.lower().startswith("not run")

    @property
    def file(self) -> str | None:
        t = self.title
        return t if t and " " not in t and ("." in t or "/" in t) and not self.not_run else None


def split_page(text: str) -> tuple[dict, list[Block]]:
    """(front matter, the fenced blocks) of a Markdown page."""
    meta: dict = {}
    if text.startswith("---\n"):
        head, _, text_rest = text[4:].partition("\n---\n")
        meta = yaml.safe_load(head) or {}
        offset = head.count("\n") + 2
        text = "\n" * offset + text_rest
    blocks = []
    for m in FENCE.finditer(text):
        info = m.group("info").strip()
        lang = info.split()[0] if info else ""
        t = re.search(r'title="([^"]*)"', info)
        indent = len(m.group("indent"))
        body = "\n".join(line[indent:] for line in m.group("body").split("\n"))
        blocks.append(Block(lang, t.group(1) if t else "", body,
                            text[:m.start()].count("\n") + 1))
    return meta.get("examples", {}) or {}, blocks


def console_lines(code: str) -> list[tuple[str, str]]:
    """(command, the output shown under it) for each ``$`` line of a console block."""
    out: list[tuple[str, str]] = []
    pending = None
    for line in code.splitlines():
        if pending is not None:
            pending += "\n" + line
            if not line.endswith("\\"):
                out.append((pending.replace("\\\n", " "), ""))
                pending = None
            continue
        if line.startswith("$ "):
            if line.endswith("\\"):
                pending = line[2:]
            else:
                out.append((line[2:], ""))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + line + "\n")
    return out


def shown_matches(shown: str, actual: str) -> str | None:
    """None when every non-blank shown line appears in order in ``actual``; else the first
    line that does not."""
    lines = [re.sub(r"\s+", " ", a).strip() for a in actual.splitlines()]
    pos = 0
    for want in shown.splitlines():
        want = re.sub(r"\s+", " ", want).strip()
        if not want or want == "...":
            continue
        pattern = re.compile(".*".join(re.escape(p) for p in want.split("...")))
        for i in range(pos, len(lines)):
            if pattern.search(lines[i]):
                pos = i + 1
                break
        else:
            return want
    return None


# -- the files a page can fetch ----------------------------------------------------------------

def stage_served(served: Path) -> None:
    """The real files of ``make demo`` (and a few more) under ``served``: IERS tables, xarray's
    NetCDF samples (and a tar.gz of two), the NEMO and OSTIA files of iris-sample-data."""
    from datamanifest.demo import _package_file

    (served / "iers").mkdir(parents=True, exist_ok=True)
    for name in ("finals2000A.all", "Leap_Second.dat"):
        shutil.copy(_package_file("astropy_iers_data", "data", name), served / "iers" / name)
    (served / "xarray").mkdir(exist_ok=True)
    for name in ("example_1.nc", "bears.nc"):
        shutil.copy(_package_file("xarray", "tests", "data", name), served / "xarray" / name)
    with tarfile.open(served / "xarray" / "netcdf-samples.tar.gz", "w:gz") as tf:
        for name in ("example_1.nc", "bears.nc"):
            tf.add(served / "xarray" / name, arcname=f"samples/{name}")
    (served / "nemo").mkdir(exist_ok=True)
    for f in sorted(_package_file("iris_sample_data", "sample_data", "NEMO").glob("*.nc")):
        shutil.copy(f, served / "nemo" / f.name)
    (served / "ostia").mkdir(exist_ok=True)
    shutil.copy(_package_file("iris_sample_data", "sample_data", "ostia_monthly.nc"),
                served / "ostia" / "ostia_monthly.nc")


# -- a session ---------------------------------------------------------------------------------

@dataclass
class Session:
    """One page's run: its folder, substitutions and Python namespace."""

    page: str
    folder: Path
    subs: dict[str, str]
    bin_dir: str = field(default_factory=lambda: os.path.dirname(sys.executable))
    scope: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    ran: int = 0

    def sub(self, text: str) -> str:
        for old, new in sorted(self.subs.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(old, new)
        return text

    def unsub(self, text: str) -> str:
        for old, new in sorted(self.subs.items(), key=lambda kv: -len(kv[1])):
            text = text.replace(new, old)
        return text

    def where(self, block: Block) -> str:
        return f"{self.page}:{block.line}"

    # blocks
    def run(self, block: Block) -> None:
        if block.not_run:
            return
        if block.file:
            path = self.folder / self.sub(block.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.sub(block.code), encoding="utf-8")
            return
        if block.lang == "python":
            self.python(block)
        elif block.lang == "console":
            for command, shown in console_lines(block.code):
                self.command(block, command, shown)

    def python(self, block: Block) -> None:
        old = os.getcwd()
        os.chdir(self.folder)
        try:
            code = compile(self.sub(block.code), self.where(block), "exec")
            exec(code, self.scope)  # noqa: S102 - the page's example
        finally:
            os.chdir(old)
        self.ran += 1

    def _version_placeholders(self, command: str) -> str:
        def real(m: re.Match) -> str:
            target, prefix = m.group(1), m.group(2)
            key = f"{target}@{prefix}"
            if key not in self.versions:
                rows = json.loads(self._invoke(["versions", target, "--json"])[1])
                taken = sum(1 for k in self.versions if k.startswith(target + "@"))
                known = [r["checksum"].partition(":")[2] for r in rows]
                if any(k.startswith(prefix) for k in known):
                    self.versions[key] = prefix
                else:
                    self.versions[key] = known[0 if taken == 0 else -1][:8]
            return f"{target}@{self.versions[key]}"

        return re.sub(r"(?<![\w/])([\w.\-/]+)@([0-9a-f]{4,})\b", real, command)

    def _invoke(self, args: list[str]) -> tuple[int, str, str]:
        from click.testing import CliRunner

        from datamanifest.cli import main

        old = os.getcwd()
        os.chdir(self.folder)
        try:
            r = CliRunner().invoke(main, args, catch_exceptions=False)
        finally:
            os.chdir(old)
        return r.exit_code, r.stdout, r.stderr

    def command(self, block: Block, command: str, shown: str) -> None:
        line = self.sub(command)
        status = re.search(r"#\s*exit (\d+)", line)
        want = int(status.group(1)) if status else (1 if ERROR_CODE.search(shown) else 0)
        words = shlex.split(line, comments=True)
        if words[0] == "cd":
            self.folder = (self.folder / words[1]).resolve()
            return
        line = self._version_placeholders(line)
        words = shlex.split(line, comments=True)
        body = re.sub(r"\s+#[^'\"]*$", "", line)  # the line without its trailing comment
        if words[0] == "datamanifest" and not SHELL_SYNTAX.search(body):
            code, out, err = self._invoke(words[1:])
        else:
            env = dict(os.environ)
            env["PATH"] = self.bin_dir + os.pathsep + env.get("PATH", "")
            p = subprocess.run(["bash", "-o", "pipefail", "-c", body], cwd=self.folder, env=env,
                               capture_output=True, text=True, timeout=120)
            code, out, err = p.returncode, p.stdout, p.stderr
        actual = self.unsub(out + err)
        if os.environ.get("DOCS_EXAMPLES_LOG"):  # for writing a page: what each line printed
            with open(os.environ["DOCS_EXAMPLES_LOG"], "a") as log:
                log.write(f"{self.where(block)}: $ {command}  [exit {code}]\n{actual}\n")
        context = f"{self.where(block)}: $ {command}\n--- printed:\n{actual}"
        assert code == want, f"exit {code}, expected {want}\n{context}"
        expected = ERROR_CODE.search(shown)
        if expected:
            assert expected.group(1) in actual, context
        missing = shown_matches(shown, actual)
        assert missing is None, f"not printed: {missing!r}\n{context}"
        self.ran += 1


def run_page(page: Path, rel: str, folder: Path, base_url: str, extra_subs: dict[str, str],
             text: str | None = None) -> Session:
    """Run every example of ``page`` in ``folder``; returns the session (for its counts)."""
    meta, blocks = split_page(text if text is not None else page.read_text(encoding="utf-8"))
    subs = {"https://example.org/": base_url, "/example.org/": "/127.0.0.1/",
            "/home/me/project": str(folder),
            "/home/me": os.environ.get("HOME", str(folder.parent / "home"))}
    fill = {"http": base_url.rstrip("/"), "host": urlsplit(base_url).netloc,
            "tmp": str(folder.parent),
            "home": os.environ.get("HOME", ""), **extra_subs}
    for old, new in (meta.get("subs") or {}).items():
        subs[old] = new.format(**fill)
    session = Session(rel, folder, subs)
    for block in blocks:
        session.run(block)
    return session
