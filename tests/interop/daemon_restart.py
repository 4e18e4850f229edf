"""One session that outlives its daemon: call echo, print READY, wait while the test
kills the daemon (it then creates <pidfile>.go), and call echo again through the
daemon the shim starts anew. The shim is launched with autostart.

The call after the restart gets the normal request timeout (--request-timeout)
and at most one retry; whether it needed one is in the output.

Output: {"ok": true, "retried": false|true}
"""
import argparse
import asyncio
import os
import sys
import time
import uuid

from _common import client, fail, finish, parser, run, text_of


async def echo(c, tool, message):
    """The reply's text if it carries `message`, else an exception saying what came instead."""
    result = await c.call_tool(tool, {"message": message})
    reply = text_of(result)
    if result.is_error or message not in reply:
        raise RuntimeError(f"sent {message!r}, got {'an error ' if result.is_error else ''}{reply!r}")
    return reply


async def main():
    p = parser(__doc__)
    p.add_argument("--pidfile", required=True, help="base path; the test creates <pidfile>.go when the daemon is dead")
    p.add_argument("--go-timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.autostart = True
    go = args.pidfile + ".go"
    tool = f"{args.tool_prefix}echo"
    async with client(args) as c:
        try:
            await echo(c, tool, f"before-{uuid.uuid4().hex}")
        except Exception as error:  # noqa: BLE001
            fail(f"first call: {error}")
        print("READY", flush=True)

        deadline = time.monotonic() + args.go_timeout
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                fail(f"{go} did not appear within {args.go_timeout:.0f} s")
            await asyncio.sleep(0.05)

        retried = False
        try:
            await echo(c, tool, f"after-{uuid.uuid4().hex}")
        except Exception as error:  # noqa: BLE001 - one retry, whatever went wrong
            print(f"call after the restart failed, retrying once: {type(error).__name__}: {error}", file=sys.stderr)
            retried = True
            try:
                await echo(c, tool, f"retry-{uuid.uuid4().hex}")
            except Exception as again:  # noqa: BLE001
                fail(f"call after the restart failed twice: {type(error).__name__}: {error}; then {type(again).__name__}: {again}")
    finish({"ok": True, "retried": retried})


run(main)
