"""``@datamanifest.cached``: produce or load a function's result by parameter hash (SCHEMA.md §21).

::

    @datamanifest.cached
    def regrid(field: str, resolution: float = 1.0, _workers: int = 4):
        ...

    regrid("tas", 0.5)          # computes, stores <datacache_dir>/<module>.regrid/<hash>/
    regrid("tas", 0.5)          # loads it
    regrid.path("tas", 0.5)     # the artifact folder; .exists, .load, .recompute, .forget

Per-call control lives on the wrapper's methods, never in the function's own
arguments (PRD-006): a parameter called ``cached`` or ``cache_dir`` is an
ordinary, hashed parameter.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ProduceError
from ..spec import paramhash
from ..spec import cache
from . import artifact as _artifact
from . import context as _context
from ..formats import Format, get_format

#: (cachetype, version) -> ref of the producer that declared it in this process (PRD-005)
_CLAIMS: dict[tuple[str, str], str] = {}
_CLAIMS_LOCK = threading.Lock()


def _default_cachetype(fn: Callable[..., Any]) -> str:
    """``<module>.<qualname>`` (PRD-005); DM113 when the function has no stable import path."""
    qual = getattr(fn, "__qualname__", "") or getattr(fn, "__name__", "")
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", repr(fn))
    if not qual or "<lambda>" in qual or "<locals>" in qual:
        raise ProduceError(
            f"{name} has no stable import path (a lambda or a nested function)",
            hint="give it an explicit identity: @cached(cachetype=\"mypkg.name\")")
    if module == "__main__":
        spec_ = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec_ is None or not spec_.name or spec_.name == "__main__":
            raise ProduceError(
                f"{name} is defined in a script run as __main__, which has no import path",
                hint="give it an explicit identity: @cached(cachetype=\"myproject.name\"), or "
                "move it into a module")
        module = spec_.name
    return f"{module}.{qual}"


def _ref(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", "") or ""
    if module == "__main__":
        spec_ = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec_.name if spec_ is not None and spec_.name else module
    return f"{module}:{getattr(fn, '__qualname__', getattr(fn, '__name__', ''))}"


class CachedFunction:
    """A producer: calling it returns the stored result for its arguments, computing and
    storing it first on a miss (PRD-020..PRD-025).

    Methods take the same arguments as the function:

    - ``f(...)``: the value (loaded on a hit; computed, stored and returned on a miss);
    - ``f.load(...)``: the stored value, or DM115 when absent (never computes);
    - ``f.exists(...)``: whether a hit exists (store, recorded folder or pool);
    - ``f.path(...)``: the artifact folder of the hit, else where a miss would publish;
    - ``f.artifact(...)``: an :class:`~datamanifest.cache.artifact.Artifact`;
    - ``f.recompute(...)``: compute and replace the stored artifact;
    - ``f.forget(...)``: delete the stored artifact and its state record;
    - ``f.key_table(...)``, ``f.identity(...)``: what is hashed, and the identity.

    ``f.with_options(format=..., basename=..., datacache_dir=...)`` is the same
    producer stored another way: on an existing artifact it converts the stored result
    into the new format (load, save) without running the function (PRD-026).

    Errors: DM100 (a parameter value without canonical form, raised before the
    function runs), DM114 (a format whose library is missing), DM075 (a lock wait
    longer than ``lock_timeout``); the function's own exceptions propagate unchanged.
    """

    def __init__(self, fn: Callable[..., Any], *, cachetype: str | None, version: str,
                 format: str, basename: str, datacache_dir: str | Path | None,
                 key: Sequence[str] | Callable[[dict[str, Any]], dict[str, Any]] | None,
                 lock_timeout: float | None, _claim: bool = True) -> None:
        if not callable(fn):
            raise ProduceError(f"{fn!r} is not callable", hint="decorate a function")
        self.__wrapped__ = fn
        functools.update_wrapper(self, fn)
        self.signature = inspect.signature(fn)
        params = self.signature.parameters
        for p in params.values():
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                raise ProduceError(
                    f"{fn.__qualname__}(*{p.name}): a variadic positional parameter has no "
                    "name to hash (PRD-002)", hint="give the values named parameters")
        self._var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        # the fast path of key_table: only named parameters, bound by position or name
        simple = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self._simple = all(p.kind in simple for p in params.values())
        self._positional = tuple(n for n, p in params.items()
                                 if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._defaults = {n: p.default for n, p in params.items()
                          if p.default is not inspect.Parameter.empty}
        self._names = tuple(params)
        if key is not None and not callable(key):
            key = tuple(key)
            unknown = [k for k in key if k not in params or
                       params[k].kind is inspect.Parameter.VAR_KEYWORD]
            if unknown and not self._var_keyword:
                raise ProduceError(
                    f"key selector of {fn.__qualname__} names {', '.join(map(repr, unknown))}, "
                    f"not parameters of it (PRD-004)",
                    hint="parameters: " + ", ".join(params))
        self.key = key
        self.cachetype = cachetype if cachetype is not None else _default_cachetype(fn)
        self.version = version or ""
        try:
            paramhash.cache_key(self.cachetype, {}, self.version)
        except paramhash.ParameterError as e:
            raise ProduceError(str(e), code="DM100",
                               hint="a cachetype or version has no '@', '/' or '\\'") from e
        self.ref = _ref(fn)
        self.format: Format = get_format(format)
        try:
            cache.check_format(basename) if basename else None
        except ValueError:
            raise ProduceError(f"basename {basename!r} is not a plain file name",
                               hint="use letters, digits, '_', '-', '.'") from None
        self.basename = basename or cache.DEFAULT_BASENAME
        self.datacache_dir = datacache_dir
        self.lock_timeout = lock_timeout
        self._options = dict(cachetype=cachetype, version=version, format=format,
                             basename=basename, datacache_dir=datacache_dir, key=key,
                             lock_timeout=lock_timeout)
        if _claim:
            self._claim()

    def _claim(self) -> None:
        claim = (self.cachetype, self.version)
        with _CLAIMS_LOCK:
            other = _CLAIMS.get(claim)
            if other is not None and other != self.ref:
                raise ProduceError(
                    f"cachetype {self.cachetype!r}"
                    f"{' version ' + repr(self.version) if self.version else ''} is already "
                    f"produced by {other}; {self.ref} cannot claim it (PRD-005)", code="DM116",
                    hint="give one of them another cachetype or version")
            _CLAIMS[claim] = self.ref

    def __repr__(self) -> str:
        return f"<cached {self.ref} cachetype={self.cachetype!r} format={self.format.name!r}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)  # a method: the instance is a parameter like any

    def with_options(self, **options: Any) -> "CachedFunction":
        """This producer with other storage options; identity options cannot change.

        Calling the result on arguments whose artifact is stored in another format does not
        run the function again: the stored result is *converted*, loaded from a format the
        artifact lists (the first, in its marker's order, that loads here) and saved in the
        new format inside the same artifact, next to the others (SCHEMA.md PRD-026). The
        function runs only when no stored format can be loaded (its library is missing,
        or its bytes changed since they were published).

        Other Parameters
        ----------------
        format : str, optional
            The storage format (``pickle``, ``json``, ``nc``, ``zarr``, ...).
        basename : str, optional
            The data file's name without extension.
        datacache_dir : str or Path, optional
            A store of its own (relative: to the project root).
        lock_timeout : float, optional
            Seconds to wait for another process's lock (None: while it is alive).

        Returns
        -------
        CachedFunction

        Raises
        ------
        ProduceError
            ``cachetype``, ``version`` or ``key`` given (another identity needs another
            producer); DM114 for an unknown format.
        """
        fixed = {"cachetype", "version", "key"} & set(options)
        if fixed:
            raise ProduceError(f"with_options cannot change {', '.join(sorted(fixed))}",
                               hint="declare another producer for another identity")
        merged = {**self._options, **options, "cachetype": self.cachetype}
        return CachedFunction(self.__wrapped__, _claim=False, **merged)

    # -- what is hashed --------------------------------------------------------------------------
    def key_table(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The key table of a call: bound arguments with defaults (PRD-002, PRD-004).

        ``_``-prefixed parameters and parameters bound to None are left out.

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        dict

        Raises
        ------
        TypeError
            For arguments that do not bind, as the call would.
        ProduceError
            DM100 for a value without canonical form.
        """
        table = self._bind_fast(args, kwargs) if self._simple else None
        if table is None:
            bound = self.signature.bind(*args, **kwargs)  # raises TypeError like the call
            bound.apply_defaults()
            table = {}
            for name, value in bound.arguments.items():
                if self.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    table.update(value)
                else:
                    table[name] = value
        # PRD-002: `_` knobs and parameters bound to None are absent from the key table
        table = {k: v for k, v in paramhash.key_table(table).items() if v is not None}
        if callable(self.key):
            table = self.key(table)
            if not isinstance(table, dict):
                raise ProduceError(f"key selector of {self.ref} returned "
                                   f"{type(table).__name__}, not a dict", code="DM113",
                                   hint="a selector maps the key table to a key table")
            table = paramhash.redacted(table)  # PAR-009 for what the selector added
        elif self.key is not None:
            table = {k: table[k] for k in self.key if k in table}
        return table

    def _bind_fast(self, args: tuple, kwargs: dict) -> dict[str, Any] | None:
        """``signature.bind`` + ``apply_defaults`` for plain parameters; None to take the
        slow path (which raises the TypeError of a call that does not bind)."""
        if len(args) > len(self._positional):
            return None
        table = dict(zip(self._positional, args))
        for k, v in kwargs.items():
            if k in table or k not in self._names:
                return None
            table[k] = v
        if len(table) < len(self._names):
            for k in self._names:
                if k not in table:
                    if k not in self._defaults:
                        return None
                    table[k] = self._defaults[k]
        return table

    def identity(self, *args: Any, **kwargs: Any) -> cache.Identity:
        """The identity of a call: cachetype, parameter hash, version (PRD-001).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        Identity
            :class:`~datamanifest.spec.cache.Identity`; ``.cache_key`` is its folder's name.

        Raises
        ------
        ProduceError
            DM100 for a value without canonical form.
        """
        return self._identity(self.key_table(*args, **kwargs))

    def _identity(self, table: dict[str, Any]) -> cache.Identity:
        try:
            return cache.identity(self.cachetype, table, self.version)
        except paramhash.ParameterError as e:
            where = e.path
            name = str(where[0]) if where else "?"
            inside = "/" + "/".join(map(str, where[1:])) if len(where) > 1 else ""
            raise ProduceError(
                f"{self.ref}: parameter {name!r}{' at ' + inside if inside else ''}: {e}",
                code="DM100",
                hint="parameters are strings, numbers, booleans, lists and dicts of them; "
                "pass other objects in a parameter whose name starts with '_' (not hashed), "
                "or give a key selector") from e

    # -- storage ---------------------------------------------------------------------------------
    def _store(self, ctx: _context.Context) -> Path | None:
        if self.datacache_dir is None:
            return None
        p = Path(self.datacache_dir).expanduser()
        return p if p.is_absolute() else ctx.root / p

    def _find(self, args: tuple, kwargs: dict) -> tuple[_context.Context, cache.Identity,
                                                         dict[str, Any], Any]:
        table = self.key_table(*args, **kwargs)
        ident = self._identity(table)
        ctx = _context.current()
        found = _artifact.find(ctx, ident, self.format, self.basename,
                               datacache_dir=self._store(ctx))
        return ctx, ident, table, found

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx, ident, table, found = self._find(args, kwargs)
        if found is not None:
            _artifact.tidy_hit(ctx, found)
            return _artifact.load(found, self.format)
        return self._produce(ctx, ident, table, args, kwargs, recompute=False).value

    def _produce(self, ctx: _context.Context, ident: cache.Identity, table: dict[str, Any],
                 args: tuple, kwargs: dict, *, recompute: bool) -> _artifact.Produced:
        return _artifact.produce(ctx, ident, table, self.format, self.basename,
                                 lambda: self.__wrapped__(*args, **kwargs), ref=self.ref,
                                 recompute=recompute, datacache_dir=self._store(ctx),
                                 lock_timeout=self.lock_timeout)

    def produce(self, *args: Any, **kwargs: Any) -> _artifact.Produced:
        """Like calling, but returns the value with its artifact and whether this call computed it.

        A hit is used as it stands (PRD-020..PRD-022); a miss is published (PRD-024).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        Produced
            :class:`~datamanifest.cache.artifact.Produced`: ``value``, ``artifact``,
            ``computed``, ``waited``.

        Raises
        ------
        ProduceError
            As calling does (DM100, DM114, ...); the function's own exceptions pass through.
        """
        ctx, ident, table, found = self._find(args, kwargs)
        if found is not None:
            _artifact.tidy_hit(ctx, found)
            return _artifact.Produced(_artifact.load(found, self.format), found.artifact, False)
        return self._produce(ctx, ident, table, args, kwargs, recompute=False)

    def recompute(self, *args: Any, **kwargs: Any) -> Any:
        """Compute, replace the stored artifact and return the value (PRD-027).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        object
            The function's value.
        """
        table = self.key_table(*args, **kwargs)
        ident = self._identity(table)
        return self._produce(_context.current(), ident, table, args, kwargs,
                             recompute=True).value

    def artifact(self, *args: Any, **kwargs: Any) -> _artifact.Artifact:
        """Where the result of this call is (``.present``) or would be published.

        The hit among the candidates (PRD-021), else the artifact folder ``A`` (PRD-010).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        Artifact
        """
        ctx, ident, table, found = self._find(args, kwargs)
        if found is not None:
            return dataclasses.replace(found.artifact, parameters=table)
        folder = (self._store(ctx) or ctx.datacache_dir) / ident.cache_key
        return _artifact.Artifact(ident, folder,
                                  folder / cache.data_entry(self.format.name, self.basename),
                                  parameters=table)

    def path(self, *args: Any, **kwargs: Any) -> Path:
        """The artifact folder of this call: the hit's, else the one a miss publishes.

        See :meth:`artifact` (PRD-010, PRD-021).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        Path
            The artifact folder (it exists only once published).
        """
        return self.artifact(*args, **kwargs).folder

    def exists(self, *args: Any, **kwargs: Any) -> bool:
        """Whether a stored result of this call can be used (PRD-020..PRD-022).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        bool
        """
        return self._find(args, kwargs)[3] is not None

    def load(self, *args: Any, **kwargs: Any) -> Any:
        """The stored value of this call; never computes.

        Only a hit is loaded (PRD-020..PRD-022, SCHEMA.md §21.3).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        object

        Raises
        ------
        ProduceError
            DM115 when no stored result exists.
        """
        ctx, ident, _, found = self._find(args, kwargs)
        if found is None:
            raise ProduceError(f"{self.ref}: no stored result for {ident.cache_key}",
                               code="DM115", hint="call the function to produce it")
        return _artifact.load(found, self.format)

    def forget(self, *args: Any, **kwargs: Any) -> bool:
        """Delete the stored result of this call and its state record (pools are never written).

        Under the artifact's lock, the marker first, then the folder (PRD-027).

        Parameters
        ----------
        *args, **kwargs
            The arguments of a call of the decorated function.

        Returns
        -------
        bool
            Whether something was deleted.
        """
        ident = self.identity(*args, **kwargs)
        ctx = _context.current()
        return _artifact.forget(ctx, ident, datacache_dir=self._store(ctx))


def cached(fn: Callable[..., Any] | None = None, *, cachetype: str | None = None,
           version: str = "", format: str = "pickle", basename: str = cache.DEFAULT_BASENAME,
           datacache_dir: str | Path | None = None,
           key: Sequence[str] | Callable[[dict[str, Any]], dict[str, Any]] | None = None,
           lock_timeout: float | None = None) -> Any:
    """Decorate a function so that its results are stored and reused by parameter hash (§21).

    Bare (``@cached``) or with options (``@cached(format="nc")``).

    Parameters
    ----------
    fn : callable, optional
        The function (given when used bare).
    cachetype : str, optional
        The identity; default ``<module>.<qualname>``; REQUIRED for lambdas, nested
        functions and functions of a script run as ``__main__``.
    version : str
        A path segment that separates incompatible results; not hashed.
    format : str
        ``pickle`` (default), ``json``, ``toml``, ``txt``, ``npy``, ``npz``, ``csv``,
        ``parquet``, ``nc``, ``zarr`` or a registered one (:func:`register_format`).
    basename : str
        The data file's name without extension (default ``data``).
    datacache_dir : str or Path, optional
        A store of its own (relative: to the project root); default the project's
        ``datacache_dir`` (SCHEMA.md §14).
    key : sequence of str or callable, optional
        Parameter names to hash, or a function from the key table to the key table.
    lock_timeout : float, optional
        Seconds to wait for another process computing the same result (None: as long as it
        is alive).

    Returns
    -------
    CachedFunction
        Or, used with options only, a decorator returning one.

    Raises
    ------
    ProduceError
        At decoration: DM113 a function that cannot be a producer as declared, DM114 an
        unknown format, DM116 another producer claims the same cachetype and version, DM100
        an invalid cachetype.
    """
    options = dict(cachetype=cachetype, version=version, format=format, basename=basename,
                   datacache_dir=datacache_dir, key=key, lock_timeout=lock_timeout)
    if fn is None:
        return lambda f: CachedFunction(f, **options)
    return CachedFunction(fn, **options)
