"""The browser console's source: /status JSON back to a snapshot, keys to control calls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from epochbot.app.console.serve import RemoteSource, request_for, snapshot_from_status
from epochbot.model.events import OperatorForceResync, OperatorPause, OperatorSetMode
from epochbot.views.report import build_report
from tests.tui.fixtures import degraded_snapshot


def test_status_json_rebuilds_a_snapshot_the_widgets_can_render():
    report = json.loads(json.dumps(build_report(degraded_snapshot())))
    snap = snapshot_from_status(report, seq=1, at_ns=degraded_snapshot().at_ns)
    assert (snap.venue, snap.epoch, snap.confidence, snap.mode.mode) == ("sim", 5, 0.35, "cancel-makers")
    assert [r.factor for r in snap.reasons] == ["market_silence_ms", "invalid_books"]
    assert snap.book("BTCUSDT").state == "buffering" and snap.book("ETHUSDT").bids[0].price == "3120.0"
    assert [e.epoch for e in snap.epochs] == [1, 2, 3, 4, 5] and snap.epochs[0].close_cause == "market_silence"


def test_control_events_map_onto_the_control_endpoint():
    assert request_for(OperatorForceResync()) == ("/resync", {})
    assert request_for(OperatorForceResync(symbol="BTCUSDT")) == ("/resync", {"symbol": "BTCUSDT"})
    assert request_for(OperatorForceResync(replace_session=True)) == ("/resync", {"session": True})
    assert request_for(OperatorSetMode(mode="halted")) == ("/mode", {"mode": "halted"})
    assert request_for(OperatorPause(paused=False)) == ("/pause", {"paused": False})


def test_remote_source_polls_status_and_posts_actions_with_the_bearer_token():
    posts = []
    body = json.dumps(build_report(degraded_snapshot())).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers["Content-Length"])
            posts.append((self.path, self.headers["Authorization"], json.loads(self.rfile.read(length))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = RemoteSource(f"http://127.0.0.1:{server.server_port}", "s3cret", interval_s=0.05)
    worker = threading.Thread(target=source.serve)
    worker.start()
    try:
        source.submit(OperatorSetMode(mode="halted"))
        for _ in range(100):
            if source.latest() is not None and posts:
                break
            threading.Event().wait(0.02)
    finally:
        source.request_stop("test")
        worker.join(5)
        server.shutdown()
    assert source.latest().epoch == 5
    assert posts == [("/mode", "Bearer s3cret", {"mode": "halted"})]
