"""The append configuration and its steps (SCHEMA.md §26.1, APP-001, APP-002, APP-012).

Pure: the TOML document's models (:class:`AppendConfig`), merging several documents
(:func:`merge`), append steps and the labels they allow (:func:`parse_step`,
:func:`check_labels`).
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from ...optional import APPEND, need
JOURNAL_VERSION = 1


class AppendSpecError(ValueError):
    """A violation of §26: ``code`` (DM160..DM167), ``message``, and where known the
    ``variable`` and the JSON ``path``."""

    def __init__(self, code: str, message: str, *, variable: str | None = None,
                 path: tuple = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.variable, self.path = code, message, variable, path


# -- the configuration (APP-001, APP-002) ---------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class Encoding(_Strict):
    dtype: StrictStr | None = None
    chunks: list[StrictInt | StrictBool] | StrictInt | StrictBool | None = None
    fill_value: StrictInt | StrictFloat | StrictStr | StrictBool | None = None
    scale_factor: StrictFloat | StrictInt | None = None
    add_offset: StrictFloat | StrictInt | None = None
    units: StrictStr | None = None
    calendar: StrictStr | None = None
    compressor: dict[str, Any] | StrictBool | None = None

    @field_validator("compressor")
    @classmethod
    def _compressor(cls, v: Any) -> Any:
        if v is True:
            raise ValueError("compressor is a table with a name, or false")
        if isinstance(v, dict) and v.get("name") not in COMPRESSORS:
            raise ValueError(f"compressor name must be one of {', '.join(COMPRESSORS)}")
        return v


COMPRESSORS = ("zstd", "gzip", "blosc")


class VariableSpec(_Strict):
    dims: list[StrictStr] | None = None
    encoding: Encoding = Field(default_factory=Encoding)
    attrs: dict[str, Any] = Field(default_factory=dict)


class LockOptions(_Strict):
    wait: StrictBool = True
    timeout: StrictFloat | StrictInt | None = None
    stale_age: StrictFloat | StrictInt = 30
    poll: StrictFloat | StrictInt = 0.1


class Polling(_Strict):
    """APP-040: how a slice that is not there yet is waited for (seconds)."""

    interval: StrictFloat | StrictInt = Field(default=2, gt=0)
    timeout: StrictFloat | StrictInt = Field(default=60, ge=0)
    marker: StrictStr | None = None

    @field_validator("marker")
    @classmethod
    def _marker(cls, v: Any) -> Any:
        if v is not None and "{slice}" not in v:
            raise ValueError("marker must contain {slice} (the slice's path), e.g. "
                             "\"{slice}.done\"")
        return v


_SOURCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class Meta(_Strict):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    schema_: Literal[1] = Field(alias="schema")


class AppendConfig(_Strict):
    """An append configuration (APP-001). Build with :func:`config_from_dict`."""

    meta: Meta | None = Field(default=None, alias="_META")
    target: StrictStr | None = None
    target_storage_options: dict[str, Any] = Field(default_factory=dict)
    append_dim: StrictStr = "time"
    append_step: StrictStr | StrictInt | StrictFloat | None = None
    fixed_dims: dict[str, StrictInt] = Field(default_factory=dict)
    included_variables: list[StrictStr] = Field(default_factory=list)
    excluded_variables: list[StrictStr] = Field(default_factory=list)
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    attrs: dict[str, Any] = Field(default_factory=dict)
    attrs_update_mode: Literal["keep", "replace", "update", "ignore"] = "keep"
    zarr_format: Literal[2, 3] = 3
    lock: LockOptions = Field(default_factory=LockOptions)
    durable: StrictBool = True
    keep_versions: int = Field(default=0, ge=0, strict=True)
    dry_run: StrictBool = False
    slice_polling: StrictBool | Polling = False
    slice_source: StrictStr | None = None
    slice_source_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("slice_source")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if v is not None and not _SOURCE.match(v):
            raise ValueError("slice_source is \"module:function\" (a Python function to "
                             "call with each slice argument)")
        return v

    def polling(self) -> Polling | None:
        """APP-040: the polling settings, or None when slices are not waited for."""
        if self.slice_polling is True:
            return Polling()
        return self.slice_polling or None

    @field_validator("append_step")
    @classmethod
    def _step(cls, v: Any) -> Any:
        try:
            parse_step(v)
        except AppendSpecError as e:
            raise ValueError(e.message) from e
        return v

    def variable(self, name: str) -> VariableSpec:
        """The settings of a variable: ``variables."*"`` merged under its own."""
        base = self.variables.get("*")
        own = self.variables.get(name)
        if base is None:
            return own or VariableSpec()
        if own is None:
            return base
        merged = merge([base.model_dump(exclude_none=True), own.model_dump(exclude_none=True)])
        return VariableSpec.model_validate(merged)

    def selects(self, name: str) -> bool:
        if self.included_variables and name not in self.included_variables:
            return False
        return name not in self.excluded_variables


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """APP-002: tables merge key by key; every other value replaces the earlier one."""
    out: dict[str, Any] = {}
    for d in docs:
        _merge_into(out, d)
    return out


def _merge_into(out: dict[str, Any], d: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            _merge_into(out[k], v)
        else:
            out[k] = copy.deepcopy(v)


def config_from_dict(data: dict[str, Any]) -> AppendConfig:
    """Validate an append configuration (APP-001). Raises :class:`AppendSpecError` (DM160)
    at the first problem, with its path."""
    from pydantic import ValidationError

    try:
        cfg = AppendConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        path = tuple(err["loc"])
        if path and path[0] == "meta":
            path = ("_META", *path[1:])
        where = ".".join(map(str, path)) or "document"
        raise AppendSpecError("DM160", f"append configuration: {where}: {err['msg']}",
                              path=path) from e
    if cfg.append_step is not None:
        try:
            parse_step(cfg.append_step)
        except AppendSpecError as e:
            raise AppendSpecError("DM160", e.message, path=("append_step",)) from e
    return cfg


def normalize_config(data: dict[str, Any]) -> dict[str, Any]:
    """The normalized form of an append configuration (the conformance fixtures): every
    field with its default."""
    cfg = config_from_dict(data)
    out = cfg.model_dump(by_alias=True, exclude={"meta"}, mode="json")
    out["append_step"] = describe_step(cfg.append_step)
    polling = cfg.polling()
    out["slice_polling"] = None if polling is None else polling.model_dump(mode="json")
    return out


# -- steps and labels (APP-012) ----------------------------------------------------------------------
_DURATION = re.compile(r"^(-?)(\d+(?:\.\d+)?)\s*(s|m|min|h|D|d|W|w)$")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "min": 60 * 10**9, "h": 3600 * 10**9,
            "D": 86400 * 10**9, "d": 86400 * 10**9, "W": 7 * 86400 * 10**9,
            "w": 7 * 86400 * 10**9}


@dataclass(frozen=True)
class AppendStep:
    """``kind``: ``"+"``, ``"-"``, ``"number"`` or ``"duration"`` (``value``: the step, in
    label units, or nanoseconds for a duration); None: no constraint."""

    kind: str | None
    value: float = 0.0


def parse_step(value: Any) -> AppendStep:
    """An ``append_step`` (APP-001). Raises :class:`AppendSpecError` (DM160)."""
    if value is None:
        return AppendStep(None)
    if value in ("+", "-"):
        return AppendStep(value)
    if isinstance(value, bool):
        raise AppendSpecError("DM160", "append_step must be +, -, a number or a duration")
    if isinstance(value, (int, float)):
        if value == 0 or not math.isfinite(value):
            raise AppendSpecError("DM160", "a numeric append_step must be finite and not 0")
        return AppendStep("number", float(value))
    m = _DURATION.match(str(value).strip())
    if not m:
        raise AppendSpecError("DM160", f"append_step {value!r} is not +, -, a number or a "
                              "duration like 1D, 12h, -30m")
    ns = float(m.group(2)) * _UNIT_NS[m.group(3)]
    if ns == 0:
        raise AppendSpecError("DM160", "a duration append_step must not be 0")
    return AppendStep("duration", -ns if m.group(1) else ns)


def describe_step(value: Any) -> dict[str, Any] | None:
    s = parse_step(value)
    return None if s.kind is None else {"kind": s.kind, "value": s.value}


def check_labels(last: float | None, labels: list[float], step: AppendStep, *,
                 what: str = "label", times: bool = False,
                 texts: list[str] | None = None, last_text: str | None = None) -> None:
    """APP-012: ``labels`` (numbers; times as nanoseconds) continue ``last`` (None for a new
    target). Strictly monotonic, no repeat; increasing unless the step is ``-`` or negative;
    a number or a duration fixes every difference exactly. ``times``: the labels are nanoseconds since
    1970 (shown as dates). Raises :class:`AppendSpecError` (DM164)."""
    _fmt_d = _fmt_duration if times else _fmt_number
    seq = ([last] if last is not None else []) + list(labels)
    shown = dict(zip(seq, ([last_text] if last is not None else []) + list(texts or [])))

    def _fmt(v: float) -> str:  # as the labels were written, where known
        text = shown.get(v)
        return text if text else (_fmt_time(v) if times else _fmt_number(v))
    if len(seq) < 2:
        return
    direction = 1  # absent or "+": labels increase (APP-001)
    if step.kind == "+":
        direction = 1
    elif step.kind == "-":
        direction = -1
    elif step.kind in ("number", "duration"):
        direction = 1 if step.value > 0 else -1
    for i in range(1, len(seq)):
        a, b = seq[i - 1], seq[i]
        d = b - a
        at = i - (1 if last is not None else 0)
        against = "the target's last label" if (i == 1 and last is not None) else \
            "the label before it"
        if d == 0:
            raise AppendSpecError("DM164", f"{what} {_fmt(b)} (slice position {at}) repeats "
                                  f"{against}")
        sign = 1 if d > 0 else -1
        if direction == 0:
            direction = sign
        if sign != direction:
            raise AppendSpecError("DM164", f"{what} {_fmt(b)} (slice position {at}) goes "
                                  f"{'down' if sign < 0 else 'up'} from {against} {_fmt(a)}: "
                                  "labels must keep one direction")
        if step.kind in ("number", "duration") and not math.isclose(d, step.value,
                                                                    rel_tol=1e-9):
            raise AppendSpecError("DM164", f"{what} {_fmt(b)} (slice position {at}) follows "
                                  f"{against} {_fmt(a)} by {_fmt_d(d)}, not the append_step "
                                  f"{_fmt_d(step.value)}")


def _fmt_number(v: float) -> str:
    return f"{v:.15g}" if isinstance(v, float) else str(v)


def _fmt_time(v: float) -> str:
    np = need("numpy", **APPEND)

    return str(np.datetime64(int(v), "ns")).replace(".000000000", "").removesuffix("T00:00:00")


def _fmt_duration(v: float) -> str:
    for unit, ns in (("W", 7 * 86400e9), ("D", 86400e9), ("h", 3600e9), ("m", 60e9), ("s", 1e9)):
        if v and abs(v) % ns == 0:
            return f"{v / ns:g}{unit}"
    return f"{v:g}ns"
