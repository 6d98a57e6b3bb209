"""A stateless MCP client of protocol 2026-07-28 (the official Python SDK) that listens to magg.

Usage: modern_client.py URL BACKEND_BINARY

magg serves the test backend as `tb` at URL (streamable HTTP, changes allowed without a token).
The client finds magg with `server/discover`, opens `subscriptions/listen` for tool list changes
and the resource `test://tb/info`, and checks that it hears of:
- a change of that resource (the backend's `touch` tool);
- a server added through the management API (`POST /mcp_servers`), and its tools listed next;
- a server added by another client with `magg_add_server`.

Prints "modern client: ok" when all is as a user would expect; exits non-zero, with the reason
on stderr, otherwise.
"""

import asyncio
import sys
import warnings

import anyio
import httpx2

from mcp import Client
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged

# How long any one awaited event may take.
WAIT = 20


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def next_event(subscription, kind):
    """The next event of `kind` on `subscription` (others are skipped)."""
    with anyio.fail_after(WAIT):
        async for event in subscription:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"the subscription ended before a {kind.__name__}")


async def tool_names(client):
    return [tool.name for tool in (await client.list_tools()).tools]


async def main(url: str, backend: str) -> None:
    base = url.removesuffix("/mcp")
    async with Client(url, mode="auto") as client:
        # server/discover: the same as initialize would tell.
        check(client.protocol_version == "2026-07-28", f"version {client.protocol_version}")
        caps = client.server_capabilities
        check(caps.tools is not None and caps.tools.list_changed, f"tools: {caps}")
        check(caps.prompts is not None and caps.prompts.list_changed, f"prompts: {caps}")
        check(
            caps.resources is not None and caps.resources.subscribe and caps.resources.list_changed,
            f"resources: {caps}",
        )
        check(caps.completions is not None and caps.logging is not None, f"others: {caps}")
        check(client.server_info is not None and client.server_info.name == "magg", f"{client.server_info}")
        check("magg aggregates" in (client.instructions or ""), f"instructions: {client.instructions}")

        names = await tool_names(client)
        check("tb_touch" in names, f"tools: {names}")

        async with client.listen(
            tools_list_changed=True,
            resource_subscriptions=["test://tb/info", "test://nowhere/x"],
        ) as subscription:
            honored = subscription.honored
            check(honored.tools_list_changed, f"honored: {honored}")
            check(honored.resource_subscriptions == ["test://tb/info"], f"honored: {honored}")

            # The backend says its resource changed: magg subscribed to it for this listener.
            await client.call_tool("tb_touch", {"uri": "test://info"})
            event = await next_event(subscription, ResourceUpdated)
            check(event.uri == "test://tb/info", f"updated: {event}")

            # Another client adds a server through the management API.
            async with httpx2.AsyncClient() as http:
                reply = await http.post(
                    f"{base}/mcp_servers",
                    json={"mcpServers": {"tc": {"command": backend, "args": ["--name", "tc"]}}},
                )
                check(reply.status_code == 200, f"management API: {reply.status_code} {reply.text}")
            await next_event(subscription, ToolsListChanged)
            names = await tool_names(client)
            check("tc_echo" in names, f"tools after the management API added tc: {names}")

            # Another client adds a server with magg_add_server.
            async with Client(url, mode="2026-07-28") as other:
                result = await other.call_tool(
                    "magg_add_server",
                    {"name": "td", "source": "test", "prefix": "td", "command": f"{backend} --name td"},
                )
                check(not result.is_error, f"magg_add_server: {result}")
            await next_event(subscription, ToolsListChanged)
            names = await tool_names(client)
            check("td_echo" in names, f"tools after magg_add_server added td: {names}")
    print("modern client: ok")


if __name__ == "__main__":
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
