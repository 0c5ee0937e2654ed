"""Times and calendars of appended slices (SCHEMA.md APP-012): CF units compared as values,
calendars that agree, dates encoded in the target's units, and a fast path decoding numeric
times to labels without xarray.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import AppendError
from ..optional import APPEND, need


#: the day the Gregorian calendar began: before it, standard and proleptic_gregorian differ
GREGORIAN_START = (1582, 10, 15)


def _calendar(name: Any) -> str:
    c = str(name or "standard").lower()
    return "standard" if c == "gregorian" else c


def slice_calendar(var) -> str:
    """The calendar a slice's times are in: its encoding's, else its cftime dates', else
    ``proleptic_gregorian`` (numpy datetimes)."""
    values = np.asarray(var.values)
    if values.dtype.kind == "O" and values.size and hasattr(values.flat[0], "calendar"):
        return _calendar(values.flat[0].calendar)
    return _calendar(var.encoding.get("calendar", "proleptic_gregorian"))


def calendars_agree(a: str, b: str, earliest: tuple[int, int, int] | None) -> bool:
    """APP-014: times convert exactly between calendars ``a`` and ``b`` when they are the
    same, or ``standard`` and ``proleptic_gregorian`` for dates from 1582-10-15 on."""
    a, b = _calendar(a), _calendar(b)
    if a == b:
        return True
    if {a, b} == {"standard", "proleptic_gregorian"}:
        return earliest is not None and earliest >= GREGORIAN_START
    return False


def check_calendar(name: str, var, target: str) -> None:
    """APP-014: refuse (DM163) times whose calendar does not convert exactly to the
    target's."""
    values = np.asarray(var.values).ravel()
    source = slice_calendar(var)
    earliest = None
    if values.size:
        if values.dtype.kind == "M":
            first = values.min().astype("datetime64[D]").item()
            earliest = (first.year, first.month, first.day)
        else:
            first = min(values)
            earliest = (first.year, first.month, first.day)
    if not calendars_agree(source, target, earliest):
        raise AppendError(f"variable {name!r} is in the calendar {source!r}, the target's is "
                          f"{target!r}, and its dates do not convert exactly", code="DM163",
                          hint="convert the slice's times to the target's calendar first "
                          "(xarray: ds.convert_calendar)")


def encode_dates(dates: list[str], calendar: str, units: str, target_calendar: str,
                 dtype: str) -> list[int | float]:
    """APP-014 on dates given as text (``YYYY-MM-DD[THH:MM:SS]`` in ``calendar``): their
    values in the target's ``units``, calendar and ``dtype``. Raises :class:`AppendError`
    (DM163) when the calendars do not agree for these dates or a value does not fall on a
    whole step of an integer ``dtype``. (The conformance kind ``append`` asks this.)"""
    cftime = need("cftime", **APPEND)

    parsed = []
    for text in dates:
        day, _, time_ = text.partition("T")
        y, m, d = (int(x) for x in day.split("-"))
        hh, mm, ss = ((int(x) for x in time_.split(":")) if time_ else (0, 0, 0))
        parsed.append((y, m, d, hh, mm, ss))
    earliest = min(p[:3] for p in parsed) if parsed else None
    if not calendars_agree(calendar, target_calendar, earliest):
        raise AppendError(f"dates in the calendar {calendar!r} do not convert exactly to "
                          f"{target_calendar!r}", code="DM163")
    values = cftime.date2num([cftime.datetime(*p, calendar=_calendar(target_calendar))
                              for p in parsed], units, calendar=_calendar(target_calendar))
    values = np.atleast_1d(np.asarray(values, dtype="float64"))
    kind = np.dtype(dtype).kind
    if kind in "iu":
        if not np.all(values == np.round(values)):
            raise AppendError(f"dates that fall between whole steps of {units!r}",
                              code="DM163")
        return [int(v) for v in values]
    return [float(v) for v in values]


def norm_units(text: str) -> Any:
    """CF units as compared: ``<unit> since <reference>`` as (unit, the reference as a
    time), so that ``2020-01-01``, ``2020-01-01 00:00:00`` and ``2020-01-01T00:00:00``
    are equal; calendars by their CF aliases; anything else as text."""
    t = " ".join(str(text).split()).lower()
    if " since " in t:
        unit, _, ref = t.partition(" since ")
        try:
            pd = need("pandas", **APPEND)

            stamp = pd.Timestamp(ref.replace("utc", "").strip())
            if stamp.tzinfo is not None:
                stamp = stamp.tz_convert(None)
            return (unit.rstrip("s"), stamp)
        except (ValueError, TypeError, OverflowError):
            return (unit.rstrip("s"), ref)
    return {"standard": "gregorian"}.get(t, t)


_UNIT_NS = {"nanosecond": 1, "microsecond": 1_000, "millisecond": 1_000_000,
            "second": 10**9, "minute": 60 * 10**9, "hour": 3600 * 10**9, "day": 86400 * 10**9}


_I64 = np.iinfo(np.int64)


def fast_times(values: np.ndarray, units: str, calendar: str | None, dtype: Any
               ) -> np.ndarray | None:
    """``datetime64`` values as integers of ``<unit> since <reference>`` -- the common case
    of CF time encoding done in numpy: integer ``dtype``, a Gregorian calendar, no NaT,
    every value and the reference after 1582-10-15 (where ``standard`` and
    ``proleptic_gregorian`` agree), and every value an exact multiple of the unit. None
    for anything else (xarray's ``encode_cf_datetime`` then decides, and refuses inexact
    values). Equal to xarray's result where it answers (tests/test_append.py)."""
    if values.dtype.kind != "M" or dtype is None or np.dtype(dtype).kind not in "iu":
        return None
    if (calendar or "standard").lower() not in ("standard", "gregorian", "proleptic_gregorian"):
        return None
    key = norm_units(units)
    if not isinstance(key, tuple) or not hasattr(key[1], "value"):
        return None
    step = _UNIT_NS.get(key[0])
    if step is None:
        return None
    pd = need("pandas", **APPEND)

    if key[1] < pd.Timestamp("1582-10-15"):  # values in ns are after 1677 anyway
        return None
    try:
        ref = np.datetime64(key[1].as_unit("ns").value, "ns")
    except (OverflowError, ValueError):
        return None
    ns = values.astype("datetime64[ns]")
    if np.isnat(ns).any():
        return None
    ints, ref_i = ns.view(np.int64), int(ref.view(np.int64))
    if not (_I64.min <= int(ints.min()) - ref_i and int(ints.max()) - ref_i <= _I64.max):
        return None  # the difference would wrap around in int64: xarray decides
    delta = ints - ref_i
    q, r = np.divmod(delta, step)
    if r.any():
        return None
    out = q.astype(np.dtype(dtype))
    return out if (out == q).all() else None


def labels_of(values: np.ndarray) -> list[float] | None:
    """Append-dimension labels as numbers: datetimes in nanoseconds, cftime dates in
    nanoseconds of their calendar, numbers as they are; None for anything else."""
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").astype(np.int64).astype(float).tolist()
    if values.dtype.kind == "m":
        return values.astype("timedelta64[ns]").astype(np.int64).astype(float).tolist()
    if values.dtype.kind in "iuf":
        return values.astype(float).tolist()
    if values.dtype.kind == "O" and values.size and hasattr(values.flat[0], "calendar"):
        cftime = need("cftime", **APPEND)

        cal = values.flat[0].calendar
        return [float(x) * 1000.0 for x in
                np.atleast_1d(cftime.date2num(list(values.ravel()), "microseconds since "
                                              "1970-01-01", calendar=cal))]
    return None
