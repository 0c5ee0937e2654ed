"""How datamanifest's objects show in a notebook and a console (SCHEMA.md §28 INT-030).

Each object of the Python surface that a notebook user holds has a one-line ``__repr__``
and a ``_repr_html_`` (the method Jupyter, VS Code and other front ends call): a static
HTML fragment of headings, definition lists and tables with inline styles only -- no
script, no external resource -- so it reads the same in a trusted notebook, an untrusted
one, an exported HTML file and GitHub's notebook viewer.

* :func:`project_html` -- a :class:`~datamanifest.project.Project`: its datasets, their
  states and sizes, where they are (what ``datamanifest status`` prints);
* a chunk manifest's HTML is :func:`datamanifest.virtual.document.html` (it reads each
  source's identity, CHK-011), built from the helpers here;
* :func:`artifact_html` -- a produced artifact: identity, parameters, formats, path;
* :func:`append_status_html` -- an append target: length, steps, last version, a pending
  transaction and the lock holder.

Every value shown is escaped; long lists are cut at :data:`MAX_ROWS` rows with a count.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

# sizes in the one unit family of the CLI and the progress bars (B, KiB, ... PiB)
from .progress import human_size

#: rows shown in one table before "… N more"
MAX_ROWS = 200

_BOX = "font-family:system-ui,sans-serif;font-size:13px;line-height:1.4"
_TABLE = "border-collapse:collapse;margin:4px 0 8px 0"
_CELL = "border:1px solid #d0d7de;padding:2px 8px;text-align:left"
_HEAD = _CELL + ";background:#f6f8fa"
_MONO = "font-family:monospace"
#: state -> colour; the state's word is always written too (colour is never the only cue)
_STATE_COLOUR = {"error": "#cf222e", "present": "#1a7f37", "ok": "#1a7f37", "external": "#57606a",
                 "missing": "#cf222e", "changed": "#cf222e", "unreachable": "#cf222e",
                 "incomplete": "#9a6700", "outdated": "#9a6700", "absent": "#cf222e",
                 "pending": "#9a6700", "locked": "#9a6700"}


def esc(value: Any) -> str:
    """A value as HTML text (``None`` as an em dash)."""
    return "\u2014" if value is None or value == "" else html.escape(str(value), quote=True)


def state_html(state: str) -> str:
    """A state word, coloured by what it means."""
    word = str(state).split(" ", 1)[0]
    colour = _STATE_COLOUR.get(word, "#24292f")
    return f'<span style="color:{colour};font-weight:600">{esc(state)}</span>'


def code(value: Any) -> str:
    return f'<code style="{_MONO}">{esc(value)}</code>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, total: int | None = None,
          caption: str | None = None) -> str:
    """An HTML table; cells are HTML already (escape them with :func:`esc`). At most
    :data:`MAX_ROWS` rows; ``total`` (the number of rows there are) adds a "more" row."""
    out = [f'<table style="{_TABLE}">']
    if caption:
        out.append(f'<caption style="text-align:left;font-weight:600">{caption}</caption>')
    out.append("<thead><tr>" + "".join(f'<th style="{_HEAD}">{esc(h)}</th>' for h in headers)
               + "</tr></thead><tbody>")
    n = 0
    for row in rows:
        if n == MAX_ROWS:
            break
        out.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in row) + "</tr>")
        n += 1
    if total is not None and total > n:
        out.append(f'<tr><td style="{_CELL}" colspan="{len(headers)}">\u2026 '
                   f"{total - n} more</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table of name / value (values are HTML already)."""
    return table(["field", "value"], [(esc(k), v) for k, v in pairs])


def box(title: str, summary: str, *parts: str) -> str:
    """The outer frame: a title line (HTML), a summary (HTML) and the parts."""
    return (f'<div class="datamanifest-repr" style="{_BOX}"><p style="margin:0 0 4px 0">'
            f"<strong>{title}</strong> {summary}</p>{''.join(parts)}</div>")


