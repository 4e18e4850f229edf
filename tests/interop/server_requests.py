"""Sessions whose tool calls make the server ask the client something (sampling
or elicitation): each callback answers with its own text, and each tool result
must carry its own caller's text."""
import asyncio

from _common import client, fail, finish, parser, text_of
from mcp import types


def callbacks(kind, mine, asked):
    async def sampling(context, params):
        asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=mine), model="test-model"
        )

    async def elicitation(context, params):
        asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"name": mine})

    return {"sampling_callback": sampling} if kind == "sampling" else {"elicitation_callback": elicitation}


async def session(args, index, ready, start, results):
    mine = f"answer-from-session-{index}"
    asked = []
    async with client(args, **callbacks(args.kind, mine, asked)) as c:
        tool = f"{args.tool_prefix}trigger-{args.kind}-request"
        names = [t.name for t in (await c.list_tools()).tools]
        if tool not in names:
            fail(f"{tool} not offered: {names}")
        ready[index].set()
        await start[index].wait()
        arguments = {"prompt": f"question {index}", "maxTokens": 5} if args.kind == "sampling" else {}
        text = text_of(await c.call_tool(tool, arguments))
        if mine not in text:
            fail(f"session {index}: its own answer {mine!r} is not in {text!r}")
        for other in range(args.sessions):
            if other != index and f"answer-from-session-{other}" in text:
                fail(f"session {index} got session {other}'s answer: {text!r}")
        results[index] = len(asked)
        if index + 1 < args.sessions and args.sequential:
            start[index + 1].set()


async def main():
    p = parser(__doc__)
    p.add_argument("--kind", choices=["sampling", "elicitation"], required=True)
    p.add_argument("--sessions", type=int, default=2)
    p.add_argument("--sequential", action="store_true", help="one session's call at a time")
    args = p.parse_args()
    ready = [asyncio.Event() for _ in range(args.sessions)]
    start = [asyncio.Event() for _ in range(args.sessions)]
    results = {}
    tasks = [asyncio.create_task(session(args, i, ready, start, results)) for i in range(args.sessions)]

    async def all_ready():
        for event in ready:
            await event.wait()

    # Every session connected and listed before any call starts (a session
    # that fails first ends the wait with its error).
    readiness = asyncio.create_task(all_ready())
    done, _ = await asyncio.wait([readiness, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if readiness not in done:
        for task in done:
            task.result()
    if args.sequential:
        start[0].set()
    else:
        for event in start:
            event.set()
    await asyncio.gather(*tasks)
    finish({"kind": args.kind, "asked": [results[i] for i in range(args.sessions)], "ok": True})


asyncio.run(main())
