"""Times tools/call through the official MCP Python SDK over streamable HTTP, for magg-bench.

Usage: sdk_calls.py URL TOOL TEXT

Connects and initializes, then prints `ready`. Each line read from stdin is a count N: the
script calls TOOL with {"text": TEXT} N times, one after the other, and prints the latency of
each call in nanoseconds as one JSON array on one line. Exits when stdin closes.
"""

import asyncio
import json
import sys
import time
import warnings

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    url, tool, text = sys.argv[1:4]
    arguments = {"text": text}
    loop = asyncio.get_running_loop()
    async with streamable_http_client(url) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            print("ready", flush=True)
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                samples = []
                for _ in range(int(line)):
                    start = time.perf_counter_ns()
                    result = await session.call_tool(tool, arguments)
                    samples.append(time.perf_counter_ns() - start)
                    if result.is_error:
                        raise SystemExit(f"{tool} returned an error result: {result}")
                print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
