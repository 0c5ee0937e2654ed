"""The objects of a project's stores, read from the real file system (SCHEMA.md §22.1).

:func:`inventory` lists every dataset and produced artifact with the fields of
MNT-002, without opening a data file (MNT-005): only markers, the state file and
directory listings are read, and the data is ``stat``ed.
"""

from __future__ import annotations

import os
import stat as _stat
from pathlib import Path

from ..errors import MaintenanceError, ManifestError
from ..spec import maintain as _maintain
from ..spec.checksum import TREE_ALGORITHMS
from ..spec.maintain import Obj, Stat
from ..store.state import State, StateError, read_state


class OsView:
    """:class:`~datamanifest.spec.maintain.View` over the local file system."""

    def stat(self, path: str) -> Stat | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        return Stat(_stat.S_ISDIR(st.st_mode), st.st_size, st.st_mtime, st.st_atime)

    def read(self, path: str) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        try:
            return os.read(fd, 1 << 20).decode("utf-8", errors="replace")
        except IsADirectoryError:
            return None
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[str] | None:
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None


class Inventory:
    """A project's objects and what acting on them needs: roots, pools, state."""

    def __init__(self, project, objects: list[Obj], state: State) -> None:
        self.project = project
        self.objects = objects
        self.state = state
        res = project.storage.resolved
        self.datasets_dir: str = res.get("datasets_dir")
        self.datacache_dir: str = res.get("datacache_dir")

    def by_id(self, ident: str) -> Obj:
        """The object whose id is ``ident``: a dataset's name (or alias, doi), a cache key, or a
        unique prefix of an artifact's hash. DM134 when none, DM077 when several."""
        from ..errors import LookupFailed, MaintenanceError

        for o in self.objects:
            if o.id == ident:
                return o
        if o_name := self.project.manifest.candidates(ident):
            if len(o_name) == 1:
                return next(o for o in self.objects if o.kind == "data" and o.id == o_name[0])
        hits = [o for o in self.objects if o.kind == "cached" and
                (o.key.rsplit("/", 1)[1].startswith(ident) or o.id.startswith(ident))]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise LookupFailed(f"{ident!r} matches {len(hits)} artifacts: " +
                               ", ".join(o.id for o in hits[:5]), code="DM077",
                               hint="give more of the hash, or the whole cache key")
        raise MaintenanceError(f"no object with id {ident!r}", code="DM134",
                               hint="`datamanifest list` shows every object and its id")


def inventory(project, *, view: _maintain.View | None = None) -> Inventory:
    """Every object of ``project`` (MNT-001): its datasets, then its artifacts.

    Raises :class:`~datamanifest.errors.ManifestError` for a storage setting that does
    not resolve (DM060, DM061).
    """
    from ..spec.resolution import ResolutionError

    view = view or OsView()
    res = project.storage.resolved
    datacache_dir = res.get("datacache_dir")
    try:
        state = read_state(project.state_file, datacache_dir=datacache_dir)
    except StateError:
        state = State()
    records = {k: r.__dict__ for k, r in state.datasets.items()}  # the declared fields
    try:
        objects = _maintain.objects_of(project.manifest, res, project.storage.platform,
                                       records=records,
                                       datacache=state.other.get("datacache", {}), view=view)
    except ResolutionError as e:
        raise ManifestError(str(e), code=e.code, file=str(project.manifest_path),
                            hint="define the symbol in [_STORAGE] or set the variable") from e
    return Inventory(project, objects, state)



def _age(v: "str | float | None") -> float | None:
    if v is None or v == "":
        return None
    return float(v) if isinstance(v, (int, float)) else _maintain.parse_age(v)


