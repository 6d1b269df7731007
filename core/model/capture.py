"""Reading and writing captures (``../shared/captures/FORMAT.md``, version 1).

A capture is JSON Lines: a header object, then rows ``{"ts", "kind", "data", ["url"], ["epoch"]}``
with ``kind`` one of ``open``, ``ws``, ``rest``, ``close``. Reading never raises on a bad row:
it yields a `CaptureError` for it (line number and reason) so the caller reports and skips it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

from epochbot.model.errors import DataError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from epochbot.model.events import ControlEvent
    from epochbot.model.trade_events import TradingEvent

__all__ = ["CaptureError", "CaptureHeader", "CaptureRow", "read_capture", "write_header", "write_row"]

KINDS = frozenset({"open", "ws", "rest", "close"})


@dataclass(frozen=True, slots=True)
class CaptureHeader:
    version: int
    venue: str
    source: str


@dataclass(frozen=True, slots=True)
class CaptureRow:
    line: int
    ts: float
    kind: str
    data: str
    url: str = ""
    epoch: int | None = None  # journals of epochbot before version 2 tag rows with their epoch


@dataclass(frozen=True, slots=True)
class CaptureError:
    line: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason}


class CaptureFormatError(DataError):
    """The file is not a capture at all (missing or unsupported header)."""


class LineStream(Protocol):
    """What a capture is read from: a binary file, a gzip stream, anything with lines of bytes."""

    def readline(self, size: int = -1, /) -> bytes: ...
    def __iter__(self) -> Iterator[bytes]: ...


def read_capture(stream: LineStream) -> tuple[CaptureHeader, Iterator[CaptureRow | CaptureError]]:
    first = stream.readline()
    try:
        header = orjson.loads(first)
        version = header["capture"]
        venue = header.get("venue", "")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise CaptureFormatError(f"line 1: not a capture header: {exc}") from None
    if version != 1:
        raise CaptureFormatError(f"line 1: unsupported capture version {version!r} (this build reads 1)")
    if venue not in ("binance-spot", "binance-usdm"):
        raise CaptureFormatError(f"line 1: unknown venue {venue!r} (expected binance-spot or binance-usdm)")
    return CaptureHeader(1, venue, str(header.get("source", ""))), _rows(stream)


def _rows(stream: LineStream) -> Iterator[CaptureRow | CaptureError]:
    loads = orjson.loads
    for number, line in enumerate(stream, start=2):
        if not line.strip():
            continue
        try:
            row = loads(line)
            kind = row["kind"]
            ts = row["ts"]
            data = row.get("data", "")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            yield CaptureError(number, f"unreadable row: {exc}")
            continue
        if kind not in KINDS:
            yield CaptureError(number, f"unknown row kind {kind!r}")
            continue
        if not isinstance(ts, (int, float)) or not isinstance(data, str):
            yield CaptureError(number, "row has a non-numeric ts or non-string data")
            continue
        epoch = row.get("epoch")
        yield CaptureRow(number, float(ts), kind, data, row.get("url", "") or "", epoch if type(epoch) is int else None)


def write_header(stream: IO[bytes], venue: str, source: str) -> None:
    stream.write(orjson.dumps({"capture": 1, "venue": venue, "source": source}) + b"\n")


def write_row(
    stream: IO[bytes], ts: float, kind: str, data: str, url: str | None = None, epoch: int | None = None
) -> None:
    row: dict[str, object] = {"ts": ts, "kind": kind}
    if url is not None:
        row["url"] = url
    row["data"] = data
    if epoch is not None:
        row["epoch"] = epoch
    stream.write(orjson.dumps(row) + b"\n")


# ============================================================================= version 2
#
# Version 2 is the engine's own journal: every input of the engine in the order it consumed
# it (docs/capture-format.md). Rows are written by `epochbot.persistence.journal.EngineJournal` and
# replayed by `epochbot.offline.replay`. The helpers below turn inputs into JSON-ready values and back.

V2_KINDS = frozenset({"ws", "ev", "start", "trading", "history", "import", "defect"})


def encode_value(value: Any) -> Any:
    """A field value -> JSON: Decimal/Fraction as tagged strings, tuples tagged, rest as is.

    Typed ``Any`` both ways, like `json.dumps`/`json.loads`: any field value goes in, and what
    comes out is whatever JSON value stands for it."""
    from decimal import Decimal
    from fractions import Fraction

    kind = type(value)
    if kind is tuple:
        return {"$t": [encode_value(v) for v in value]}
    if kind is Decimal:
        return {"$d": str(value)}
    if kind is Fraction:
        return {"$q": str(value)}
    if kind is set or kind is frozenset:
        return {"$s": sorted(encode_value(v) for v in value)}
    if kind is dict:
        return {"$m": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if kind is list:
        return value  # lists (levels) go as they are: orjson writes them, decoding gives lists
    if (
        hasattr(value, "value")
        and type(value).__module__.startswith("epochbot")
        and hasattr(type(value), "__members__")
    ):
        return value.value  # an Enum: its value (constructors take it back)
    return value


def decode_value(value: Any) -> Any:
    """The field value `encode_value` wrote (JSON in; Decimal, Fraction, tuple, set, ... out)."""
    if type(value) is dict:
        if "$t" in value:
            return tuple(decode_value(v) for v in value["$t"])
        if "$d" in value:
            from decimal import Decimal

            return Decimal(value["$d"])
        if "$q" in value:
            from fractions import Fraction

            return Fraction(value["$q"])
        if "$s" in value:
            return set(decode_value(v) for v in value["$s"])
        if "$m" in value:
            return {decode_value(k): decode_value(v) for k, v in value["$m"]}
        return {k: decode_value(v) for k, v in value.items()}
    if type(value) is list:
        return [decode_value(v) for v in value]
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def encode_dataclass(obj: DataclassInstance) -> dict[str, object]:
    """Any slotted dataclass instance -> {"t": type name, "f": {field: encoded value}}."""
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        from dataclasses import fields

        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(obj))
    out: dict[str, object] = {}
    for name in names:
        value = getattr(obj, name)
        kind = type(value)
        out[name] = (
            value
            if (kind is int or kind is str or kind is float or kind is bool or value is None)
            else encode_value(value)
        )
    return {"t": cls.__name__, "f": out}


EventType = type["ControlEvent"] | type["TradingEvent"]
_EVENT_TYPES: dict[str, EventType] | None = None


def event_types() -> dict[str, EventType]:
    """Every control and trading event class by name (the modules are scanned once)."""
    global _EVENT_TYPES
    if _EVENT_TYPES is None:
        from epochbot.model import events as ev
        from epochbot.model import trade_events as tev

        out: dict[str, EventType] = {}
        for module in (ev, tev):
            for name in dir(module):
                cls = getattr(module, name)
                # Every control and trading event is a dataclass of one of these two bases.
                if isinstance(cls, type) and issubclass(cls, (ev.ControlEvent, tev.TradingEvent)):
                    out[name] = cls
        _EVENT_TYPES = out
    return _EVENT_TYPES


def decode_event(type_name: str, encoded_fields: dict[str, object]) -> ControlEvent | TradingEvent:
    """The event encoded by `encode_dataclass`; KeyError for an unknown type, TypeError for
    fields the class does not have."""
    cls = event_types()[type_name]
    return cls(**{k: decode_value(v) for k, v in encoded_fields.items()})


def write_header_v2(stream: IO[bytes], header: dict[str, object]) -> None:
    stream.write(orjson.dumps({"capture": 2, **header}) + b"\n")


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One version-2 row: ``kind`` and the row object as read."""

    line: int
    kind: str
    row: dict[str, Any]  # a JSON object as read (the row's fields are checked by its reader)


