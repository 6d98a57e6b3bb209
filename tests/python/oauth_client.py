"""The official MCP Python SDK as an OAuth client of magg, with the client-credentials grant.

    oauth_client.py URL CLIENT_ID CLIENT_SECRET ISSUER SCOPE

The SDK is given only magg's URL and the client's credentials: it is refused with 401, follows
the `resource_metadata` of magg's challenge to magg's protected-resource metadata (RFC 9728),
from there to the authorization server's metadata, gets a token for magg's resource from the
token endpoint, and retries. It then lists magg's tools and calls the first `*_echo` one.
Prints one JSON line (`{"tools": [...], "echo": "...", "scope": "<granted scopes>"}`) and
`oauth client: ok`.
"""

import asyncio
import json
import sys
import warnings

import httpx2
from mcp import ClientSession
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client


class Memory:
    """Token storage that keeps the token in memory only."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    url, client_id, secret, issuer, scope = sys.argv[1:6]
    storage = Memory()
    provider = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=storage,
        client_id=client_id,
        client_secret=secret,
        scope=scope,
        issuer=issuer,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                tools = [tool.name for tool in (await session.list_tools()).tools]
                echo = next(name for name in tools if name.endswith("_echo"))
                result = await session.call_tool(echo, {"text": "through OAuth"})
                granted = storage.tokens.scope if storage.tokens else None
                print(json.dumps({"tools": tools, "echo": result.content[0].text, "scope": granted}))
    print("oauth client: ok")


if __name__ == "__main__":
    asyncio.run(main())
