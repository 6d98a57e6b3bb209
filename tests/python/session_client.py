"""A client of the session era (the official MCP Python SDK 1.x, protocol 2025-11-25) driving
`magg serve` on stdio, in front of a backend of protocol 2026-07-28 whose tools and prompts
answer `input_required`: magg must put what the backend asks to this client as ordinary
elicitation, sampling and roots requests, and give it one ordinary result.

Usage: session_client.py asks MAGG_BINARY CONFIG      (the client answers everything)
       session_client.py no-elicitation MAGG CONFIG  (the client declares no elicitation)
       session_client.py python-backend MAGG CONFIG  (the backend is modern_server.py, the
                                                      Python SDK 2.x, under the prefix `py`)

Run it with the 1.x SDK's Python (tests/run.sh installs it in target/mcp1-py).
Exits non-zero, with the reason on stderr, if anything a user would check is wrong.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

ANSWERS = {"name": "Ada", "color": "teal", "topic": "owls"}
ASKED = []


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def elicitation(context, params):
    field = next(iter(params.requestedSchema["properties"]))
    ASKED.append(params.message)
    return types.ElicitResult(action="accept", content={field: ANSWERS[field]})


async def sampling(context, params):
    ASKED.append("sampling")
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="Paris"),
        model="session-test",
        stopReason="endTurn",
    )


async def roots(context):
    ASKED.append("roots")
    return types.ListRootsResult(roots=[types.Root(uri="file:///session-root")])


def texts(result):
    return [block.text for block in result.content]


async def asks(session):
    result = await session.call_tool("m_ask_twice", {})
    check(not result.isError and texts(result) == ["name=Ada color=teal"], f"ask_twice: {result}")
    check(
        ASKED[-2:] == ["What is your name?", "What is your favorite color?"],
        f"the client was asked {ASKED}",
    )
    result = await session.call_tool("m_elicit", {"mode": "form"})
    check(texts(result) == ['elicited: accept {"name":"Ada"}'], f"elicit: {result}")
    result = await session.call_tool("m_sample", {"prompt": "capital?"})
    check(texts(result) == ["sampled: Paris"], f"sample: {result}")
    result = await session.call_tool("m_roots", {})
    check(texts(result) == ["file:///session-root"], f"roots: {result}")
    prompt = await session.get_prompt("m_ask_prompt")
    check(prompt.messages[0].content.text == "Tell me about owls.", f"prompt: {prompt}")
    # A tool that asks nothing is an ordinary call.
    result = await session.call_tool("m_echo", {"text": "plain"})
    check(texts(result) == ["plain"], f"echo: {result}")


async def python_backend(session):
    # tools/list waits for backends that are still starting.
    names = [tool.name for tool in (await session.list_tools()).tools]
    check("py_greet" in names, f"tools: {names}")
    status = await session.call_tool("magg_status", {})
    body = json.loads(texts(status)[0])
    protocol = body["output"]["backends"]["py"].get("protocol")
    check(protocol == "2026-07-28", f"magg opened the Python backend on {protocol}")
    result = await session.call_tool("py_greet", {})
    check(texts(result) == ["Hello, Ada!"], f"greet: {result}")
    check(ASKED[-1:] == ["What is your name?"], f"the client was asked {ASKED}")


async def no_elicitation(session):
    result = None
    try:
        result = await session.call_tool("m_ask_twice", {})
    except Exception as error:  # the SDK raises protocol errors
        message = str(error)
    else:
        message = " ".join(texts(result))
    check(
        "did not declare the elicitation" in message and "m" in message,
        f"expected a clear error naming the missing capability, got {message!r} ({result})",
    )


async def main():
    mode, magg, config = sys.argv[1:4]
    params = StdioServerParameters(command=magg, args=["serve", "--config", config])
    callbacks = {}
    if mode in ("asks", "python-backend"):
        callbacks = dict(
            elicitation_callback=elicitation,
            sampling_callback=sampling,
            list_roots_callback=roots,
        )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, **callbacks) as session:
            init = await session.initialize()
            check(init.protocolVersion == "2025-11-25", f"protocol: {init.protocolVersion}")
            if mode == "asks":
                await asks(session)
            elif mode == "python-backend":
                await python_backend(session)
            else:
                await no_elicitation(session)
    print("session client: ok")


asyncio.run(main())
