"""Drive magg with the official MCP Python SDK, as an independent client.

Usage: sdk_client.py stdio MAGG_BINARY CONFIG   (the SDK spawns `magg serve`)
       sdk_client.py http URL                    (magg already serves streamable HTTP)
       sdk_client.py https URL CA_FILE           (the same over HTTPS, trusting the PEM
                                                  certificate CA_FILE)
       sdk_client.py modern URL                  (the same, stateless protocol 2026-07-28:
                                                  backends' requests come as input_required)
       sdk_client.py sse URL CONFIG              (magg serves the legacy SSE transport at URL;
                                                  CONFIG is its config file, which is edited to
                                                  see tools/list_changed arrive on the stream)

Exits non-zero, with the reason on stderr, if anything a user would check is wrong.
"""

import asyncio
import json
import os
import ssl
import sys
import warnings

import httpx2

from mcp import Client, ClientSession, StdioServerParameters, types
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def sampling(context, params):
    """The client's LLM: answers every sampling request the same way."""
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="python says hi"),
        model="sdk-test",
    )


async def elicitation(context, params):
    """The user: fills in the form."""
    return types.ElicitResult(action="accept", content={"name": "python"})


async def roots(context):
    return types.ListRootsResult(roots=[types.Root(uri="file:///python-sdk")])


LOGS = []


async def logging(params):
    LOGS.append(params)


LIST_CHANGED = asyncio.Event()


async def on_message(message):
    if getattr(message, "method", None) == "notifications/tools/list_changed":
        LIST_CHANGED.set()


def session_for(read, write) -> ClientSession:
    return ClientSession(
        read,
        write,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
        logging_callback=logging,
        message_handler=on_message,
    )


async def list_changed_after_config_edit(session: ClientSession, config_path: str) -> None:
    """A server added to the config file shows up: tools/list_changed, then its tools."""
    with open(config_path) as f:
        config = json.load(f)
    extra = dict(config["servers"]["tb"])
    extra["prefix"] = "tbtwo"
    config["servers"]["tbtwo"] = extra
    LIST_CHANGED.clear()
    tmp = config_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f)
    os.replace(tmp, config_path)
    await asyncio.wait_for(LIST_CHANGED.wait(), 20)
    tools = await session.list_tools()
    names = [t.name for t in tools.tools]
    check("tbtwo_echo" in names, f"tbtwo_echo missing after list_changed: {names}")
    echo = await session.call_tool("tbtwo_echo", {"text": "added"})
    check(echo.content[0].text == "added", f"tbtwo_echo: {echo}")


async def backend_asks(session) -> None:
    """What a backend asks of the client, and its progress, reach the SDK's callbacks
    (`session` is a ClientSession or a Client)."""
    sampled = await session.call_tool("tb_sample", {"prompt": "hello"})
    check(sampled.content[0].text == "sampled: python says hi", f"sampling: {sampled}")
    elicited = await session.call_tool("tb_elicit", {"mode": "form"})
    check(
        elicited.content[0].text == 'elicited: accept {"name":"python"}',
        f"elicitation: {elicited}",
    )
    listed = await session.call_tool("tb_roots", {})
    check(listed.content[0].text == "file:///python-sdk", f"roots: {listed}")

    steps = []

    async def progress(value, total, message):
        steps.append(value)

    slow = await session.call_tool("tb_slow", {"ms": 30}, progress_callback=progress)
    check(not slow.is_error, f"tb_slow: {slow}")
    check(steps == [1.0, 2.0, 3.0], f"progress steps: {steps}")


async def pass_through(session: ClientSession) -> None:
    """Everything a backend asks or tells the client reaches the SDK's callbacks."""
    await backend_asks(session)
    await session.set_logging_level("debug")
    await session.call_tool("tb_log", {"level": "warning", "text": "from tb"})
    for _ in range(50):
        if LOGS:
            break
        await asyncio.sleep(0.05)
    check(
        any(l.logger == "tb/tb-logger" and l.data == "from tb" for l in LOGS),
        f"log messages: {LOGS}",
    )


async def exercise(session: ClientSession) -> None:
    init = await session.initialize()
    check(init.server_info.name == "magg", f"serverInfo: {init.server_info}")
    tools = await session.list_tools()
    names = [t.name for t in tools.tools]
    for expected in ("magg_list_servers", "magg_status", "proxy", "tb_echo"):
        check(expected in names, f"{expected} missing from {names}")

    echo = await session.call_tool("tb_echo", {"text": "from python"})
    check(not echo.is_error, f"tb_echo failed: {echo}")
    check(echo.content[0].text == "from python", f"tb_echo text: {echo.content}")
    check(echo.structured_content == {"text": "from python"}, f"structured: {echo.structured_content}")

    failed = await session.call_tool("tb_fail", {"message": "boom"})
    check(failed.is_error, "tb_fail must be an error result")

    resource = await session.read_resource("test://tb/info")
    check('"tb"' in resource.contents[0].text, f"resource: {resource}")

    prompt = await session.get_prompt("tb_greet", {"name": "Py"})
    check(prompt.messages[0].content.text == "Hello, Py!", f"prompt: {prompt}")

    try:
        await session.call_tool("tb_no_such_tool", {})
    except Exception as error:  # the SDK raises on a JSON-RPC error
        check("tb_no_such_tool" in str(error), f"error names the tool: {error}")
    else:
        raise AssertionError("an unknown tool must be a protocol error")

    status = await session.call_tool("magg_status", {})
    check(not status.is_error and '"mounted"' in status.content[0].text, f"status: {status}")

    await pass_through(session)


async def modern(url: str) -> None:
    """A stateless 2026-07-28 client: no session, so what a backend asks of it comes back as
    `input_required` results, which the SDK answers with the same callbacks and retries."""
    async with Client(
        url,
        mode="2026-07-28",
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
    ) as client:
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        check("tb_sample" in names and "magg_status" in names, f"tools: {names}")
        await backend_asks(client)
        resource = await client.read_resource("test://tb/info")
        check('"tb"' in resource.contents[0].text, f"resource: {resource}")
        prompt = await client.get_prompt("tb_greet", {"name": "Py"})
        check(prompt.messages[0].content.text == "Hello, Py!", f"prompt: {prompt}")


async def main() -> None:
    # Logging, sampling and roots are deprecated as of 2026-07-28; magg speaks 2025-11-25 too.
    warnings.simplefilter("ignore", DeprecationWarning)
    mode = sys.argv[1]
    if mode == "stdio":
        params = StdioServerParameters(
            command=sys.argv[2],
            args=["serve", "--config", sys.argv[3]],
            env={"PATH": os.environ.get("PATH", ""), "MAGG_LIST_WAIT": "15"},
        )
        async with stdio_client(params) as (read, write):
            async with session_for(read, write) as session:
                await exercise(session)
    elif mode == "modern":
        await modern(sys.argv[2])
    elif mode == "sse":
        async with sse_client(sys.argv[2]) as (read, write):
            async with session_for(read, write) as session:
                await exercise(session)
                await list_changed_after_config_edit(session, sys.argv[3])
    elif mode == "https":
        context = ssl.create_default_context(cafile=sys.argv[3])
        async with httpx2.AsyncClient(verify=context) as client:
            async with streamable_http_client(sys.argv[2], http_client=client) as streams:
                async with session_for(streams[0], streams[1]) as session:
                    await exercise(session)
    else:
        async with streamable_http_client(sys.argv[2]) as streams:
            async with session_for(streams[0], streams[1]) as session:
                await exercise(session)
    print("python sdk: ok")


if __name__ == "__main__":
    asyncio.run(main())