def selection(terms: "tuple[str, ...] | list[str]" = (), *, kind: str | None = None,
              formats: "str | tuple[str, ...]" = (), states: "str | tuple[str, ...]" = (),
              present: bool | None = None, older_than: "str | float | None" = None,
              newer_than: "str | float | None" = None, by_access: bool = False,
              larger_than: "str | int | None" = None, unreferenced: bool = False,
              outside: bool = False, all: bool = False) -> _maintain.Selection:
    """The selection of MNT-010 from its terms and options, as ``datamanifest list`` takes them.

    Parameters
    ----------
    terms : sequence of str
        Ids, names, keys, hash prefixes (6+ characters) or globs.
    kind, formats, states, present, unreferenced, outside, all
        As :class:`~datamanifest.spec.maintain.Selection`; a single format or state may be
        a string.
    older_than, newer_than : str or float, optional
        An age: ``"30d"``, ``"12h"``, ``"2w"``, or seconds.
    by_access : bool
        Ages use the last access time instead of the creation time.
    larger_than : str or int, optional
        A size: ``"500M"``, ``"2G"``, or bytes.

    Returns
    -------
    Selection

    Raises
    ------
    MaintenanceError
        DM136 for a malformed age or size (SCHEMA.md §22).
    """
    try:
        return _maintain.Selection(
            terms=tuple(terms), kind=kind,
            formats=(formats,) if isinstance(formats, str) else tuple(formats),
            states=(states,) if isinstance(states, str) else tuple(states), present=present,
            older_than=_age(older_than), newer_than=_age(newer_than),
            time_field="last_access" if by_access else "created",
            larger_than=None if larger_than in (None, "") else larger_than
            if isinstance(larger_than, int) else _maintain.parse_size(larger_than),
            unreferenced=unreferenced, outside=outside, all=all)
    except ValueError as e:
        raise MaintenanceError(str(e), code="DM136", hint="ages: 30d, 12h, 2w or seconds; "
                               "sizes: 500M, 2G or bytes; see `datamanifest list --help`") from e


def listing(project, selected: _maintain.Selection, *, verify: bool = False) -> list[Obj]:
    """The objects of ``project`` that ``selected`` picks (all when it is empty), as
    ``datamanifest list`` and :meth:`datamanifest.Project.list` show them; with ``verify``,
    present objects are re-hashed and those that changed are ``modified`` (reads the data)."""
    objs = _maintain.select(inventory(project).objects,
                            _maintain.Selection(all=True) if selected.empty else selected)
    if verify:
        for o in objs:
            if o.state != "missing" and not o.protected and not (
                    verify_artifact(o) if o.kind == "cached" else verify_data(o)):
                o.state = "modified"
    return objs


def verify(obj: Obj) -> bool:
    """Whether an object's bytes still match its marker (the ``modified`` state, MNT-003).

    Reads the data: only on request (``list --verify``), never by plain listing.
    """
    from ..io.local import hash_file
    from ..tree import walk

    if obj.state == "missing" or not obj.checksum:
        return True
    if obj.kind == "cached":
        return True  # artifacts: verified by digests below
    algo, _, hexdigest = obj.checksum.partition(":")
    if obj.is_dir and algo not in TREE_ALGORITHMS:
        # an extracted archive: its checksum names the archive; its marker records the
        # folder's tree checksum (STO-012), without which the bytes cannot be judged
        from ..spec.maintain import _marker_record

        rec = _marker_record(obj.view.read(obj.marker_file)) \
            if obj.marker_file and obj.view is not None else {}
        tree = rec.get("tree")
        if not isinstance(tree, str) or ":" not in tree:
            return True
        algo, _, hexdigest = tree.partition(":")
    if obj.is_dir:
        return walk(obj.location, algo).value == hexdigest
    return hash_file(obj.location, algo)[0] == hexdigest


def verify_artifact(obj: Obj) -> bool:
    """Whether every format an artifact's marker lists still has its digest."""
    from ..cache.artifact import digest_entry
    from ..spec import cache

    marker = cache.read_marker(OsView().read(f"{obj.location}/{cache.MARKER}") or "")
    for rec in (marker.formats or {}).values():
        entry = Path(obj.location) / rec["file"]
        try:
            if digest_entry(entry, entry.is_dir()) != (rec["checksum"], rec["size"]):
                return False
        except OSError:
            return False
    return True


verify_data = verify  # for listing(), whose `verify` flag hides the function
