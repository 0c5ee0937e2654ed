"""``import pooch|dvc|urls``: declare many datasets from another tool's list (AUT-010..AUT-013).

The lists are parsed by the pure :mod:`datamanifest.spec.author`; this module reads
the files, lists DVC directory outputs, adopts bytes already on this machine (a pooch
cache folder, a DVC workspace) through the fetch engine, and writes the manifest once.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AuthoringError, DataManifestError, Diagnostic
from ..optional import need
from ..spec import author
from .edit import _name_taken, _read, guarded_edit, refuse_if_worse

KINDS = ("pooch", "dvc", "urls")


@dataclass
class ImportResult:
    """What an import did: the ``added`` entries (named, with the checksums written), the
    ``skipped`` ones (already declared: entry, the dataset that has its key), the
    ``adopted`` datasets (name -> path in the store), ``failed`` adoptions (name -> error;
    the entry is declared anyway) and located ``warnings`` (DM144)."""

    added: list[author.Entry] = field(default_factory=list)
    skipped: list[tuple[author.Entry, str]] = field(default_factory=list)
    adopted: dict[str, str] = field(default_factory=dict)
    failed: dict[str, DataManifestError] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        from .edit import redact_deep

        return redact_deep({  # SEC-002
            "dry_run": self.dry_run,
            "added": [{"name": e.name, **e.table()} for e in self.added],
            "skipped": [{"uri": e.uri, "declared_as": owner} for e, owner in self.skipped],
            "adopted": self.adopted,
            "failed": {n: {"code": e.code, "message": e.message} for n, e in self.failed.items()},
            "warnings": [d.as_json() for d in self.warnings],
        })


def _source_error(e: author.SourceError, file: str) -> AuthoringError:
    return AuthoringError(e.message, code=e.code, file=file, line=e.line, column=e.column,
                          hint="fix that line of the list and import again")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AuthoringError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}",
                             code="DM002", file=str(path)) from e


def _dvc_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise AuthoringError(f"{path} is neither a .dvc file nor a folder", code="DM002",
                             file=str(path), hint="give a .dvc file or a DVC project folder")
    found = []
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in (".dvc", ".git"))
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".dvc")]
    return found


def _parse_dvc(path: Path, root: Path) -> tuple[list[author.Entry], list[Diagnostic]]:
    yaml = need("yaml", extra="dvc", feature="reading DVC files")
    entries: list[author.Entry] = []
    warnings: list[Diagnostic] = []
    for f in _dvc_files(path):
        text = _read_text(f)
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise AuthoringError(f"YAML: {e.problem or e}", code="DM143", file=str(f),
                                 line=mark.line + 1 if mark else None,
                                 column=mark.column + 1 if mark else None) from e
        except yaml.YAMLError as e:
            raise AuthoringError(f"YAML: {e}", code="DM143", file=str(f)) from e
        folder = os.path.relpath(f.parent.resolve(), root)
        folder = "" if folder == "." else Path(folder).as_posix()
        try:
            found, warns = author.parse_dvc(node, folder)
        except author.SourceError as e:
            raise _source_error(e, str(f)) from e
        entries += found
        warnings += [_diagnostic(w, f) for w in warns]
    return entries, warnings


def _diagnostic(w: author.Warning_, file: Path) -> Diagnostic:
    return Diagnostic(w.code, w.message, str(file), w.line, w.column)


def _files_below(root: Path):
    def files(folder: str) -> list[str]:
        base = root / folder
        if not base.is_dir():
            return []
        return [p.relative_to(base).as_posix() for p in base.rglob("*")
                if p.is_file() and not p.is_symlink()]
    return files


def parse_source(kind: str, source: Path, root: Path, *, base_url: str = ""
                 ) -> tuple[list[author.Entry], list[Diagnostic]]:
    """The entries of one list (``kind``: pooch, dvc or urls) and its located warnings.
    Raises :class:`AuthoringError` (DM143 at the line, DM002 unreadable)."""
    if kind == "dvc":
        entries, warnings = _parse_dvc(source, root)
        kept, more = author.expand_folders(entries, _files_below(root))
        return kept, warnings + [_diagnostic(w, source) for w in more]
    text = _read_text(source)
    try:
        if kind == "pooch":
            entries, warns = author.parse_pooch(text, base_url)
        elif kind == "urls":
            entries, warns = author.parse_urls(text)
        else:
            raise ValueError(f"unknown import kind {kind!r}; known: {', '.join(KINDS)}")
    except author.SourceError as e:
        raise _source_error(e, str(source)) from e
    return entries, [_diagnostic(w, source) for w in warns]


def _adoptable(kind: str, e: author.Entry, root: Path, adopt_dir: Path | None) -> Path | None:
    """Where entry ``e``'s bytes already lie on this machine, if anywhere (AUT-010)."""
    if kind == "pooch" and adopt_dir is not None:
        p = adopt_dir / e.adopt
    elif kind == "dvc" and e.adopt and e.adopt != e.uri and not e.fields.get("uris"):
        p = root / e.adopt  # a `dvc import-url` output in the workspace
    else:
        return None
    return p if p.is_file() else None


