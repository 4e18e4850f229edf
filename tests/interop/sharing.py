"""N concurrent sessions, each through its own shim, each calling echo with its own
distinct messages, a few calls in flight per session: every reply must carry
exactly its own caller's message.

Output: {"sessions": N, "calls": total, "ok": true, "tools": <tools seen by session 0>}
"""
import asyncio
import re
import sys
import time
import uuid

from _common import client, fail, finish, parser, run, text_of

TOKEN = re.compile(r"s\d+-c\d+-[0-9a-f]{32}")


async def session(args, index, ready, results):
    async with client(args) as c:
        tools = [t.name for t in (await c.list_tools()).tools]
        echo = f"{args.tool_prefix}echo"
        if echo not in tools:
            fail(f"session {index}: {echo} not in {tools}")
        results["tools"][index] = len(tools)
        # Every session connected before any calls: the calls overlap across sessions.
        await ready.wait()

        inflight = asyncio.Semaphore(max(1, args.inflight))
        done = 0

        async def call(number):
            nonlocal done
            message = f"s{index}-c{number}-{uuid.uuid4().hex}"
            async with inflight:
                result = await c.call_tool(echo, {"message": message})
            reply = text_of(result)
            if result.is_error:
                fail(f"session {index} call {number}: tool error {reply!r}")
            tokens = TOKEN.findall(reply)
            if tokens != [message]:
                fail(f"session {index} call {number}: sent {message!r}, got {reply!r}")
            done += 1

        async with asyncio.TaskGroup() as calls:  # the first failure cancels the rest
            for n in range(args.calls):
                calls.create_task(call(n))
        results["calls"][index] = done


async def main():
    p = parser(__doc__)
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--calls", type=int, default=100, help="calls per session")
    p.add_argument("--inflight", type=int, default=4, help="calls in flight at once within one session")
    args = p.parse_args()
    results = {"tools": {}, "calls": {}}
    ready = asyncio.Barrier(args.sessions)

    started = time.monotonic()
    async with asyncio.TaskGroup() as sessions:
        for i in range(args.sessions):
            sessions.create_task(session(args, i, ready, results))
    total = sum(results["calls"].values())
    if total != args.sessions * args.calls:
        fail(f"{total} calls answered, not {args.sessions * args.calls}")
    print(f"{total} calls in {args.sessions} sessions took {time.monotonic() - started:.2f} s", file=sys.stderr)
    finish({"sessions": args.sessions, "calls": total, "ok": True, "tools": results["tools"].get(0)})


run(main)
