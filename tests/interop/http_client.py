"""The Python SDK's Streamable HTTP client against the gateway's front door."""
import argparse
import asyncio
import json

from mcp import Client


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--mode", default="legacy")
    args = p.parse_args()
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    async with Client(args.url, mode=args.mode, raise_exceptions=True, read_timeout_seconds=60, cache=None) as c:
        tools = [t.name for t in (await c.list_tools()).tools]
        echo = await c.call_tool("everything__echo", {"message": "over http"})
        slow = await c.call_tool("everything__trigger-long-running-operation", {"duration": 1, "steps": 2}, progress_callback=on_progress)
        print(json.dumps({
            "protocolVersion": c.protocol_version,
            "server": c.server_info.name if c.server_info else None,
            "tools": len(tools),
            "echo": echo.content[0].text,
            "progress": len(progress),
            "slow_error": bool(slow.is_error),
        }))


asyncio.run(main())
