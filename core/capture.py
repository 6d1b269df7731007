"""Reading and writing captures (``../shared/captures/FORMAT.md``, version 1).

A capture is JSON Lines: a header object, then rows ``{"ts", "kind", "data", ["url"], ["epoch"]}``
with ``kind`` one of ``open``, ``ws``, ``rest``, ``close``. Reading never raises on a bad row:
it yields a `CaptureError` for it (line number and reason) so the caller reports and skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Iterator

import orjson

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


@dataclass(frozen=True, slots=True)
class CaptureError:
    line: int
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line, "reason": self.reason}


class CaptureFormatError(ValueError):
    """The file is not a capture at all (missing or unsupported header)."""


def read_capture(stream: IO[bytes]) -> tuple[CaptureHeader, Iterator[CaptureRow | CaptureError]]:
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


def _rows(stream: IO[bytes]) -> Iterator[CaptureRow | CaptureError]:
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
        yield CaptureRow(number, float(ts), kind, data, row.get("url", "") or "")


def write_header(stream: IO[bytes], venue: str, source: str) -> None:
    stream.write(orjson.dumps({"capture": 1, "venue": venue, "source": source}) + b"\n")


def write_row(stream: IO[bytes], ts: float, kind: str, data: str, url: str | None = None, epoch: int | None = None) -> None:
    row: dict = {"ts": ts, "kind": kind}
    if url is not None:
        row["url"] = url
    row["data"] = data
    if epoch is not None:
        row["epoch"] = epoch
    stream.write(orjson.dumps(row) + b"\n")
