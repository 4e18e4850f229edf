"""One session that outlives its daemon: call, wait while the test kills the
daemon, call again through the daemon the shim starts."""
import asyncio
import os
import time

from _common import client, fail, finish, parser, text_of


async def main():
    p = parser(__doc__)
    p.add_argument("--pidfile", required=True, help="base path; the test creates <pidfile>.go")
    args = p.parse_args()
    args.autostart = True
    async with client(args) as c:
        echo = f"{args.tool_prefix}echo"
        if "before" not in text_of(await c.call_tool(echo, {"message": "before"})):
            fail("first call")
        print("READY", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(args.pidfile + ".go"):
            if time.monotonic() > deadline:
                fail("the test never said go")
            await asyncio.sleep(0.05)
        reply = text_of(await c.call_tool(echo, {"message": "after"}))
        if "after" not in reply:
            fail(f"second call gave {reply!r}")
    finish({"ok": True})


asyncio.run(main())
