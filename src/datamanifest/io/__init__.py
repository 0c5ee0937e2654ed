"""Places: where bytes live, read and written the same way by every capability.

One layer below fetch, virtual, appends, tree and load (``design/2026-12-03-package-map.md``):

* :mod:`~datamanifest.io.places` -- URI parsing, the one scheme table (defined in the pure
  :mod:`~datamanifest.spec.schemes`, re-exported as :data:`~datamanifest.io.places.SCHEMES`:
  each scheme's family and which capabilities accept it), and the two doors: :func:`~datamanifest.io.places.open_stream` (a whole
  object, streamed) and :func:`~datamanifest.io.places.open_ranges` (byte ranges);
* :mod:`~datamanifest.io.base` -- the two interfaces, :class:`~datamanifest.io.base.Stream`
  and :class:`~datamanifest.io.base.RangeReader`, the :class:`~datamanifest.io.base.Identity`
  of a source, range coalescing and a block-caching file over a reader;
* one module per family: :mod:`~datamanifest.io.local` (files),
  :mod:`~datamanifest.io.http` (httpx: netrc, redirect policy, ``If-Range`` resume, TLS)
  and :mod:`~datamanifest.io.objects` (s3, gs, az: each client built in one place).

Nothing here imports a capability or the project; errors are raised as the class the
caller names (its capability's), with the codes of SCHEMA.md §9.
"""
