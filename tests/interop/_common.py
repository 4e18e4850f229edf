"""Shared bits of the interop clients: how to launch the shim through the real SDK."""
import argparse
import json
import os
import sys

from mcp import Client, StdioServerParameters


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--shim", required=True, help="path of mcp-gateway-connect")
    p.add_argument("--socket", required=True, help="the gateway socket")
    p.add_argument("--mode", default="legacy", choices=["legacy", "auto"])
    p.add_argument("--autostart", action="store_true", help="let the shim start the daemon")
    p.add_argument("--tool-prefix", default="everything__")
    return p


def client(args, **callbacks):
    shim_args = ["--socket", args.socket]
    if not args.autostart:
        shim_args.append("--no-autostart")
    # The SDK passes only an allow-list of variables by default; the gateway's
    # home, socket and test tag must reach the shim.
    params = StdioServerParameters(command=args.shim, args=shim_args, env=dict(os.environ))
    return Client(params, mode=args.mode, raise_exceptions=True, **callbacks)


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def finish(summary):
    print(json.dumps(summary), flush=True)


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)
