"""Shared bits of the interop clients: how to launch the shim through the real SDK.

Every script takes `--shim PATH --socket PATH` and launches the shim as an MCP
client would launch a server: `PATH --socket SOCKET --no-autostart`, or without
`--no-autostart` when given `--autostart`. The last stdout line is one JSON
object with the results; any failure exits non-zero with a `FAILED: ...` line on
stderr.

For a test of the scripts themselves, point `--shim` at anything that speaks MCP
on stdio (it is given the arguments above) and pass `--tool-prefix ""`: tools
through the gateway are `<server>__<tool>`, the tests call the server-everything
backend `everything`, hence the default `everything__`.

Written against the `mcp` Python SDK 2.x (`mcp.Client`), as pinned by
tests/support/deps.sh.
"""
import argparse
import asyncio
import json
import os
import sys
import traceback

from mcp import Client, StdioServerParameters


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--shim", required=True, help="path of mcp-gateway-connect")
    p.add_argument("--socket", required=True, help="the gateway socket")
    p.add_argument(
        "--mode",
        default="legacy",
        choices=["legacy", "auto"],
        help="legacy: the initialize handshake; auto: probe server/discover first, fall back to initialize",
    )
    p.add_argument("--autostart", action="store_true", help="let the shim start the daemon")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds any one request may take")
    p.add_argument("--tool-prefix", default="everything__", help=argparse.SUPPRESS)
    return p


def client(args, **callbacks):
    shim_args = ["--socket", args.socket]
    if not args.autostart:
        shim_args.append("--no-autostart")
    # The SDK passes only an allow-list of variables by default; the gateway's
    # home, socket and test tag must reach the shim, so pass everything.
    params = StdioServerParameters(command=args.shim, args=shim_args, env=dict(os.environ))
    return Client(
        params,
        mode=args.mode,
        raise_exceptions=True,
        # A lost reply fails the test with a timeout instead of hanging it.
        read_timeout_seconds=getattr(args, "request_timeout", 60.0),
        # No client-side response cache: every request must reach the gateway.
        cache=None,
        **callbacks,
    )


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def finish(summary):
    print(json.dumps(summary), flush=True)


class Failed(Exception):
    """A check failed; its FAILED line is already on stderr."""


def fail(message):
    """Reports a failed check and raises Failed (run() turns it into exit status 1)."""
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    raise Failed(message)


def _leaves(error):
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def run(main):
    """asyncio.run(main()); on any failure exits 1 with a FAILED line on stderr
    (and the traceback, for anything but a failed check)."""
    try:
        asyncio.run(main())
    except SystemExit:
        raise  # argparse: --help, a usage error
    except BaseException as error:  # noqa: BLE001 - report everything, exception groups too
        unexpected = [e for e in _leaves(error) if not isinstance(e, Failed)]
        if unexpected:
            traceback.print_exc()
            print("FAILED: " + "; ".join(f"{type(e).__name__}: {e}" for e in unexpected), file=sys.stderr, flush=True)
        sys.exit(1)
