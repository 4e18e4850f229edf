"""One session: the handshake, lists, a call, a prompt and a resource."""
import asyncio

from _common import client, fail, finish, parser, text_of


async def main():
    args = parser(__doc__).parse_args()
    async with client(args) as c:
        tools = (await c.list_tools()).tools
        names = [t.name for t in tools]
        echo = text_of(await c.call_tool(f"{args.tool_prefix}echo", {"message": "hello gateway"}))
        sum_tool = next((n for n in names if n.endswith("get-sum") or n.endswith("add")), None)
        total = None
        if sum_tool:
            total = text_of(await c.call_tool(sum_tool, {"a": 2, "b": 3}))
            if "5" not in total:
                fail(f"{sum_tool}(2, 3) gave {total!r}")
        prompts = (await c.list_prompts()).prompts
        resources = (await c.list_resources()).resources
        read = None
        if resources:
            contents = (await c.read_resource(resources[0].uri)).contents
            read = str(contents[0].uri)
        finish({
            "protocolVersion": c.protocol_version,
            "server": c.server_info.name if c.server_info else None,
            "tools": len(names),
            "echo": echo,
            "sum": total,
            "prompts": len(prompts),
            "resources": len(resources),
            "read": read,
        })


asyncio.run(main())