def _counts(states: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in states:
        word = s.split(" ", 1)[0]
        counts[word] = counts.get(word, 0) + 1
    return counts


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


# -- project ---------------------------------------------------------------------------------------------
def project_repr(project: Any) -> str:
    """``<Project PATH: N datasets (2 present, 1 missing)>`` -- reads no store."""
    n = len(project.manifest.datasets)
    return f"<Project {project.manifest_path}: {n} dataset{'s' if n != 1 else ''}>"


def project_html(project: Any) -> str:
    """The project as HTML: each dataset's name, state, size, where it is and its
    checksum (the rows of :meth:`~datamanifest.project.Project.status`)."""
    from .errors import DataManifestError

    try:
        rows = project.status()
    except DataManifestError as e:  # a storage setting that does not resolve (DM060, DM061)
        return box("datamanifest project", code(project.manifest_path),
                   f"<p>{state_html('error')} {esc(e.render())}</p>")
    counts = _counts(r["status"] for r in rows)
    cells = []
    for r in rows[:MAX_ROWS]:
        cells.append((code(r["name"]), state_html(r["status"]), esc(human_size(r.get("size"))
                                                                    if r.get("size") is not None
                                                                    else None),
                      code(r.get("path")), code(r.get("checksum"))))
    summary = f"{code(project.manifest_path)} \u2014 {len(rows)} dataset(s)"
    if counts:
        summary += ": " + esc(_summary(counts))
    return box("datamanifest project", summary,
               table(["dataset", "state", "size", "path", "checksum"], cells, total=len(rows)))


# -- produced artifact -------------------------------------------------------------------------------------
def artifact_parameters(artifact: Any) -> dict[str, Any] | None:
    """The artifact's parameters: as given, else its config.toml key table (SC-001)."""
    if getattr(artifact, "parameters", None) is not None:
        return dict(artifact.parameters)
    import tomllib

    try:
        doc = tomllib.loads(artifact.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return {k: v for k, v in doc.items() if k != "_META"}


def artifact_repr(artifact: Any) -> str:
    state = f"present ({artifact.source})" if artifact.present else "absent"
    formats = ", ".join(artifact.formats) or artifact.data_file.suffix.lstrip(".")
    return f"<Artifact {artifact.identity.cache_key}: {state}, {formats}, {artifact.folder}>"


def artifact_html(artifact: Any) -> str:
    """A produced artifact as HTML: identity, state, parameters, formats and paths."""
    ident = artifact.identity
    state = f"present ({artifact.source})" if artifact.present else "absent"
    params = artifact_parameters(artifact)
    parts = [fields([("cachetype", code(ident.cachetype)), ("version", code(ident.version)),
                     ("hash", code(ident.hash)), ("state", state_html(state)),
                     ("folder", code(artifact.folder)), ("data file", code(artifact.data_file))])]
    if params is not None:
        parts.append(table(["parameter", "value"], [(code(k), code(repr(v)))
                                                    for k, v in params.items()],
                           total=len(params), caption="parameters"))
    if artifact.formats:
        parts.append(table(["format", "file", "size", "checksum"],
                           [(code(f), code(d.get("file")), esc(human_size(d.get("size"))),
                             code(d.get("checksum"))) for f, d in artifact.formats.items()],
                           caption="formats"))
    return box("produced artifact", code(ident.cache_key) + " \u2014 " + state_html(state),
               *parts)


# -- append target ---------------------------------------------------------------------------------------------
def append_status_repr(st: Any) -> str:
    if not st.exists:
        return f"<append target {st.target}: absent>"
    steps = len(st.steps or [])
    return (f"<append target {st.target}: {st.append_dim} length {st.length}, "
            f"{len(st.variables)} variable(s), {steps} step(s), version {st.version or '-'}"
            f"{', pending ' + str(st.pending.get('txn')) if st.pending else ''}"
            f"{', locked' if st.lock else ''}>")


def append_status_html(st: Any) -> str:
    """An append target's status as HTML: length along the append dimension, variables,
    the committed steps (one per recorded version, newest first), the last version, a
    pending transaction and the lock holder."""
    if not st.exists:
        return box("append target", code(st.target) + " \u2014 " + state_html("absent"))
    steps = list(st.steps or [])
    last = steps[-1] if steps else None
    pending = st.pending
    rows = [("append dimension", code(st.append_dim)), ("length", esc(st.length)),
            ("zarr format", esc(st.zarr_format)),
            ("variables", esc(", ".join(st.variables))),
            ("steps", esc(len(steps))),
            ("last version", code(st.version) + (f" at {esc(last['time'])}" if last else "")),
            ("pending transaction",
             state_html(f"pending {pending.get('txn')}") +
             esc(f": length {pending.get('committed_length')} \u2192 "
                 f"{pending.get('new_length')}") if pending else esc("none")),
            ("lock", state_html("locked") + esc(f" by {st.lock.get('owner') or st.lock}")
             if st.lock else esc("none"))]
    newest = list(reversed(steps))
    step_rows = [(esc(len(steps) - i), code(s["checksum"]), esc(s["time"]), esc(s["entries"]),
                  esc("kept" if s.get("kept") else "pruned")) for i, s in enumerate(newest)]
    summary = (f"{code(st.target)} \u2014 {esc(st.append_dim)} length {esc(st.length)}, "
               f"{len(steps)} step(s)")
    return box("append target", summary, fields(rows),
               table(["step", "version", "time", "entries", "manifest"], step_rows,
                     total=len(step_rows), caption="steps (newest first)"))
