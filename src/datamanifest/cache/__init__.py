"""Produced datasets: cache a function's results by parameter hash (SCHEMA.md §21).

Public API (also exported by :mod:`datamanifest`): :func:`cached`,
:class:`CachedFunction`, :func:`register_format`, :class:`Artifact`.
"""

from .artifact import Artifact, Produced
from .decorator import CachedFunction, cached
from ..formats import Format, formats, get_format, register_format

__all__ = ["cached", "CachedFunction", "Artifact", "Produced", "Format", "register_format",
           "get_format", "formats"]
