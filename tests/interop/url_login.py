"""A client that opens URLs logs in through URL-mode elicitation (MCP 2025-11-25).

It declares `elicitation` (form and url, as the SDK does when given an
elicitation callback), calls TOOL of a server nobody has logged in to, and
expects the `-32042` URLElicitationRequiredError with one URL elicitation.
It then does what a client does with it: opens the URL with BROWSER (the
command, given the URL as its last argument: a redirect follower that stands
for a person who consents), waits for `notifications/elicitation/complete`
with that elicitation's id, and calls again, which must now succeed.

Prints {"elicitation_id", "url_host", "completed", "text"}.
"""
import asyncio
import shlex
import subprocess
import urllib.parse

from mcp import MCPError, UrlElicitationRequiredError, types
from _common import client, fail, finish, parser, run, text_of

URL_ELICITATION_REQUIRED = -32042


async def main():
    p = parser(__doc__)
    p.add_argument("--browser", required=True, help="the command that opens a URL")
    p.add_argument("--tool", required=True)
    args = p.parse_args()
    completed = asyncio.Event()
    completed_ids = []

    async def on_message(message):
        if isinstance(message, types.ServerNotification):
            root = getattr(message, "root", message)
            if getattr(root, "method", None) == "notifications/elicitation/complete":
                completed_ids.append(root.params.elicitation_id)
                completed.set()

    async def elicitation(context, params):
        fail(f"the gateway asked an in-band elicitation: {params}")

    async with client(args, elicitation_callback=elicitation, message_handler=on_message) as c:
        try:
            result = await c.call_tool(args.tool, {"message": "before"})
            fail(f"the call went through before any login: {result}")
        except MCPError as error:
            if error.code != URL_ELICITATION_REQUIRED:
                fail(f"expected -32042, got {error.code}: {error.message}")
            elicitations = UrlElicitationRequiredError.from_error(error.error).elicitations
            said = error.message
        if len(elicitations) != 1:
            fail(f"expected one URL elicitation, got {elicitations}")
        wanted = elicitations[0]
        if "auth login" not in said:
            fail(f"the error does not name the command for clients that cannot open it: {said!r}")
        # The person opens the URL and consents.
        opened = subprocess.run(shlex.split(args.browser) + [wanted.url], capture_output=True, text=True, timeout=60)
        if opened.returncode != 0:
            fail(f"the browser could not follow {wanted.url}: {opened.stderr}")
        try:
            await asyncio.wait_for(completed.wait(), 60)
        except asyncio.TimeoutError:
            fail("no notifications/elicitation/complete within 60 s")
        if wanted.elicitation_id not in completed_ids:
            fail(f"completed {completed_ids}, not {wanted.elicitation_id}")
        result = await c.call_tool(args.tool, {"message": "after the login"})
        if result.is_error:
            fail(f"the call after the login failed: {text_of(result)}")
        finish({
            "elicitation_id": wanted.elicitation_id,
            "url_host": urllib.parse.urlsplit(wanted.url).netloc,
            "completed": completed_ids,
            "text": text_of(result),
        })


run(main)
