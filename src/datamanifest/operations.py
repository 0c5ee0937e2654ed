"""The operations of the Python API on an opened project: status, fetch, load, list, add and
path (SCHEMA.md §11, §15, §22, §24), as the CLI's commands of the same names do them.

:class:`Operations` is a base of :class:`datamanifest.Project`; each method hands over to the
capability that does the work (:mod:`datamanifest.fetch`, :mod:`datamanifest.load`,
:mod:`datamanifest.maintain`, :mod:`datamanifest.author`), imported when called.
"""

from __future__ import annotations

from pathlib import Path


class Operations:
    """The operations of :class:`datamanifest.Project` (status, fetch, load, list, add, path)."""

    def status(self, names: list[str] | None = None) -> list[dict]:
        """What ``datamanifest status`` prints: one row per dataset, from markers and state.

        The data is never read.

        Parameters
        ----------
        names : list of str, optional
            Identifiers (name, alias or doi); every dataset when None.

        Returns
        -------
        list of dict
            ``name``; ``status``: ``present``, ``present (state)``/``(pool)``/``(in-place)``
            (found elsewhere, verified by its marker), ``outdated`` (present, but its marker
            records another checksum than the manifest's), ``missing``, ``incomplete``,
            ``external`` (``skip_download``/``lazy_access``: used where it is), ``refused``
            (its entry or one it requires has errors, MAN-012) or ``no location`` (with
            ``errors``: the diagnostics); ``path``; ``checksum`` (declared, else the marker's);
            ``size`` in bytes (the marker's; None when unknown).

        Raises
        ------
        LookupFailed
            DM076/DM077 for an identifier that names no dataset or several (MAN-051).
        """
        from .presence import status_rows

        return status_rows(self, names)

    def fetch(self, names: "str | list[str] | None" = None, *, jobs: int = 4,
              per_host: int = 4, force: "bool | set[str]" = False,
              lock_timeout: float | None = None, offline: bool = False, progress=None,
              raise_on_error: bool = True, trusted: bool = False, move_aside: bool = False):
        """Fetch datasets with their requirements, verified and atomically (SCHEMA.md §11).

        Parameters
        ----------
        names : str or list of str, optional
            Identifiers (name, alias or doi); all datasets when None.
        jobs : int
            Datasets fetched at once.
        per_host : int
            Downloads from any one host at once (FET-007).
        force : bool or set of str
            Download again even when present: every dataset (True) or these names.
        lock_timeout : float, optional
            Seconds to wait for another process's lock (None: while it heartbeats).
        offline : bool
            Resolve only what is present; download nothing (FET-006).
        progress : datamanifest.progress.Progress, optional
            Where progress is drawn (``datamanifest.progress.RichProgress()`` on a
            terminal); none by default.
        raise_on_error : bool
            Raise the first failure (default), after every other dataset was attempted;
            with False, failures are only in the report.
        trusted : bool
            Vouch for the manifest, as ``--trust`` does (SCHEMA.md §27.1): run the code it
            names and use the locations it sets outside the project.
        move_aside : bool
            Rename a file or folder in the way that this tool did not publish to
            ``<name>.~<n>~`` (STO-016) instead of failing that dataset with DM182.

        Returns
        -------
        FetchReport
            A mapping from each dataset's name to its
            :class:`~datamanifest.fetch.report.Outcome` (``status``: fetched, present,
            skipped, failed, blocked, refused, missing; ``path``; ``checksum``; ``size`` in
            bytes; ``error``). ``report.paths`` maps each name to its path.

        Raises
        ------
        DataManifestError
            The first failure (DM070 checksum mismatch, DM071 download failed, DM074 not
            found, DM081 blocked, DM091 refused, ...), located at the dataset's entry in the
            manifest; ``err.report`` is the whole report. LookupFailed (DM076/DM077) for an
            identifier that names no dataset or several. TrustError (DM180) before anything
            runs, when the run would run the manifest's code or write outside the project
            and the manifest is not trusted.
        """
        from .fetch import run

        report = run(self, names, jobs=jobs, per_host=per_host, force=force,
                     lock_timeout=lock_timeout, offline=offline, progress=progress,
                     trusted=trusted, move_aside=move_aside)
        self._state_cache = None  # the run may have recorded new locations
        failures = [o for o in report.outcomes if o.error is not None]
        if failures and raise_on_error:
            err = failures[0].error
            err.report = report  # type: ignore[union-attr]
            raise err  # type: ignore[misc]
        return report

    def load(self, ident: str, *, offline: bool = False, trusted: bool = False):
        """The loaded dataset (load ladder, SCHEMA.md §15), fetched first when absent.

        Parameters
        ----------
        ident : str
            The dataset's name, alias or doi.
        offline : bool
            Never fetch; DM078 when absent.
        trusted : bool
            Vouch for the manifest's loader bindings (SCHEMA.md §27.1); otherwise a binding
            the manifest names is DM180 until the manifest is trusted.

        Returns
        -------
        object
            What its loader returns: a pandas DataFrame (csv, parquet), an xarray Dataset
            (nc, zarr, a virtual dataset), parsed JSON/TOML/YAML, text, or the folder's
            :class:`~pathlib.Path` for a folder dataset without a loader (an extracted
            archive, ``uris``; LAD-025).

        Raises
        ------
        DataManifestError
            DM078 absent offline, DM082 a binding cannot be imported, DM086 a loader's
            library is missing, DM087 no loader, DM091 the dataset is refused, or the
            fetch's error. See :func:`datamanifest.load.load`.
        """
        from .load import load

        return load(self, ident, offline=offline, trusted=trusted)

    def list(self, *terms: str, kind: str | None = None,
             format: "str | tuple[str, ...]" = (), state: "str | tuple[str, ...]" = (),
             present: bool | None = None, older_than: "str | float | None" = None,
             newer_than: "str | float | None" = None, by_access: bool = False,
             larger_than: "str | int | None" = None, unreferenced: bool = False,
             outside: bool = False, verify: bool = False) -> list:
        """The objects of the project's stores, as ``datamanifest list`` prints them
        (SCHEMA.md §22, MNT-001, MNT-010).

        Parameters
        ----------
        *terms : str
            Select objects whose id, name or key equals a term, artifacts whose hash
            starts with one (6+ characters), or that a glob (``*``, ``?``, ``[``) matches.
        kind : {"data", "cached"}, optional
            Only datasets or only produced artifacts.
        format, state : str or tuple of str
            Only these formats, or these states (clean, missing, relocated, untracked,
            modified).
        present : bool, optional
            Only present (True) or only missing (False) objects.
        older_than, newer_than : str or float, optional
            An age: ``"30d"``, ``"12h"``, ``"2w"``, or seconds.
        by_access : bool
            Ages use the last access time instead of the creation time.
        larger_than : str or int, optional
            A size: ``"500M"``, ``"2G"``, or bytes.
        unreferenced, outside : bool
            Artifacts the state file does not record; objects outside the store roots.
        verify : bool
            Re-hash present objects to find modified ones (reads the data).

        Returns
        -------
        list of Obj
            Each with ``kind``, ``id``, ``name``, ``key``, ``location``, ``state``, ``size``
            (bytes), ``created`` and ``last_access`` (seconds since the epoch), ``format``,
            ``referenced``, ``protected``; ``obj.as_json()`` is the ``list --json`` row.

        Raises
        ------
        MaintenanceError
            DM136 for a malformed age or size.
        """
        from .maintain.inventory import listing, selection

        return listing(self, selection(
            terms, kind=kind, formats=format, states=state, present=present,
            older_than=older_than, newer_than=newer_than, by_access=by_access,
            larger_than=larger_than, unreferenced=unreferenced, outside=outside), verify=verify)

    def add(self, uri: str, *, name: str | None = None, extract: bool = False,
            version: str = "", fetch: bool = True, lock_timeout: float | None = None):
        """Declare a dataset of ``uri``, fetch it verified and write its entry with its
        checksum into the manifest, comments kept (SCHEMA.md §24, AUT-005), as
        ``datamanifest add`` does. This project then reads the new manifest.

        Parameters
        ----------
        uri : str
            A URL (``https://``, ``s3://``, ...) or a local path.
        name : str, optional
            The dataset's name (default: derived from the URI, AUT-004).
        extract : bool
            Unpack a zip, tar or tar.gz archive into a folder.
        version : str
            A version label (part of the key).
        fetch : bool
            Download first (default); False declares only (the next fetch downloads it
            and fills the checksum).
        lock_timeout : float, optional
            Seconds to wait for another process's lock.

        Returns
        -------
        AddResult
            ``name``, ``uri``, ``key``, ``checksum``, ``path``, ``fetched``, ``entry``.

        Raises
        ------
        DataManifestError
            DM141 name taken, DM033 the key is declared already, DM091 the entry would be
            invalid, or the fetch's error (DM070, DM071, DM074, ...); the manifest and the
            store are then left as they were.
        """
        from .author import add

        result = add(self, uri, name=name, extract=extract, version=version, fetch=fetch,
                     lock_timeout=lock_timeout)
        fresh = type(self).open(self.manifest_path)
        self.__dict__.update(fresh.__dict__)
        return result

    def path(self, ident: str) -> Path:
        """The verified local path of a dataset, wherever it is present (POOL-005).

        Parameters
        ----------
        ident : str
            The dataset's name, alias or doi.

        Returns
        -------
        Path
            The file or folder (see :meth:`locate`).

        Raises
        ------
        LookupFailed
            DM076/DM077: ``ident`` names no dataset, or several.
        ManifestError
            DM091: the dataset is refused (MAN-012).
        DataManifestError
            DM078: it is not present (STO-010).
        """
        name = self.resolve(ident)
        refusal = self.refusal(name)
        if refusal is not None:
            raise refusal
        found = self.locate(name)
        if found is None:
            raise self.not_present(name)
        return found[0]