def read_any(
    stream: IO[bytes],
) -> tuple[dict[str, Any], Iterator[CaptureRow | CaptureError] | Iterator[JournalRow | CaptureError]]:
    """(header dict, rows) for a version 1 or 2 capture. Version 1 rows are `CaptureRow`s,
    version 2 rows `JournalRow`s; bad rows are `CaptureError`s. Raises CaptureFormatError for a
    file that is not a capture."""
    first = stream.readline()
    try:
        header = orjson.loads(first)
        version = header["capture"]
        venue = header.get("venue", "")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise CaptureFormatError(f"line 1: not a capture header: {exc}") from None
    if version not in (1, 2):
        raise CaptureFormatError(f"line 1: unsupported capture version {version!r} (this build reads 1 and 2)")
    if venue not in ("binance-spot", "binance-usdm"):
        raise CaptureFormatError(f"line 1: unknown venue {venue!r} (expected binance-spot or binance-usdm)")
    if version == 1:
        return header, _rows(stream)
    return header, _rows_v2(stream)


def _rows_v2(stream: IO[bytes]) -> Iterator[JournalRow | CaptureError]:
    loads = orjson.loads
    for number, line in enumerate(stream, start=2):
        if not line.strip():
            continue
        try:
            row = loads(line)
            kind = row["k"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            yield CaptureError(number, f"unreadable row: {exc}")
            continue
        if kind not in V2_KINDS:
            yield CaptureError(number, f"unknown row kind {kind!r}")
            continue
        yield JournalRow(number, kind, row)
