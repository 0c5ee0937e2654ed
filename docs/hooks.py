"""MkDocs hooks: the pages generated from the code and the spec, so they cannot drift.

Generated at every build (nothing generated is committed):

- ``reference/python.md``: one mkdocstrings entry per name of ``datamanifest.__all__``;
- ``reference/codes.md``: every diagnostic code of ``datamanifest.errors.CODES`` with its
  meaning (SCHEMA.md §9), its rule, an example (a conformance fixture that raises it, run
  through ``datamanifest check`` at build time, or the situation in ``docs/data/codes.toml``)
  and the fix (``docs/data/codes.toml``);
- ``reference/configuration.md``: the storage fields (SCHEMA.md RES-002), their environment
  variables, and every other ``DATAMANIFEST_*`` variable the code reads
  (``docs/data/environment.toml``);
- ``reference/schemas.md`` and the schema files themselves under ``reference/schemas/``;
- ``spec/index.md`` (SCHEMA.md with one anchor per rule ID), ``spec/rules.md`` (the rule
  index), ``spec/fixtures.md`` (fixtures/README.md);
- ``assets/charts/*.svg``: the benchmark charts, drawn by ``bench/charts.py`` from
  ``bench/results.json``; ``<!-- figures: NAME -->`` in a page becomes that benchmark's
  table and chart.

A gap (a code without a fix, a variable without a description, a rule cited by a code that
SCHEMA.md does not define) is logged as a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
import tomllib
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
DOCS = Path(__file__).resolve().parent
REPO_URL = "https://github.com/datamanifest/datamanifest/blob/main/"
log = logging.getLogger("mkdocs.plugins.datamanifest")

if str(ROOT / "src") not in sys.path:  # the checkout's code, whatever is installed
    sys.path.insert(0, str(ROOT / "src"))

RULE_LINE = re.compile(r"^(\s*)- \*\*([A-Z]+-\d+)\*\*", re.M)
HEADING = re.compile(r"^(#{2,3}) (.+)$", re.M)
CODE = re.compile(r"(?<![\w#/-])(DM\d{3})(?!\w)")


# -- helpers ---------------------------------------------------------------------------------

def _read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def _slug(title: str) -> str:
    """The anchor Python-Markdown's toc gives a heading (its default slugify)."""
    from markdown.extensions.toc import slugify

    return slugify(title, "-")


def _outside_code(text: str, fn) -> str:
    """Apply ``fn`` to the parts of a Markdown line outside `code spans`."""
    parts = re.split(r"(`+[^`]*`+)", text)
    return "".join(p if p.startswith("`") else fn(p) for p in parts)


