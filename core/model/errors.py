"""The data-error family: what bad input raises, as opposed to a defect in our own code.

Everything that reads input from outside - a venue's frames and answers, a REST snapshot, a
capture file - refuses what it cannot use by raising a `DataError` (or a subclass): the decimal
parser (`epochbot.model.numeric.DecimalFormatError`), the wire decoder
(`epochbot.venues.binance.wire.FrameError`, snapshots included), the trading-event checks
(`epochbot.model.trade_checks.TradeCheckError`), the user-data decoder
(`epochbot.venues.binance.user.UserFrameError`) and the capture reader
(`epochbot.model.capture.CaptureFormatError`).

The strategy loop relies on the distinction (`epochbot.runtime.data_errors`): a `DataError`
raised while handling an event is counted and repaired by the event's route (the book is
resynchronised, the order reconciled from the venue); any other exception is a defect, and a
defect stops trading at once and exits 3. So decoders raise `DataError` for anything the venue
could have sent, and nothing else does.

`DataError` is a `ValueError`, so code that catches ``ValueError`` around a parse keeps working.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Input from outside that cannot be used: refused, counted and repaired, never a defect."""
