"""Replay: golden test on the real spot capture, the CLI, malformed input, USD-M and epochs."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from epochbot.offline.replay import replay_file

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO.parent / "shared" / "captures" / "binance-spot-2021-10-12.jsonl"
SYMBOLS = ("BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR")

needs_capture = pytest.mark.skipif(not CAPTURE.exists(), reason="real capture not present")


# ------------------------------------------------------------------ independent reference


def reference_spot_books(path: Path) -> dict[str, tuple[dict, dict, int]]:
    """Binance's documented spot algorithm, plainly, with Decimals: buffer, snapshot, drop, bridge, apply."""
    diffs: dict[str, list] = {}
    snapshots: dict[str, dict] = {}
    with open(path, "rb") as f:
        next(f)
        for line in f:
            row = json.loads(line)
            if row["kind"] == "ws":
                msg = json.loads(row["data"])
                msg = msg.get("data", msg)
                if msg.get("e") == "depthUpdate":
                    diffs.setdefault(msg["s"], []).append(msg)
            elif row["kind"] == "rest" and "/depth" in row["url"]:
                symbol = parse_qs(urlsplit(row["url"]).query)["symbol"][0]
                snapshots.setdefault(symbol, json.loads(row["data"]))
    books = {}
    for symbol, snap in snapshots.items():
        last = snap["lastUpdateId"]
        bids = {Decimal(p): Decimal(q) for p, q in snap["bids"] if Decimal(q)}
        asks = {Decimal(p): Decimal(q) for p, q in snap["asks"] if Decimal(q)}
        pending = [d for d in diffs.get(symbol, []) if d["u"] > last]
        assert pending[0]["U"] <= last + 1 <= pending[0]["u"], "reference: first event does not bridge"
        prev = None
        for d in pending:
            if prev is not None:
                assert d["U"] == prev + 1, "reference: gap"
            for side, levels in ((bids, d["b"]), (asks, d["a"])):
                for p, q in levels:
                    if Decimal(q) == 0:
                        side.pop(Decimal(p), None)
                    else:
                        side[Decimal(p)] = Decimal(q)
            prev = d["u"]
        books[symbol] = (bids, asks, prev if prev is not None else last)
    return books


def engine_side(book, side: dict) -> dict:
    codec = book.codec
    return {Decimal(codec.price_str(p)): Decimal(codec.qty_str(q)) for p, q in side.items()}


@needs_capture
def test_real_capture_syncs_all_four_books_without_gaps():
    result = replay_file(str(CAPTURE))

    report = result.report()
    assert sorted(report["symbols"]) == list(SYMBOLS)
    for symbol in SYMBOLS:
        info = report["symbols"][symbol]
        assert info["synced"] and info["gaps"] == 0, symbol
    assert result.malformed == []


@needs_capture
def test_real_capture_books_equal_the_independent_reference_level_by_level():
    reference = reference_spot_books(CAPTURE)

    engine = replay_file(str(CAPTURE)).engine

    assert set(reference) == set(SYMBOLS)
    for symbol, (bids, asks, last) in reference.items():
        book = engine.book(symbol)
        assert engine_side(book, book.bids) == bids, symbol
        assert engine_side(book, book.asks) == asks, symbol
        assert book.last_update_id == last, symbol
        assert book.check_invariants() is None


@needs_capture
def test_two_replays_of_the_same_capture_give_the_same_state_hash():
    assert replay_file(str(CAPTURE)).engine.state_hash() == replay_file(str(CAPTURE)).engine.state_hash()


def _plain_decimal(text: str) -> bool:
    return "e" not in text.lower() and not ("." in text and text.endswith("0")) and not text.endswith(".")


@needs_capture
def test_replay_cli_prints_one_json_report():
    proc = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(CAPTURE), "--json"],
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert {"events", "discarded_stale_epoch", "state_hash", "symbols"} <= set(report)
    for symbol in SYMBOLS:
        info = report["symbols"][symbol]
        assert {"synced", "last_update_id", "gaps", "book_resyncs", "bids", "asks"} <= set(info)
        assert info["synced"] and info["gaps"] == 0
        assert len(info["bids"]) == 20 and len(info["asks"]) == 20
        for price, qty in info["bids"] + info["asks"]:
            assert _plain_decimal(price) and _plain_decimal(qty)
    assert report["state_hash"] == replay_file(str(CAPTURE)).engine.state_hash()


# ------------------------------------------------------------------ synthetic captures


def header(venue: str = "binance-spot") -> dict:
    return {"capture": 1, "venue": venue, "source": "test"}


def row(ts: float, kind: str, data: str = "", url: str | None = None) -> dict:
    out = {"ts": ts, "kind": kind, "data": data}
    if url is not None:
        out["url"] = url
    return out


def depth_frame(symbol: str, first: int, final: int, bids=(), asks=(), pu: int | None = None, wrap: bool = True) -> str:
    event = {
        "e": "depthUpdate",
        "E": 1,
        "s": symbol,
        "U": first,
        "u": final,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }
    if pu is not None:
        event["pu"] = pu
    return orjson.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": event} if wrap else event).decode()


def snapshot_row(ts: float, symbol: str, last: int, venue: str = "binance-spot") -> dict:
    body = {
        "lastUpdateId": last,
        "bids": [["10.00", "1.00"], ["9.00", "2.00"]],
        "asks": [["11.00", "1.00"], ["12.00", "2.00"]],
    }
    path = "/api/v3/depth" if venue == "binance-spot" else "/fapi/v1/depth"
    return row(ts, "rest", orjson.dumps(body).decode(), url=f"https://x{path}?symbol={symbol}&limit=1000")


