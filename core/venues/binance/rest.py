"""Binance REST client on aiohttp: depth snapshots, exchangeInfo, server time, signed requests.

The same code talks to Binance and to the embedded simulator; only ``base_url`` differs.
Errors come back as `RestError` with the HTTP status, Binance's ``code``/``msg`` when present,
and ``retry_after_ms`` from 429/418 responses, so the engine can back off as Binance asks.
Secrets are used only to sign; they are never logged or put in an exception.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from typing import Literal
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from epochbot.model.clock import wall_ns
from epochbot.venues.binance.exchange_info import ExchangeInfo, ExchangeInfoError, SymbolFilters, parse_exchange_info
from epochbot.venues.binance.wire import FrameError, check_kline_row, decode_snapshot

__all__ = ["RestClient", "RestError", "SymbolFilters", "USDM_DEPTH_LIMITS"]

USDM_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


class RestError(Exception):
    def __init__(
        self, status: int, message: str, code: int | None = None, retry_after_ms: int = 0, unknown: bool = False
    ) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.code = code if type(code) is int else None  # a hostile body's "code" is not trusted
        self.retry_after_ms = retry_after_ms
        self.unknown = unknown

    @property
    def unknown_execution(self) -> bool:
        """Binance: any 5xx on an order means its execution status is unknown (so does an
        answer that cannot be read)."""
        return self.unknown or self.status >= 500 or self.status == 0


class RestClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        market: Literal["spot", "usdm"],
        timeout_s: float = 5.0,
        retry_after_cap_s: float = 60.0,
    ) -> None:
        self.session = session
        # Retry-After is honoured up to this cap (a warning says when the venue asked longer).
        self.retry_after_cap_s = retry_after_cap_s
        self.retry_after_capped = 0
        self.bad_rows = 0
        self.log = lambda level, msg, **fields: None
        self.base_url = base_url.rstrip("/")
        self.market = market
        self.prefix = "/api/v3" if market == "spot" else "/fapi/v1"
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.used_weight = 0
        self.weight_limit_1m: int | None = None  # from exchangeInfo's rateLimits

    def _error(self, status: int, body: bytes, headers) -> RestError:
        """`_error_from` with Retry-After capped at ``retry_after_cap_s`` (logged when capped)."""
        exc = _error_from(status, body, headers)
        cap_ms = int(max(0.0, self.retry_after_cap_s) * 1000)
        if exc.retry_after_ms > cap_ms:
            self.retry_after_capped += 1
            self.log(
                "warn",
                "Retry-After above the cap: waiting the cap instead",
                status=status,
                retry_after_s=str(headers.get("Retry-After", ""))[:30],
                cap_s=self.retry_after_cap_s,
            )
            exc.retry_after_ms = cap_ms
        return exc

    def depth_limit(self, wanted: int) -> int:
        if self.market == "spot":
            return max(1, min(5000, wanted))
        return min((lim for lim in USDM_DEPTH_LIMITS if lim >= wanted), default=1000)

    async def _get(self, path: str, params: dict | None = None) -> bytes:
        url = f"{self.base_url}{path}"
        try:
            async with self.session.get(url, params=params, timeout=self.timeout) as resp:
                body = await resp.read()
                weight = resp.headers.get("X-MBX-USED-WEIGHT-1M")
                if weight and weight.isdigit():
                    self.used_weight = int(weight)
                if resp.status != 200:
                    raise self._error(resp.status, body, resp.headers)
                return body
        except aiohttp.ClientError as exc:
            raise RestError(0, f"{type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise RestError(0, f"timeout after {self.timeout.total}s") from None

    async def depth(self, symbol: str, limit: int = 1000, on_body=None) -> tuple[int, list, list, int]:
        params = {"symbol": symbol, "limit": str(self.depth_limit(limit))}
        body = await self._get(f"{self.prefix}/depth", params)
        if on_body is not None:  # the journal records the response verbatim
            on_body(f"{self.base_url}{self.prefix}/depth?symbol={symbol}&limit={params['limit']}", body)
        try:
            return decode_snapshot(body)
        except FrameError as exc:
            raise RestError(200, str(exc)) from None

    async def klines(
        self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None, limit: int = 1000
    ) -> list[list]:
        """GET klines (spot /api/v3/klines, USD-M /fapi/v1/klines): Binance's array rows
        ``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, ...]``,
        oldest first. The last row may be the candle still forming (closeTime in the future)."""
        params = {
            "symbol": symbol,
            "interval": interval,
            "limit": str(max(1, min(limit, 1000 if self.market == "spot" else 1500))),
        }
        if start_ms is not None:
            params["startTime"] = str(int(start_ms))
        if end_ms is not None:
            params["endTime"] = str(int(end_ms))
        body = await self._get(f"{self.prefix}/klines", params)
        try:
            rows = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RestError(200, f"bad klines body: {exc}") from None
        if not isinstance(rows, list):
            raise RestError(200, "bad klines body: not a list of kline rows")
        good = []
        for r in rows:
            try:
                check_kline_row(r)
            except FrameError as exc:  # a bad row is a missing candle: gap detection refetches it
                self.bad_rows += 1
                self.log("warn", "bad kline row dropped", error=str(exc), sample=str(r)[:200])
                continue
            good.append(r)
        return good

    async def server_time_offset(self, clock_ns=wall_ns) -> tuple[float, float]:
        """(venue - local offset ms, round trip ms) by the midpoint method."""
        t0 = clock_ns()
        body = await self._get(f"{self.prefix}/time")
        t1 = clock_ns()
        try:
            server_ms = orjson.loads(body)["serverTime"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise RestError(200, f"bad server time answer: {exc}") from None
        if type(server_ms) is not int or not 0 < server_ms < 2**53:
            raise RestError(200, f"bad server time {str(server_ms)[:30]!r}")
        mid_ms = (t0 + t1) / 2 / 1e6
        return server_ms - mid_ms, (t1 - t0) / 1e6

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]:
        """The filters of ``symbols`` (those the venue lists), and the venue's weight limit noted."""
        info = await self._exchange_info(symbols)
        if info.weight_limit_1m is not None:
            self.weight_limit_1m = info.weight_limit_1m
        return info.filters

    async def symbol_statuses(self, symbols: Collection[str]) -> dict[str, str]:
        """symbol -> exchangeInfo ``status`` for the given symbols (one weighted request)."""
        return (await self._exchange_info(symbols)).statuses

    async def _exchange_info(self, symbols: Collection[str]) -> ExchangeInfo:
        body = await self._get(f"{self.prefix}/exchangeInfo")
        try:
            return parse_exchange_info(body, symbols)
        except ExchangeInfoError as exc:
            raise RestError(200, str(exc)[:200]) from None

    async def keyed(self, method: str, path: str, api_key: str) -> dict:
        """An API-key-only request (listenKey create / keep-alive / close)."""
        try:
            async with self.session.request(
                method, f"{self.base_url}{path}", headers={"X-MBX-APIKEY": api_key}, timeout=self.timeout
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise self._error(resp.status, body, resp.headers)
                return orjson.loads(body) if body else {}
        except aiohttp.ClientError as exc:
            raise RestError(0, f"{type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise RestError(0, f"timeout after {self.timeout.total}s") from None

    async def signed(
        self,
        method: str,
        path: str,
        params: dict,
        api_key: str,
        secret,
        recv_window: int = 5000,
        offset_ms: float = 0.0,
        clock_ns=wall_ns,
    ) -> dict:
        """A signed request, Binance style: the query string signed with the secret (HMAC-SHA256)
        or with a `epochbot.venues.binance.signing.Signer` (HMAC, RSA or Ed25519 keys)."""
        query = dict(params)
        query["recvWindow"] = str(recv_window)
        query["timestamp"] = str(int(clock_ns() / 1e6 + offset_ms))
        total = urlencode(query)
        if isinstance(secret, str):
            signature = hmac.new(secret.encode(), total.encode(), hashlib.sha256).hexdigest()
        else:  # base64 signatures carry + / =: percent-encode them
            signature = quote(secret.sign(total), safe="")
        url = f"{self.base_url}{path}?{total}&signature={signature}"
        try:
            async with self.session.request(
                method, url, headers={"X-MBX-APIKEY": api_key}, timeout=self.timeout
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise self._error(resp.status, body, resp.headers)
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise RestError(resp.status, f"unreadable answer: {body[:100]!r}", unknown=True) from None
        except aiohttp.ClientError as exc:
            raise RestError(0, f"{type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise RestError(0, f"timeout after {self.timeout.total}s") from None


def _error_from(status: int, body: bytes, headers) -> RestError:
    code = None
    message = body[:200].decode("utf-8", "replace")
    try:
        payload = orjson.loads(body)
        if isinstance(payload, dict):
            code = payload.get("code")
            message = str(payload.get("msg", message))
    except orjson.JSONDecodeError:
        pass
    retry_ms = 0
    retry = headers.get("Retry-After")
    if retry and retry.strip().isdigit() and retry.isascii():
        retry_ms = min(int(retry.strip()[:12]), 10**11) * 1000  # capped by RestClient.retry_after_cap_s
    return RestError(status, message, code, retry_ms)
