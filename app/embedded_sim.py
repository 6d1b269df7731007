"""The embedded simulator, started by the app for venue ``sim`` without URLs.

The runtime connects to whatever URLs it is given and knows nothing of the simulator; this is
where ``epochbot`` and ``epochbot --headless`` get a venue when none is configured: the simulator
(`epochbot.sim.server.SimExchange`) in the same process and event loop, on a loopback port
(``[sim] port``, 0 for an ephemeral one), seeded (``[sim] seed``), at ``[sim] rate``, with any
faults armed from the start. The runtime configuration is then handed its URLs and - when
trading without keys of its own - the simulator's default account keys.

`start_runtime` is what the app's three hosts (the headless daemon, the dashboard's core thread,
the dashboard's core process) call: the simulator first when it is needed (stopped by the exit
stack after the runtime has shut down: the runtime's last acts - cancelling orders, importing
fills - talk to it), then the `Runtime`, whose log says where the simulator listens.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace

from epochbot.runtime.config import RuntimeConfig
from epochbot.runtime.runtime import Runtime
from epochbot.sim.server import SimConfig, SimExchange

__all__ = ["EmbeddedSim", "start_runtime", "wants_embedded_sim"]


def wants_embedded_sim(config: RuntimeConfig) -> bool:
    """Venue ``sim`` without URLs: the app has to start the simulator."""
    return config.venue.name == "sim" and not config.venue.rest_url


class EmbeddedSim:
    """The simulator for one runtime configuration (its market, symbols and ``sim_*`` settings)."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        extra = {"rate": config.sim_rate} if config.sim_rate is not None else {}
        self.exchange = SimExchange(
            SimConfig(
                market=config.venue.market,
                symbols=list(config.symbols),
                seed=config.sim_seed,
                port=config.sim_port,
                faults=list(config.sim_faults),
                **extra,  # type: ignore[arg-type]
            )
        )

    async def start(self) -> RuntimeConfig:
        """Start it; the configuration with its URLs (and its keys when trading without any)."""
        from epochbot.sim.auth import DEFAULT_API_KEY, DEFAULT_SECRET

        await self.exchange.start()
        config = self.config
        venue = replace(config.venue, rest_url=self.exchange.rest_url, ws_url=self.exchange.ws_url)
        trading = config.trading
        if trading is not None and not trading.api_key:
            trading = replace(trading, api_key=DEFAULT_API_KEY, api_secret=DEFAULT_SECRET)
        return replace(config, venue=venue, trading=trading)

    def announce(self, runtime: Runtime) -> None:
        """Say where it listens, in the runtime's log (the dashboard and the JSON log show it)."""
        runtime.log(
            "info",
            "embedded simulator started",
            rest=self.exchange.rest_url,
            ws=self.exchange.ws_url,
            market=self.config.venue.market,
        )

    async def stop(self) -> None:
        await self.exchange.stop()

    async def __aenter__(self) -> RuntimeConfig:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_runtime(config: RuntimeConfig, stack: AsyncExitStack) -> tuple[Runtime, SimExchange | None]:
    """The runtime for ``config``, on the embedded simulator when the venue is ``sim`` without
    URLs (started now, stopped when ``stack`` closes); the simulator too (None when not started)."""
    if not wants_embedded_sim(config):
        return Runtime(config), None
    sim = EmbeddedSim(config)
    config = await sim.start()
    stack.push_async_callback(sim.stop)
    runtime = Runtime(config)
    sim.announce(runtime)
    return runtime, sim.exchange
