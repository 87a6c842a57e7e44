"""Run the simulator as a standalone process: ``python -m gatewayz.simulators --port 18000``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import Simulator, new_event_loop


async def _serve(port: int, api_key: str | None) -> None:
    sim = Simulator(port=port, api_key=api_key)
    await sim.start()
    print(f"gatewayz simulator listening on {sim.base_url}", file=sys.stderr, flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18000, help="port on 127.0.0.1 (0 = any)")
    parser.add_argument("--api-key", default=None, help="require this Bearer key")
    args = parser.parse_args(argv)
    loop = new_event_loop()
    try:
        loop.run_until_complete(_serve(args.port, args.api_key))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