def write(tmp_path: Path, venue: str, rows: list, raw_lines: dict[int, bytes] | None = None) -> Path:
    lines = [orjson.dumps(header(venue))] + [orjson.dumps(r) for r in rows]
    for index, raw in (raw_lines or {}).items():
        lines.insert(index, raw)
    path = tmp_path / "capture.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_malformed_rows_and_frames_are_reported_with_line_numbers_and_skipped(tmp_path):
    rows = [
        row(1.0, "open", url="wss://x/stream?streams=abc@depth@100ms"),
        row(1.1, "ws", depth_frame("ABC", 100, 101, bids=[["10.00", "3.00"]])),
        row(1.2, "ws", "this is not json"),  # line 5 (after the raw line inserted at 3)
        row(1.3, "ws", depth_frame("ABC", 102, 102).replace('"U":102', '"U":"102"')),  # line 6
        row(1.4, "ws", depth_frame("ABC", 102, 102)[:40]),  # truncated, line 7
        snapshot_row(1.5, "ABC", 100),
        row(1.6, "ws", depth_frame("ABC", 102, 103, asks=[["11.00", "0.00"]])),
    ]
    path = write(tmp_path, "binance-spot", rows, raw_lines={3: b"{not a row"})

    result = replay_file(str(path))

    assert [m["line"] for m in result.malformed] == [4, 5, 6, 7]
    book = result.engine.book("ABC")
    assert book.synced and book.last_update_id == 103
    assert book.top_strings() == ([["10", "3"], ["9", "2"]], [["12", "2"]])
    assert result.engine.counters["malformed"] == 3


def usdm_rows(gap: bool) -> list:
    rows = [
        row(1.0, "open", url="wss://x/public/stream?streams=btcusdt@depth@100ms"),
        row(1.1, "ws", depth_frame("BTCUSDT", 95, 99, pu=94, wrap=False)),
        row(1.2, "ws", depth_frame("BTCUSDT", 100, 104, bids=[["10.00", "5.00"]], pu=99)),
        snapshot_row(1.3, "BTCUSDT", 100, "binance-usdm"),
        row(1.4, "ws", depth_frame("BTCUSDT", 105, 110, pu=104)),
    ]
    if gap:
        rows += [
            row(1.5, "ws", depth_frame("BTCUSDT", 115, 120, pu=112)),  # pu should be 110
            row(1.6, "ws", depth_frame("BTCUSDT", 121, 125, asks=[["11.00", "0"]], pu=120)),
            snapshot_row(1.7, "BTCUSDT", 122, "binance-usdm"),
            row(1.8, "ws", depth_frame("BTCUSDT", 126, 130, pu=125)),
        ]
    return rows


def test_usdm_capture_with_a_pu_chain_syncs(tmp_path):
    result = replay_file(str(write(tmp_path, "binance-usdm", usdm_rows(gap=False))))

    info = result.report()["symbols"]["BTCUSDT"]
    assert (info["synced"], info["gaps"], info["last_update_id"]) == (True, 0, 110)
    assert info["bids"][0] == ["10", "5"]


def test_usdm_capture_with_an_injected_gap_resyncs_from_the_next_snapshot(tmp_path):
    result = replay_file(str(write(tmp_path, "binance-usdm", usdm_rows(gap=True))))

    info = result.report()["symbols"]["BTCUSDT"]
    assert (info["synced"], info["gaps"], info["book_resyncs"], info["last_update_id"]) == (True, 1, 1, 130)
    assert result.engine.epoch == 1


def test_close_then_open_starts_epoch_two_and_resyncs(tmp_path):
    rows = [
        row(1.0, "open", url="wss://x/stream?streams=abc@depth@100ms"),
        row(1.1, "ws", depth_frame("ABC", 100, 101)),
        snapshot_row(1.2, "ABC", 100),
        row(1.3, "close", "eof"),
        row(1.4, "open", url="wss://x/stream?streams=abc@depth@100ms"),
        row(1.5, "ws", depth_frame("ABC", 300, 301, bids=[["10.00", "7.00"]])),
        snapshot_row(1.6, "ABC", 300),
    ]

    result = replay_file(str(write(tmp_path, "binance-spot", rows)))

    engine = result.engine
    assert engine.epoch == 2
    assert [e.epoch for e in engine.epochs] == [1, 2]
    book = engine.book("ABC")
    assert book.synced and book.last_update_id == 301
    assert book.top_strings()[0][0] == ["10", "7"]


def test_second_open_without_close_also_starts_a_new_epoch(tmp_path):
    rows = [
        row(1.0, "open", url="wss://x/stream?streams=abc@depth@100ms"),
        row(1.1, "ws", depth_frame("ABC", 100, 101)),
        snapshot_row(1.2, "ABC", 100),
        row(1.4, "open", url="wss://x/stream?streams=abc@depth@100ms"),
        row(1.5, "ws", depth_frame("ABC", 300, 301)),
        snapshot_row(1.6, "ABC", 300),
    ]

    result = replay_file(str(write(tmp_path, "binance-spot", rows)))

    assert result.engine.epoch == 2
    assert result.engine.book("ABC").synced and result.engine.book("ABC").last_update_id == 301
