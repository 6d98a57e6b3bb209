"""A whole self-extension session through magg's tools, driven by the official MCP Python SDK
as a model would drive it: search for "a server that tells the time", configure the top
result (the client's LLM, scripted here, answers magg's sampling request), add it, wait for
tools/list_changed, and call the new server's tool.

Usage: self_extend.py stdio MAGG_BINARY CONFIG   (the SDK spawns `magg serve`)
       self_extend.py http URL                    (magg already serves streamable HTTP)

Exits non-zero, with the reason on stderr, if any step a user would check is wrong; prints
"self-extension: ok" and the time the new tool told when all went well.
"""

import asyncio
import json
import os
import re
import sys
import warnings

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def check(condition, what):
    if not condition:
        raise AssertionError(what)


PROMPTS = []
LIST_CHANGED = asyncio.Event()


async def llm(context, params):
    """The client's LLM: reads magg's prompt and writes the config for the source it names,
    as a model would (a remote endpoint: `uri`; the name it was asked for)."""
    prompt = "".join(
        m.content.text for m in params.messages if getattr(m.content, "text", None)
    )
    PROMPTS.append(prompt)
    urls = re.findall(r"https?://[^\s\"',)]+/mcp", prompt)
    config = {"name": "clock", "prefix": "clock", "notes": "Tells the time."}
    if urls:
        config["uri"] = urls[0]
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="```json\n" + json.dumps(config) + "\n```"),
        model="scripted",
    )


async def on_message(message):
    if getattr(message, "method", None) == "notifications/tools/list_changed":
        LIST_CHANGED.set()


def output(result, tool):
    check(not result.is_error, f"{tool} failed: {result.content}")
    body = result.structured_content or json.loads(result.content[0].text)
    return body["output"]


async def session_flow(session: ClientSession) -> None:
    await session.initialize()
    names = [t.name for t in (await session.list_tools()).tools]
    for tool in ("magg_search_servers", "magg_smart_configure", "magg_add_server"):
        check(tool in names, f"{tool} missing from {names}")
    check(not any(n.startswith("clock_") for n in names), f"clock already there: {names}")

    # 1. Search.
    found = output(
        await session.call_tool("magg_search_servers", {"query": "time", "limit": 5}),
        "magg_search_servers",
    )
    results = found["results"]
    check(results, f"no results: {found}")
    top = results[0]
    check("time" in json.dumps(top).lower(), f"top result is not about time: {top}")
    source = top.get("config", {}).get("uri") or top.get("url") or top.get("source")
    check(source, f"the top result names no source: {top}")

    # 2. Configure the top result; magg asks the client's LLM.
    configured = output(
        await session.call_tool("magg_smart_configure", {"source": source}),
        "magg_smart_configure",
    )
    check(PROMPTS, f"magg did not ask the client's LLM: {configured}")
    config = (
        configured.get("response")
        or configured.get("suggested_config")
        or configured.get("config")
    )
    check(isinstance(config, dict), f"no config in {configured}")
    check(config.get("uri") or config.get("command"), f"config cannot run: {config}")

    # 3. Add it; the tool list changes.
    LIST_CHANGED.clear()
    args = {k: v for k, v in config.items() if k in ("name", "prefix", "uri", "command", "notes", "env", "cwd")}
    args.setdefault("source", source)
    added = output(await session.call_tool("magg_add_server", args), "magg_add_server")
    check(added, f"add: {added}")
    await asyncio.wait_for(LIST_CHANGED.wait(), 30)

    # 4. Call the new server's tool.
    tools = [t.name for t in (await session.list_tools()).tools]
    check("clock_now" in tools, f"clock_now missing after list_changed: {tools}")
    told = await session.call_tool("clock_now", {})
    check(not told.is_error, f"clock_now failed: {told.content}")
    text = told.content[0].text
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), f"not a time: {text}")
    print(f"the new server says it is {text}")


async def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    mode = sys.argv[1]
    if mode == "stdio":
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "MAGG_CACHE_DIR")}
        env["MAGG_LIST_WAIT"] = "15"
        params = StdioServerParameters(
            command=sys.argv[2], args=["serve", "--config", sys.argv[3]], env=env
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(
                read, write, sampling_callback=llm, message_handler=on_message
            ) as session:
                await session_flow(session)
    else:
        async with streamable_http_client(sys.argv[2]) as streams:
            async with ClientSession(
                streams[0], streams[1], sampling_callback=llm, message_handler=on_message
            ) as session:
                await session_flow(session)
    print("self-extension: ok")


if __name__ == "__main__":
    asyncio.run(main())