def import_list(project, kind: str, source: str | Path, *, base_url: str = "",
                adopt_dir: str | Path | None = None, dry_run: bool = False,
                progress=None, jobs: int = 4) -> ImportResult:
    """Declare the datasets of a pooch registry, DVC files or a URL list (AUT-010..AUT-013).

    Entries already declared (by key) are skipped; bytes already on this machine are
    adopted into the store after they verify (a DVC workspace's local outputs are
    fetched from it, which is the same copy). The manifest is written once, comments
    kept; adopted entries without a checksum get the one computed. ``dry_run`` parses
    and plans, and writes nothing. Raises :class:`AuthoringError` (DM143 malformed list,
    DM141 a name taken) or :class:`~datamanifest.errors.ManifestError` (DM091: the new
    entries would be invalid); nothing is written then.
    """
    from .. import fetch as fetching

    root = project.root
    source = Path(source)
    adopt_dir = Path(adopt_dir) if adopt_dir is not None else None
    entries, warnings = parse_source(kind, source, root, base_url=base_url)
    file = str(project.manifest_path)

    def planned(text: str) -> author.Plan:
        fresh = [author.Entry(**{**e.__dict__, "fields": dict(e.fields)}) for e in entries]
        try:
            return author.plan(text, tomllib.loads(text), fresh)
        except author.NameTaken as e:
            raise _name_taken(e, file) from e

    text = _read(project)
    first = planned(text)
    refuse_if_worse(file, text, first.text)
    result = ImportResult(added=first.added, skipped=first.skipped, warnings=warnings,
                          dry_run=dry_run)
    if dry_run or not first.added:
        return result
    adopt = {e.name: p for e in first.added if (p := _adoptable(kind, e, root, adopt_dir))}
    local = [e.name for e in first.added if kind == "dvc" and e.adopt and
             (e.adopt == e.uri or e.fields.get("uris")) and (root / e.adopt).exists()]
    wanted = list(adopt) + local
    checksums: dict[str, str] = {}
    if wanted:
        trial = project.with_text(first.text)
        report = fetching.run(trial, wanted, jobs=jobs, progress=progress, adopt=adopt)
        for o in report.outcomes:
            if o.error is not None:
                result.failed[o.name] = o.error
            elif o.status in ("fetched", "present"):
                result.adopted[o.name] = str(o.path)
                checksums[o.name] = o.checksum
    by_uri = {e.uri or tuple(e.fields.get("uris", ())): checksums[e.name]
              for e in first.added if e.name in checksums}

    def write(text: str) -> tuple[str, author.Plan]:
        again = planned(text)
        for e in again.added:
            got = by_uri.get(e.uri or tuple(e.fields.get("uris", ())))
            if got and not e.checksum:
                e.checksum = got
        return (author.append_entries(text, [(e.name, e.table()) for e in again.added])
                if again.added else text), again

    final = guarded_edit(project, write)
    result.added, result.skipped = final.added, final.skipped
    return result
