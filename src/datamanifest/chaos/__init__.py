"""The reliability harness: crash sweeps, concurrency runs and fuzzing of the commands that
write (``design/2026-12-02-reliability.md``).

- :mod:`datamanifest.chaos.crash` -- kill ``datamanifest fetch`` (of a file, an archive
  with ``extract``, a ``uris`` folder, a git source; with checksums filled into a
  commented manifest; beside a concurrent writer of the state file) just before each of
  its file-system mutations, or at random moments, and check what the next user sees.
- :mod:`datamanifest.chaos.fuzz` -- byte- and structure-level mutations of every document
  type through ``check`` (text and JSON), ``format``, ``migrate`` and the loaders.

``tests/test_chaos.py`` runs a short pass of each in ``make test``; ``bench/chaos.py`` and
``bench/fuzz.py`` run the full ones and print the counts. Both are built on
:mod:`datamanifest.faults`, which is inert unless ``DATAMANIFEST_FAULT`` is set.
"""
