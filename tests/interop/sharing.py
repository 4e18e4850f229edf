"""N concurrent sessions through N shims, each calling echo with distinct messages;
every reply must reach its own caller."""
import asyncio
import uuid

from _common import client, fail, finish, parser, text_of


async def session(args, index, results):
    async with client(args) as c:
        tools = [t.name for t in (await c.list_tools()).tools]
        echo = f"{args.tool_prefix}echo"
        if echo not in tools:
            fail(f"session {index}: {echo} not in {tools}")
        results.setdefault("tools", len(tools))
        run = uuid.uuid4().hex
        for call in range(args.calls):
            message = f"s{index}-c{call}-{run}"
            reply = text_of(await c.call_tool(echo, {"message": message}))
            if message not in reply:
                fail(f"session {index} call {call}: sent {message!r}, got {reply!r}")
            for other in range(args.sessions):
                if other != index and f"s{other}-c" in reply:
                    fail(f"session {index} got session {other}'s reply: {reply!r}")
        results[index] = args.calls


async def main():
    p = parser(__doc__)
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--calls", type=int, default=100)
    args = p.parse_args()
    results = {}
    await asyncio.gather(*(session(args, i, results) for i in range(args.sessions)))
    total = sum(v for k, v in results.items() if isinstance(k, int))
    finish({"sessions": args.sessions, "calls": total, "ok": total == args.sessions * args.calls, "tools": results.get("tools")})


asyncio.run(main())
