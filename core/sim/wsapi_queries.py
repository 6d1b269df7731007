"""`WsApiQueries`: the WebSocket API's market-data, account and listenKey requests.

The requests a client makes besides trading (which stays in ``wsapi.py``), each answered with
the body of its REST twin, as Binance's WebSocket API documents them:

* spot (``/ws-api/v3``): ``depth`` (REST ``/api/v3/depth``, weight by ``limit`` as REST),
  ``ticker.price``, ``ticker.book``, and SIGNED ``account.status`` (REST ``/api/v3/account``),
  ``allOrders``, ``myTrades``;
* USD-M (``/ws-fapi/v1``): ``depth``, ``ticker.price``, ``ticker.book``, SIGNED ``account.status``,
  ``account.balance``, ``account.position`` (and their ``v2/`` forms, same bodies), and the
  listenKey requests ``userDataStream.start``/``.ping``/``.stop`` (USER_STREAM: the ``apiKey``
  parameter, or the logged-on session's key), sharing the REST listenKey store. On spot these
  three were removed on 2026-02-20 and are refused like any unknown method.

`WsApiServer` charges the weight (`weight`) and checks signatures; this part only answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from epochbot.sim import auth
from epochbot.sim.clock import now_ms
from epochbot.sim.listen_keys import ListenKeys
from epochbot.sim.market import SymbolMarket, fixed
from epochbot.sim.matching import PaperVenue
from epochbot.sim.weights import depth_weight

__all__ = ["WsApiQueries"]

PUBLIC = frozenset({"depth", "ticker.price", "ticker.book"})
USER_STREAM = frozenset({"userDataStream.start", "userDataStream.ping", "userDataStream.stop"})
SPOT_SIGNED = frozenset({"account.status", "allOrders", "myTrades"})
USDM_SIGNED = frozenset(
    {
        "account.status",
        "account.balance",
        "account.position",
        "v2/account.status",
        "v2/account.balance",
        "v2/account.position",
    }
)


class WsApiQueries:
    """Answers the WebSocket API's read and listenKey requests of one market."""

    def __init__(
        self,
        *,
        market: str,
        markets: dict[str, SymbolMarket],
        venue: PaperVenue,
        accounts: dict[str, auth.Credentials],
        listen_keys: ListenKeys,
        depth_snapshot: Callable[[str, int], dict[str, Any]],
        symbol_status: Callable[[str], str],
    ) -> None:
        self._spot = market == "spot"
        self._markets = markets
        self._venue = venue
        self._accounts = accounts
        self._listen_keys = listen_keys
        self._depth_snapshot = depth_snapshot
        self._symbol_status = symbol_status
        self.unsigned = PUBLIC if self._spot else PUBLIC | USER_STREAM
        self.signed = SPOT_SIGNED if self._spot else USDM_SIGNED

    # ------------------------------------------------------------------ weights

    def weight(self, method: str, params: Mapping[str, Any], listed: int) -> int:
        """The request weight of ``method`` with these parameters (``listed``: the table's)."""
        if method == "depth":
            return depth_weight("spot" if self._spot else "usdm", _limit(params, self._spot))
        if method in ("ticker.price", "ticker.book") and params.get("symbol") is None:
            return 4 if self._spot else (2 if method == "ticker.price" else 5)
        return listed

    # ------------------------------------------------------------------ answers

    async def answer_unsigned(self, method: str, params: Mapping[str, Any], logon: auth.Credentials | None) -> Any:
        """Answer a public or USER_STREAM request (``logon``: the session's logged-on key)."""
        if method == "depth":
            return self._depth_snapshot(self._symbol(params), _limit(params, self._spot))
        if method in ("ticker.price", "ticker.book"):
            rows = [self._ticker(method, s) for s in self._selected(params)]
            return rows[0] if params.get("symbol") is not None else rows
        creds = logon
        if creds is None or params.get("apiKey") is not None:
            key = params.get("apiKey")
            creds = auth.verify_api_key(key if isinstance(key, str) else None, self._accounts)
        handlers: dict[str, Callable[[str], Awaitable[Any]]] = {
            "userDataStream.start": self._start,
            "userDataStream.ping": self._ping,
            "userDataStream.stop": self._stop,
        }
        return await handlers[method](creds.account_id)

    def answer_signed(self, method: str, creds: auth.Credentials, params: dict[str, str]) -> Any:
        """Answer a SIGNED request of ``creds``' account (``params`` as Binance's strings)."""
        venue, account = self._venue, creds.account_id
        name = method.removeprefix("v2/")
        if name == "account.status":
            body = venue.account(account, now_ms())
            if self._spot and params.get("omitZeroBalances") == "true":
                body["balances"] = [b for b in body["balances"] if b["free"].strip("0.") or b["locked"].strip("0.")]
            return body
        if name == "account.balance":
            return self._balances(venue.account(account, now_ms()))
        if name == "account.position":
            symbol = params.get("symbol")
            marks = {s: m.mark_price() for s, m in self._markets.items()}
            return venue.position_risk(account, symbol.upper() if symbol else None, marks)
        symbol = self._symbol(params)
        limit = _int(params, "limit")
        if name == "allOrders":
            return venue.all_orders(account, symbol, 500 if limit is None else limit)
        return venue.user_trades(
            account,
            symbol,
            start_time=_int(params, "startTime"),
            end_time=_int(params, "endTime"),
            from_id=_int(params, "fromId"),
            limit=500 if limit is None else limit,
        )

    # ------------------------------------------------------------------ the pieces

    def _symbol(self, params: Mapping[str, Any]) -> str:
        symbol = params.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise auth.SimApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol.upper() not in self._markets:
            raise auth.SimApiError(-1121, "Invalid symbol.")
        return symbol.upper()

    def _symbols(self, params: Mapping[str, Any]) -> list[str]:
        if params.get("symbol") is not None:
            return [self._symbol(params)]
        listed = params.get("symbols")
        if listed is None:
            return list(self._markets)
        if isinstance(listed, str):
            try:
                listed = orjson.loads(listed)
            except orjson.JSONDecodeError:
                raise auth.SimApiError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
            raise auth.SimApiError(-1100, "Illegal characters found in parameter 'symbols'.")
        names = [s.upper() for s in listed]
        if any(n not in self._markets for n in names):
            raise auth.SimApiError(-1121, "Invalid symbol.")
        return names

    def _selected(self, params: Mapping[str, Any]) -> list[str]:
        """The tickers' symbols: ``symbol``, ``symbols`` or every one, then spot's ``symbolStatus``."""
        names = self._symbols(params)
        status = params.get("symbolStatus")
        if status is None or not self._spot:
            return names
        if params.get("symbol") is not None or params.get("symbols") is not None:
            raise auth.SimApiError(-1128, "Combination of optional parameters invalid.")
        return [n for n in names if self._symbol_status(n) == status]

    def _ticker(self, method: str, symbol: str) -> dict[str, Any]:
        m = self._markets[symbol]
        pd, qd = m.price_decimals, m.qty_decimals
        now = now_ms()
        if method == "ticker.price":
            row: dict[str, Any] = {"symbol": symbol, "price": fixed(m.last_trade_price, pd)}
            if not self._spot:
                row["time"] = now
            return row
        bid, ask = m.best_bid, m.best_ask
        row = {"symbol": symbol}
        if not self._spot:
            row["lastUpdateId"] = m.update_id
        row.update(
            bidPrice=fixed(bid, pd),
            bidQty=fixed(m.bid_levels.get(bid, 0), qd),
            askPrice=fixed(ask, pd),
            askQty=fixed(m.ask_levels.get(ask, 0), qd),
        )
        if not self._spot:
            row["time"] = now
        return row

    @staticmethod
    def _balances(account: dict[str, Any]) -> list[dict[str, Any]]:
        """USD-M ``account.balance`` (REST ``/fapi/v2/balance``) from the account body's assets."""
        return [
            {
                "accountAlias": "SgsR",
                "asset": a["asset"],
                "balance": a["walletBalance"],
                "crossWalletBalance": a["crossWalletBalance"],
                "crossUnPnl": a["crossUnPnl"],
                "availableBalance": a["availableBalance"],
                "maxWithdrawAmount": a["maxWithdrawAmount"],
                "marginAvailable": a["marginAvailable"],
                "updateTime": a["updateTime"],
            }
            for a in account["assets"]
        ]

    async def _start(self, account_id: str) -> dict[str, str]:
        return {"listenKey": self._listen_keys.start(account_id)}

    async def _ping(self, account_id: str) -> dict[str, str]:
        return {"listenKey": self._listen_keys.keepalive(account_id)}

    async def _stop(self, account_id: str) -> dict[str, Any]:
        await self._listen_keys.stop(account_id)
        return {}


def _limit(params: Mapping[str, Any], spot: bool) -> int:
    """``depth``'s ``limit`` as REST takes it (spot 1..5000, clamped; USD-M one of its steps)."""
    text = params.get("limit", 100 if spot else 500)
    try:
        limit = int(str(text))
    except ValueError:
        raise auth.SimApiError(-1100, "Illegal characters found in parameter 'limit'.") from None
    if spot:
        return max(1, min(limit, 5000))
    if limit not in (5, 10, 20, 50, 100, 500, 1000):
        raise auth.SimApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise auth.SimApiError(-1100, f"Illegal characters found in parameter '{name}'.")
    return int(text)
