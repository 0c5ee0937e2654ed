"""Where slices come from (SCHEMA.md APP-040, APP-041): waiting for a slice that is not
there yet or not yet complete (``slice_polling``), and slices made by a function from an
iterable of its arguments (``slice_source``, like ``map()``).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import AppendError
from ..spec.appends import Polling


def local_path(obj: Any) -> Path | None:
    """The local path of a slice given as a path or ``file://`` URL; None otherwise (a
    Dataset, a remote URL)."""
    if not isinstance(obj, (str, os.PathLike)):
        return None
    text = os.fspath(obj)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if "://" in text:
        return None
    return Path(text)


def _signature(path: Path) -> tuple[int, int, int] | None:
    """(bytes, newest modification time in ns, entries) of a file or a folder (a Zarr
    store) now; None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if not path.is_dir():
        return st.st_size, st.st_mtime_ns, 1
    size, newest, count = 0, st.st_mtime_ns, 0
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                s = os.stat(os.path.join(dirpath, name))
            except FileNotFoundError:  # changing under us: not complete
                return -1, -1, -1
            newest = max(newest, s.st_mtime_ns)
            if name in files:
                size += s.st_size
            count += 1
    return size, newest, count


def marker_of(path: Path, polling: Polling) -> Path | None:
    """The marker file whose existence says ``path`` is complete (APP-040), if named."""
    if not polling.marker:
        return None
    return Path(polling.marker.replace("{slice}", str(path)))


def wait_for(path: Path, polling: Polling, *,
             on_wait: Callable[[str], None] | None = None,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until the slice at ``path`` exists and is complete (APP-040): its marker exists
    when one is named, else its size and modification time (a folder's: total size,
    newest time and entry count) are the same across one ``interval``.

    Raises :class:`AppendError` (DM190) after ``timeout`` seconds, naming the slice and
    what was missing.
    """
    start = clock()
    marker = marker_of(path, polling)
    previous = None
    told = False
    while True:
        now = _signature(path)
        if now is not None:
            if marker is not None:
                if marker.exists():
                    return
            elif previous is not None and now == previous and now[0] >= 0:
                return
        previous = now
        if clock() - start >= polling.timeout:
            what = "does not exist" if now is None else (
                f"has no marker {marker}" if marker is not None else
                "is still changing (size or modification time)")
            raise AppendError(f"the slice {path} {what} after {polling.timeout:g} s of "
                              "slice_polling", code="DM190", file=str(path),
                              hint="raise slice_polling.timeout, or check what writes the "
                              "slice")
        if not told and on_wait is not None:
            told = True
            on_wait(f"the slice {path}")
        sleep(polling.interval)


def resolve_source(name: str) -> Callable[..., Any]:
    """The function ``module:qualified.name`` (APP-041). Raises :class:`AppendError`
    (DM191) when it cannot be imported or is not callable."""
    module, _, qual = name.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise AppendError(f"slice_source {name!r} cannot be imported: {e}", code="DM191",
                          hint="give \"module:function\" of a module on the Python path"
                          ) from e
    if not callable(obj):
        raise AppendError(f"slice_source {name!r} is not a function", code="DM191")
    return obj


def from_source(source: Callable[..., Any], arguments: Iterable[Any],
                kwargs: dict[str, Any]) -> Iterator[Any]:
    """Slices ``source(argument, **kwargs)`` for each argument, lazily, in order, like
    ``map()`` (APP-041). An exception raised by the function is DM191 naming the
    argument."""
    for arg in arguments:
        try:
            yield source(arg, **kwargs)
        except AppendError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's function failed
            name = getattr(source, "__qualname__", repr(source))
            raise AppendError(f"slice_source {name} failed for {arg!r}: "
                              f"{type(e).__name__}: {e}", code="DM191") from e