def _link_codes(text: str, codes_page: str) -> str:
    """Bare DM### codes (outside code spans and fences) become links to their entry."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and not line.lstrip().startswith("#"):
            line = _outside_code(line, lambda p: CODE.sub(rf"[\1]({codes_page}#\1)", p))
        out.append(line)
    return "\n".join(out)


def _repo_links(text: str, base: str, local: dict[str, str]) -> str:
    """Rewrite relative links of a repository file (at ``base``) for the site: the ones in
    ``local`` to site pages, every other one to the file in the repository."""
    def fix(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(base, path)).replace(os.sep, "/")
        if full in local:
            return f"[{label}]({local[full]}{'#' + anchor if anchor else ''})"
        return f"[{label}]({REPO_URL}{full}{'#' + anchor if anchor else ''})"

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", fix, text)


def _schema_sections() -> list[tuple[str, str, str]]:
    """(rule ID, heading of its section, the rule's text) for every rule of SCHEMA.md."""
    text = _read("SCHEMA.md")
    out, section = [], ""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        h = HEADING.match(line)
        if h:
            section = h.group(2)
        m = RULE_LINE.match(line)
        if m:
            body = [line[m.end():]]
            indent = len(m.group(1)) + 2
            for nxt in lines[i + 1:]:
                if not nxt.strip() or RULE_LINE.match(nxt) or not nxt.startswith(" " * indent):
                    break
                body.append(nxt.strip())
            out.append((m.group(2), section, " ".join(body).strip()))
    return out


def _first_sentence(text: str, limit: int = 170) -> str:
    text = re.sub(r"\s+", " ", text)
    m = re.match(r"(.+?[.;:])(\s|$)", text)
    s = m.group(1) if m else text
    if len(s) > limit:
        s = s[:limit].rsplit(" ", 1)[0] + " ..."
    # a table cell: no pipes, no unbalanced code span
    s = s.replace("|", "\\|")
    if s.count("`") % 2:
        s = s.replace("`", "")
    return s


def _diag_table() -> dict[str, str]:
    """code -> its meaning in the SCHEMA.md §9 table."""
    out = {}
    for line in _read("SCHEMA.md").split("\n"):
        m = re.match(r"^\| (DM\d{3}) \| [A-Z]+-\d+ \| \w+ \| (.+) \|$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# -- the specification -----------------------------------------------------------------------

def spec_page() -> str:
    text = _read("SCHEMA.md")
    text = RULE_LINE.sub(lambda m: f"{m.group(1)}- [**{m.group(2)}**](#{m.group(2)})"
                                   f"{{#{m.group(2)} .dm-rule}}", text)
    text = _link_codes(text, "../reference/codes.md")
    text = _repo_links(text, ".", {"fixtures/README.md": "fixtures.md",
                                    "schemas/README.md": "../reference/schemas.md"})
    head = ("!!! info \"This page is SCHEMA.md\"\n    Rendered from the repository's "
            "`SCHEMA.md` at build time. Every rule has an anchor: `spec/#MAN-012` lands on "
            "rule MAN-012; the [rule index](rules.md) lists them all, and each `DM###` links "
            "to its [diagnostic code](../reference/codes.md).\n\n")
    return text.replace("\n---\n", "\n" + head, 1) if "\n---\n" in text else head + text


def rules_page() -> str:
    from datamanifest.errors import CODES

    index = json.loads(_read("fixtures/index.json"))
    cases: dict[str, int] = {}
    for case in index["cases"]:
        for rule in case["rules"]:
            cases[rule] = cases.get(rule, 0) + 1
    codes: dict[str, list[str]] = {}
    for code, (rule, _, _) in CODES.items():
        codes.setdefault(rule, []).append(code)
    rules = _schema_sections()
    known = {r for r, _, _ in rules}
    for rule in codes:
        if rule not in known:
            log.warning("rule %s is cited by %s but SCHEMA.md does not define it",
                        rule, ", ".join(codes[rule]))
    lines = ["# Rule index", "",
             f"All {len(rules)} rules of the [specification](index.md), in its order. "
             "**Level** is the strongest RFC 2119 word in the rule; **codes** the diagnostic "
             "codes that enforce it; **cases** how many conformance fixtures list it "
             "(the rules no data-in/data-out case can show are covered by the reference "
             "implementation's tests instead; see the [conformance guide](conformance.md)).",
             ""]
    section = None
    for rule, sec, body in rules:
        if sec != section:
            section = sec
            lines += ["", f"## {sec}", "", "| rule | level | summary | codes | cases |",
                      "|---|---|---|---|---|"]
        level = next((w for w in ("MUST NOT", "MUST", "SHALL", "REQUIRED", "SHOULD NOT",
                                  "SHOULD", "RECOMMENDED", "MAY", "OPTIONAL") if w in body), "")
        summary = _first_sentence(body)
        summary = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", summary)
        linked = ", ".join(f"[{c}](../reference/codes.md#{c})" for c in codes.get(rule, []))
        lines.append(f"| [{rule}](index.md#{rule}){{#{rule}}} | {level} | {summary} | "
                     f"{linked} | {cases.get(rule, '')} |")
    return "\n".join(lines) + "\n"


def fixtures_page() -> str:
    text = _read("fixtures/README.md")
    text = _repo_links(text, "fixtures", {"SCHEMA.md": "index.md",
                                          "schemas/README.md": "../reference/schemas.md"})
    text = _link_codes(text, "../reference/codes.md")
    note = ("!!! info \"This page is fixtures/README.md\"\n    The conformance suite's own "
            "description, rendered at build time. How to run it against your "
            "implementation: the [conformance suite guide](conformance.md).\n\n")
    title, _, rest = text.partition("\n")
    return f"{title}\n\n{note}{rest}"


# -- diagnostic codes ------------------------------------------------------------------------

def _fixture_examples() -> dict[str, dict]:
    """code -> the first conformance case that expects it (an error, else a warning)."""
    root = ROOT / "fixtures"
    index = json.loads((root / "index.json").read_text())
    found: dict[str, dict] = {}
    for case in index["cases"]:
        for f in case["files"]:
            if not f.endswith(".json"):
                continue
            for code in re.findall(r'"(?:code|error)":\s*"(DM\d{3})"', (root / f).read_text()):
                prior = found.get(code)
                # a reject case of a document is the clearest example: prefer it
                if prior is None or (prior["kind"] != "reject" and case["kind"] == "reject"):
                    found[code] = case
    return found


def _check_output(case: dict) -> tuple[str, str, str]:
    """(the document's name, its text, what `datamanifest check` prints for it)."""
    from click.testing import CliRunner

    from datamanifest.cli import main

    doc = next(f for f in case["files"] if not f.endswith(".expected.json"))
    folder = ROOT / "fixtures" / Path(doc).parent
    name = Path(doc).name
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["check", name], catch_exceptions=False)
    finally:
        os.chdir(cwd)
    out = "\n".join(line for line in (result.stdout + result.stderr).splitlines()
                    if not line.startswith(("ok:", "problems:")) and line.strip())
    return name, (folder / name).read_text(encoding="utf-8"), out


def codes_page() -> str:
    from datamanifest.errors import CODES

    data = tomllib.loads((DOCS / "data" / "codes.toml").read_text(encoding="utf-8"))
    meanings = _diag_table()
    examples = _fixture_examples()
    rules = {r: (s, b) for r, s, b in _schema_sections()}
    lines = ["# Diagnostic codes", "",
             "Every problem datamanifest reports carries one of these stable codes, in the "
             "text form `FILE:LINE:COL: SEVERITY DM### MESSAGE (HINT)` or as JSON "
             "(`datamanifest check --json`; SCHEMA.md [DIAG-003](../spec/index.md#DIAG-003)). "
             "In Python, every error is a `datamanifest.DataManifestError` whose `code` is one "
             "of them. Codes are never reused or renumbered.", "",
             "This page is generated from the implementation's code table and the "
             "specification's §9 table. An example with a document is a case of the "
             "[conformance suite](../spec/fixtures.md), run through `datamanifest check` when "
             "this site was built.", "",
             "| code | severity | rule | meaning |", "|---|---|---|---|"]
    for code in sorted(CODES):
        rule, severity, title = CODES[code]
        lines.append(f"| [{code}](#{code}) | {severity} | [{rule}](../spec/index.md#{rule}) "
                     f"| {meanings.get(code, title)} |")
    for code in sorted(CODES):
        rule, severity, title = CODES[code]
        entry = data.get(code, {})
        if code not in meanings:
            log.warning("%s is in datamanifest.errors.CODES but not in the SCHEMA.md §9 table",
                        code)
        if "fix" not in entry:
            log.warning("%s has no fix in docs/data/codes.toml", code)
        section, body = rules.get(rule, ("", ""))
        lines += ["", f"## {code}: {title} {{#{code}}}", "",
                  f"**{severity}** · rule [{rule}](../spec/index.md#{rule})"
                  + (f" ({section})" if section else ""), "",
                  f"**Meaning.** {meanings.get(code, title)}.", ""]
        if body:
            quoted = _link_codes(body, "")  # links to the entries of this page
            lines += [f"> **{rule}** {quoted}", ""]
        case = examples.get(code)
        if case and case["kind"] in ("parse", "reject") and case.get("type", "manifest"):
            name, text, out = _check_output(case)
            lines += [f"**Example** (conformance case `{case['id']}`):", "",
                      f'```toml title="{name}"', text.rstrip(), "```", "",
                      "```text", f"$ datamanifest check {name}", out, "```", ""]
        elif case:
            f = next(f for f in case["files"] if f.endswith(".json"))
            doc = json.loads((ROOT / "fixtures" / f).read_text())
            lines += [f"**Example** (conformance case `{case['id']}`, kind "
                      f"`{case['kind']}`): {doc.get('description', '').rstrip('.')}.", "",
                      "```json", json.dumps({"input": doc.get("input"),
                                             "expected": doc.get("expected")},
                                            indent=1, ensure_ascii=False)[:1500], "```", ""]
        elif "example" in entry:
            lines += [f"**Example.** {entry['example'].strip()}", ""]
            if "output" in entry:
                lines += ["```text", entry["output"].rstrip(), "```", ""]
        else:
            log.warning("%s has no example: no fixture raises it and docs/data/codes.toml "
                        "gives none", code)
        if "fix" in entry:
            lines += [f"**Fix.** {entry['fix'].strip()}", ""]
    for code in data:
        if code not in CODES:
            log.warning("docs/data/codes.toml describes %s, which is not a code", code)
    return "\n".join(lines) + "\n"


# -- configuration and environment ------------------------------------------------------------

def configuration_page() -> str:
    text = _read("SCHEMA.md")
    table = re.search(r"\*\*RES-002\*\*.*?\n\n((?:[ ]*\|[^\n]*\n)+)", text, re.S)
    if not table:
        log.warning("SCHEMA.md RES-002 has no table of storage fields")
        return "# Configuration\n"
    rows = [r.strip() for r in table.group(1).strip().split("\n")]
    fields = [re.match(r"\| `(\w+)`", r).group(1) for r in rows[2:]]
    env = tomllib.loads((DOCS / "data" / "environment.toml").read_text(encoding="utf-8"))
    used = set()
    for path in (ROOT / "src" / "datamanifest").rglob("*.py"):
        used |= set(re.findall(r"(?<![A-Z])_?DATAMANIFEST_[A-Z_]*[A-Z]", path.read_text(encoding="utf-8")))
    derived = {f"DATAMANIFEST_{f.upper()}" for f in fields}
    for name in sorted(used - derived - set(env)):
        log.warning("the code reads %s but docs/data/environment.toml does not describe it",
                    name)
    for name in sorted(set(env) - used):
        log.warning("docs/data/environment.toml describes %s, which the code never reads", name)
    out = [
        "# Configuration and environment", "",
        "Storage is per machine; the manifest is shared. Each storage field resolves to the "
        "first of these rungs that sets it ([RES-001](../spec/index.md#RES-001)): the "
        "environment variable, the checkout's host section, the checkout's file "
        "(`.datamanifest/config.toml`), the manifest's `[_STORAGE._HOST.\"<glob>\"]`, the "
        "manifest's `[_STORAGE]`, the user file's host section, the user file "
        "(`$XDG_CONFIG_HOME/datamanifest/config.toml`), the default. "
        "`datamanifest where` prints each field with the rung that set it; "
        "`datamanifest config set FIELD VALUE [--host GLOB] [--user]` writes a file "
        "([how-to](../how-to/per-machine.md)).", "",
        "## Storage fields {#storage-fields}", "",
        "The fields of `[_STORAGE]` and of both configuration files "
        "([RES-002](../spec/index.md#RES-002)), generated from the specification:", "",
        *rows, "",
        "A value of the wrong type is [DM061](codes.md#DM061); a misspelt field is "
        "[DM010](codes.md#DM010) and refuses every dataset of the run "
        "([CFG-003](../spec/index.md#CFG-003)).", "",
    ]
    for f in fields:
        out.append(f"- [`{f}`](#{f}){{#{f}}}: `DATAMANIFEST_{f.upper()}` in the environment "
                   "overrides it.")
    out += ["", "## Environment variables {#environment}", "",
            "| variable | what it does |", "|---|---|"]
    for f in fields:
        out.append(f"| [`DATAMANIFEST_{f.upper()}`](#DATAMANIFEST_{f.upper()})"
                   f"{{#DATAMANIFEST_{f.upper()}}} | overrides "
                   f"the storage field [`{f}`](#{f}) (arrays: separated by `:` on POSIX, `;` "
                   "on Windows) |")
    for name, entry in sorted(env.items()):
        out.append(f"| [`{name}`](#{name}){{#{name}}} | {entry['what'].strip()} |")
    out += ["", "## Other configuration documents", "",
            "- **Append configurations** (`*.append.toml`): the keys of "
            "[§26.1](../spec/index.md#261-configuration), validated by `datamanifest check`.",
            "- **Produced-dataset sidecars** (`config.toml`, `metadata.toml` in each artifact "
            "folder): [§16](../spec/index.md#16-produced-dataset-sidecars).",
            "- The JSON Schemas of every document: [JSON Schemas](schemas.md).", ""]
    return "\n".join(out)


# -- JSON Schemas ----------------------------------------------------------------------------

def schema_files() -> list[Path]:
    return sorted((ROOT / "schemas").glob("*.json"))


def schemas_page() -> str:
    out = ["# JSON Schemas", "",
           "The JSON Schemas (draft 2020-12) of every document type, generated from "
           "`schemas/` at build time. `datamanifest schema TYPE` prints one; each file "
           "below is also served as is (link on its name). How they fit with `check`: "
           "[SCHEMA.md §10](../spec/index.md#10-json-schemas).", "",
           "| file | title | `$id` |", "|---|---|---|"]
    docs = []
    for path in schema_files():
        doc = json.loads(path.read_text(encoding="utf-8"))
        anchor = path.stem.replace(".", "-")
        out.append(f"| [{path.name}](#{anchor}) | {doc.get('title', '')} | "
                   f"`{doc.get('$id', '')}` |")
        docs.append((path, doc, anchor))
    for path, doc, anchor in docs:
        props = doc.get("properties", {})
        out += ["", f"## {path.name} {{#{anchor}}}", "",
                doc.get("description", doc.get("title", "")), "",
                f"[Download {path.name}](schemas/{path.name})", ""]
        if props:
            out += ["| top-level member | type | description |", "|---|---|---|"]
            for k, v in props.items():
                t = v.get("type", v.get("$ref", "").rsplit("/", 1)[-1] or "")
                d = (v.get("description") or "").replace("|", "\\|").replace("\n", " ")
                out.append(f"| `{k}` | {', '.join(t) if isinstance(t, list) else t} | {d} |")
            out.append("")
        out += ['??? note "The schema"', "", "    ```json"]
        out += ["    " + line for line in path.read_text(encoding="utf-8").rstrip().split("\n")]
        out += ["    ```", ""]
    readme = _read("schemas/README.md")
    readme = _repo_links(readme, "schemas", {"SCHEMA.md": "../spec/index.md"})
    readme = _link_codes(readme, "codes.md")
    readme = re.sub(r"^#", "##", readme, flags=re.M)
    out += ["", "---", "", readme]
    return "\n".join(out)


# -- the Python API --------------------------------------------------------------------------

#: the names of ``datamanifest.__all__`` that only a feature extra makes importable (their
#: modules need numpy, zarr, ...), with the module that defines each: the page names them
#: without importing them, because ``make docs`` installs the ``docs`` extra alone and
#: mkdocstrings reads the source. tests/test_docs_site.py keeps this table equal to what
#: importing them gives, and builds the site with every feature extra's modules absent.
DEFINED_IN = {
    "open_virtual": "datamanifest.virtual.store",
    "virtualize": "datamanifest.virtual.build",
    "ChunkStore": "datamanifest.virtual.zarrstore",
    "append": "datamanifest.appends",
}


def python_page() -> str:
    import datamanifest

    out = ["# Python API", "",
           "Everything `import datamanifest` offers: the names of `datamanifest.__all__`, in "
           "its order, documented from their docstrings when this site was built. Errors "
           "are `datamanifest.DataManifestError` subclasses with a stable "
           "[code](codes.md). Anything not listed here is internal and may move.", ""]
    for name in datamanifest.__all__:
        obj = None if name in DEFINED_IN else getattr(datamanifest, name)
        if name == "__version__":
            # (an attribute list would read the underscores as emphasis: a raw anchor)
            out += ['<a id="datamanifest.__version__"></a>', "",
                    "## `datamanifest.__version__`", "",
                    "The version of this package, a string (the one `datamanifest "
                    f"--version` prints; `{obj}` when this site was built).", ""]
            continue
        module = isinstance(obj, type(datamanifest))
        target = f"{DEFINED_IN[name]}.{name}" if obj is None else obj.__name__ if module \
            else f"{obj.__module__}.{obj.__qualname__}"
        out += [f"## `datamanifest.{name}` {{#datamanifest.{name}}}", "",
                f"::: {target}", "    options:", "      show_root_heading: false",
                "      show_root_toc_entry: false", "      heading_level: 3",
                "      inherited_members: true",  # Project's operations live in a base class
                "      show_signature: true", ""]
        if module:
            out += ["      members: false", ""]
    return "\n".join(out)


# -- benchmark figures -----------------------------------------------------------------------

def _bench(name: str = "charts"):
    """bench/charts.py or bench/table.py (plain modules without dependencies)."""
    spec = importlib.util.spec_from_file_location(f"dm_bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_charts = _bench


def _results() -> dict:
    return json.loads(_read("bench/results.json"))


def figures_markdown(name: str, results: dict) -> str:
    bench = results["benchmarks"].get(name) or results.get("reliability", {}).get(name)
    if bench is None:
        log.warning("a page asks for the figures of %r, which bench/results.json lacks", name)
        return ""
    cols = bench["columns"]
    lines = [f"```console title=\"Not run in the tests: a benchmark ({bench.get('duration', 'minutes')})\"",
             f"$ {bench['command']}", "```", "",
             bench.get("what", ""), "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in bench["rows"]:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    lines.append("")
    if bench.get("chart") or _charts().chart_from_figures(bench.get("figures")):
        lines += [f"![{bench['title']}](/assets/charts/{name}.svg){{ .dm-chart }}", ""]
    lines.append(f"*Measured {bench['measured']} ({bench['source']}).*")
    return "\n".join(lines) + "\n"


# -- the hooks -------------------------------------------------------------------------------

GENERATED = {
    "reference/python.md": python_page,
    "reference/codes.md": codes_page,
    "reference/configuration.md": configuration_page,
    "reference/schemas.md": schemas_page,
    "spec/index.md": spec_page,
    "spec/rules.md": rules_page,
    "spec/fixtures.md": fixtures_page,
}


def on_files(files: Files, config) -> Files:
    for uri, make in GENERATED.items():
        files.append(File.generated(config, uri, content=make()))
    for path in schema_files():
        files.append(File.generated(config, f"reference/schemas/{path.name}",
                                    abs_src_path=str(path)))
    charts = _charts().render_all(_results())
    for name, svg in charts.items():
        files.append(File.generated(config, f"assets/charts/{name}.svg", content=svg))
    return files


def figures_table(results: dict) -> str:
    """Every figure of every benchmark in one table (bench/table.py; bench/results.md)."""
    table = _bench("table")
    return "\n".join([table.legend(results), "", *table.table(results)]) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- figures-table -->" in markdown:
        markdown = markdown.replace("<!-- figures-table -->", figures_table(_results()))
    if "<!-- figures:" not in markdown:
        return markdown
    results = _results()
    prefix = "../" * page.file.src_uri.count("/")  # relative to the page's source file

    def sub(m: re.Match) -> str:
        return figures_markdown(m.group(1), results).replace("(/assets/", f"({prefix}assets/")

    return re.sub(r"<!-- figures: ([\w-]+) -->", sub, markdown)


