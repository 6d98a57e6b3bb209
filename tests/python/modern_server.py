"""A backend of protocol 2026-07-28 built on the official MCP Python SDK 2.x (`MCPServer`), on
stdio: its tool `greet` needs the user's name and, without it, answers `input_required` (an
elicitation) instead of asking the client mid-call; called again with the answer, it greets.
The SDK answers `server/discover`, so magg opens it on 2026-07-28.
"""

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

app = MCPServer("py-modern")


@app.tool()
def greet(ctx: Context) -> str | InputRequiredResult:
    """Greet the user by the name they give."""
    answer = (ctx.input_responses or {}).get("name")
    content = answer.get("content") if isinstance(answer, dict) else getattr(answer, "content", None)
    if isinstance(content, dict) and content.get("name"):
        return f"Hello, {content['name']}!"
    ask = ElicitRequest(
        params=ElicitRequestFormParams(
            message="What is your name?",
            requested_schema={
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        )
    )
    return InputRequiredResult(input_requests={"name": ask})


if __name__ == "__main__":
    app.run()
