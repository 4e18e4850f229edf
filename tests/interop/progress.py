"""Two sessions call the progress-reporting tool at the same time, with the same
request id and the same progress token: each must see only its own progress and
its own result."""
import asyncio

from _common import client, fail, finish, parser, text_of


async def session(args, index, start, out):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total))

    async with client(args) as c:
        tool = f"{args.tool_prefix}trigger-long-running-operation"
        await start.wait()
        # The same place in both sessions' id sequences: the same request id, and
        # (the SDK uses the request id as the progress token) the same token.
        result = await c.call_tool(tool, {"duration": args.duration, "steps": args.steps}, progress_callback=on_progress)
        text = text_of(result)
        if str(args.duration) not in text or str(args.steps) not in text:
            fail(f"session {index}: unexpected result {text!r}")
    out[index] = seen


async def main():
    p = parser(__doc__)
    p.add_argument("--duration", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args()
    start = asyncio.Event()
    out = {}
    tasks = [asyncio.create_task(session(args, i, start, out)) for i in range(2)]
    await asyncio.sleep(1.0)  # both connected and initialized
    start.set()
    await asyncio.gather(*tasks)
    counts = [len(out[i]) for i in range(2)]
    for i in range(2):
        if [p for p, _ in out[i]] != sorted(p for p, _ in out[i]):
            fail(f"session {i} progress out of order: {out[i]}")
    finish({"progress": counts, "steps": args.steps})


asyncio.run(main())
