"""`epochbot export JOURNAL --parquet OUT`: a journal (or capture) as one Parquet table.

For research with DuckDB, Polars or Spark. The input is a journal file, a ``.gz`` of one, or a
directory of them (every ``*.jsonl`` / ``*.jsonl.gz`` in name order, i.e. rotation order). Rows
are read generically as JSON objects, *not* through the replay reader: any row kind (the capture
format's ``open``/``ws``/``rest``/``close`` and whatever later journal versions add, such as
control, timer or order-receipt rows) is exported, with the fields this table does not name kept
in ``extra``. The layout (one row per journal row, in file order):

========== ======== ==============================================================================
column     type     meaning
========== ======== ==============================================================================
file       string   the journal file the row came from (name only)
line       int64    line number in that file (1 is the header)
ts         float64  the row's local receive / process time, seconds since the epoch
kind       string   row kind (``ws``, ``rest``, ``open``, ``close``, ...)
epoch      int64    the session epoch (null when the row has none)
symbol     string   the symbol the row is about, when it can be told (event ``s``, URL ``symbol=``)
stream     string   a ``ws`` frame's stream name (``btcusdt@depth@100ms``), else null
event      string   a ``ws`` frame's event type (``depthUpdate``, ``aggTrade``, ...), else null
exchange_ms int64   the venue's event time ``E`` of a ``ws`` frame, else null
url        string   the row's URL (``open`` and ``rest`` rows), else null
data       string   the row's payload verbatim (frame text, REST body, reason)
extra      string   the row's other fields as JSON (``{}`` when none): survives new row kinds
========== ======== ==============================================================================

The header of each file is kept as Parquet key-value metadata (``epochbot.headers``). Rows that
are not JSON objects are skipped and counted (printed on stderr), never fatal. Written in
batches of ``--batch`` rows, so memory stays bounded for journals of any size.

Example (DuckDB): ``SELECT symbol, count(*) FROM 'out.parquet' WHERE event = 'depthUpdate'
GROUP BY 1``; (Polars): ``pl.scan_parquet('out.parquet').filter(pl.col('kind') == 'rest')``.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = ["add_parser", "export_parquet", "journal_files", "rows_of"]

_NAMED = ("ts", "kind", "epoch", "url", "data")
COLUMNS = ("file", "line", "ts", "kind", "epoch", "symbol", "stream", "event", "exchange_ms", "url", "data", "extra")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a journal (file, .gz or directory) as Parquet")
    p.add_argument("journal", help="journal file, .jsonl.gz, or a directory of them")
    p.add_argument("--parquet", required=True, metavar="OUT", help="the Parquet file to write")
    p.add_argument("--batch", type=int, default=50_000, help="rows per written batch (memory bound)")
    p.set_defaults(func=run)


def journal_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.iterdir() if p.is_file() and (p.name.endswith(".jsonl") or p.name.endswith(".jsonl.gz"))
        )
    return [path]


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))  # a GzipFile reads like any binary file
    return open(path, "rb")


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _describe_ws(data: str) -> tuple[str | None, str | None, str | None, int | None]:
    """(symbol, stream, event type, exchange ms) of a websocket frame, None where unknown."""
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None, None, None, None
    if not isinstance(frame, dict):
        return None, None, None, None
    stream = frame.get("stream") if isinstance(frame.get("stream"), str) else None
    body = frame.get("data", frame) if stream is not None else frame
    if isinstance(body, dict) and isinstance(body.get("event"), dict):  # WebSocket API user-data wrapper
        body = body["event"]
    if not isinstance(body, dict):
        return None, stream, None, None
    symbol = body.get("s") if isinstance(body.get("s"), str) else None
    if symbol is None and stream is not None and "@" in stream:
        head = stream.split("@", 1)[0]
        symbol = head.upper() if head.isalnum() else None
    event = body.get("e") if isinstance(body.get("e"), str) else None
    return symbol, stream, event, _int(body.get("E"))


def rows_of(path: Path, skipped: list[str]) -> tuple[dict | None, Iterator[dict]]:
    """The header of one journal file and an iterator of its rows as column dicts."""
    stream = _open(path)
    first = stream.readline()
    try:
        header = orjson.loads(first)
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except (orjson.JSONDecodeError, ValueError):
        header = None
        stream.seek(0)

    def rows() -> Iterator[dict]:
        start = 2 if header is not None else 1
        with stream:
            for number, raw in enumerate(stream, start=start):
                if not raw.strip():
                    continue
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    skipped.append(f"{path.name}:{number}: {exc}")
                    continue
                if not isinstance(row, dict):
                    skipped.append(f"{path.name}:{number}: not a JSON object")
                    continue
                kind = row.get("kind")
                kind = kind if isinstance(kind, str) else None
                data = row.get("data")
                if data is not None and not isinstance(data, str):
                    data = orjson.dumps(data).decode()
                url = row.get("url") if isinstance(row.get("url"), str) and row.get("url") else None
                ts = row.get("ts")
                symbol: str | None = None
                stream_name: str | None = None
                event: str | None = None
                exchange_ms: int | None = None
                if kind == "ws" and data:
                    symbol, stream_name, event, exchange_ms = _describe_ws(data)
                elif url and "symbol=" in url:
                    symbol = next(iter(parse_qs(urlsplit(url).query).get("symbol") or ()), None)
                if symbol is None and isinstance(row.get("symbol"), str):
                    symbol = row["symbol"]
                extra = {k: v for k, v in row.items() if k not in _NAMED}
                yield {
                    "file": path.name,
                    "line": number,
                    "ts": float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None,
                    "kind": kind,
                    "epoch": _int(row.get("epoch")),
                    "symbol": symbol,
                    "stream": stream_name,
                    "event": event,
                    "exchange_ms": exchange_ms,
                    "url": url,
                    "data": data,
                    "extra": orjson.dumps(extra).decode(),
                }

    return header, rows()


def export_parquet(journal: str | Path, out: str | Path, *, batch: int = 50_000) -> dict:
    """Write the journal's rows to ``out``; returns {"rows", "files", "skipped"}."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the installation
        raise RuntimeError("Parquet export needs pyarrow: pip install 'epochbot[parquet]'") from None
    schema = pa.schema(
        [
            ("file", pa.string()),
            ("line", pa.int64()),
            ("ts", pa.float64()),
            ("kind", pa.string()),
            ("epoch", pa.int64()),
            ("symbol", pa.string()),
            ("stream", pa.string()),
            ("event", pa.string()),
            ("exchange_ms", pa.int64()),
            ("url", pa.string()),
            ("data", pa.string()),
            ("extra", pa.string()),
        ]
    )
    path = Path(journal)
    if not path.exists():
        raise FileNotFoundError(f"no such journal: {path}")
    files = journal_files(path)
    skipped: list[str] = []
    headers = {}
    parsed = []
    for f in files:
        header, rows = rows_of(f, skipped)
        headers[f.name] = header
        parsed.append(rows)
    metadata = {b"epochbot.headers": orjson.dumps(headers)}
    total = 0
    tmp = Path(out).with_name(Path(out).name + ".part")
    with pq.ParquetWriter(tmp, schema.with_metadata(metadata), compression="zstd") as writer:
        pending: list[dict] = []

        def flush() -> None:
            if pending:
                writer.write_table(pa.Table.from_pylist(pending, schema=schema))
                pending.clear()

        for rows in parsed:
            for row in rows:
                pending.append(row)
                total += 1
                if len(pending) >= batch:
                    flush()
        flush()
    tmp.replace(out)
    return {"rows": total, "files": len(files), "skipped": len(skipped), "skipped_sample": skipped[:10]}


def run(args: argparse.Namespace) -> int:
    try:
        result = export_parquet(args.journal, args.parquet, batch=max(1, args.batch))
    except FileNotFoundError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    for line in result["skipped_sample"]:
        print(f"export: skipped {line}", file=sys.stderr)
    print(
        f"exported {result['rows']} rows from {result['files']} file(s) to {args.parquet}"
        + (f" ({result['skipped']} unreadable rows skipped)" if result["skipped"] else "")
    )
    return 0
