"""A stdio MCP server (2025-11-25) whose one tool fails with the protocol's own error codes.

Usage: coded_backend.py

Tool `needs_sampling` answers every call with the JSON-RPC error a server of protocol 2026-07-28
gives a client that did not declare the capability it needs: code -32021 (missing required
client capability), `data.requiredCapabilities` naming sampling. Tool `old_version` answers
-32022 (unsupported protocol version) with the versions it supports. magg must pass both to its
clients unchanged. Written on the wire format alone, so that nothing in between reshapes them.
"""

import json
import sys

TOOLS = [
    {
        "name": "needs_sampling",
        "description": "Fails with -32021: the client did not declare sampling.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "old_version",
        "description": "Fails with -32022: the protocol version is not supported.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]

ERRORS = {
    "needs_sampling": {
        "code": -32021,
        "message": "Missing required client capability: this tool asks the client's model (sampling)",
        "data": {"requiredCapabilities": {"sampling": {}}},
    },
    "old_version": {
        "code": -32022,
        "message": "Unsupported protocol version",
        "data": {"requested": "2099-01-01", "supported": ["2025-11-25"]},
    },
}


def answer(message):
    method = message.get("method")
    if method == "initialize":
        return {
            "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "coded", "version": "1"},
            }
        }
    if method == "ping":
        return {"result": {}}
    if method == "tools/list":
        return {"result": {"tools": TOOLS}}
    if method == "tools/call":
        name = message.get("params", {}).get("name")
        if name in ERRORS:
            return {"error": ERRORS[name]}
        return {"error": {"code": -32602, "message": f"Unknown tool {name}"}}
    return {"error": {"code": -32601, "message": f"Method not found: {method}"}}


def main():
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "id" not in message or "method" not in message:
            continue  # notifications and answers need no reply
        reply = {"jsonrpc": "2.0", "id": message["id"], **answer(message)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
