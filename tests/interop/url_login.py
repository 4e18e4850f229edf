"""A client that opens URLs logs in through URL-mode elicitation (MCP 2025-11-25).

It declares `elicitation` (form and url, as the SDK does when given an
elicitation callback), calls TOOL of a server nobody has logged in to, and
expects the `-32042` URLElicitationRequiredError with one URL elicitation.
It then does what a client does with it: opens the URL with BROWSER (the
command, given the URL as its last argument: a redirect follower that stands
for a person who consents), waits for `notifications/elicitation/complete`
with that elicitation's id, and calls again, which must now succeed.
With `--sessions N`, N clients do so at once: all must be sent to one login,
which is opened once, and each must hear that it is complete.

Prints {"elicitation_id", "elicitation_ids", "url_host", "texts"}.

With `--mode auto` the client speaks MCP 2026-07-28, whose era has neither
-32042's completion notification nor server requests: the call is answered
`input_required` with a URL-mode `elicitation/create`; the client's callback
opens the URL and accepts, and the SDK's retry of the call must come back
with the tool's answer (the gateway waited for the login, then went on).
Prints {"asked": [the elicitation's mode and url host], "text"}.

The same goes for a step-up (TOOL's server wants more scopes than the login
granted: the gateway sends the client to a login asking for them). With
`--expect-refusal` the call must instead end in a tool error, not in -32042
(a 2026-07-28 client: after any URL round it accepted); prints
{"refusal": its text} (and "asked" for a 2026-07-28 client).
"""
import asyncio
import shlex
import subprocess
import urllib.parse

from mcp import MCPError, UrlElicitationRequiredError, types
from _common import client, fail, finish, parser, run, text_of

URL_ELICITATION_REQUIRED = -32042


async def session(args, index, asked, opened, results):
    """One client: its call needs the login; once the URL is opened (by
    session 0, for everyone), it hears the completion and calls again."""
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
            result = await c.call_tool(args.tool, {"message": f"before {index}"})
            fail(f"session {index}: the call went through before any login: {result}")
        except MCPError as error:
            if error.code != URL_ELICITATION_REQUIRED:
                fail(f"session {index}: expected -32042, got {error.code}: {error.message}")
            elicitations = UrlElicitationRequiredError.from_error(error.error).elicitations
            said = error.message
        if len(elicitations) != 1:
            fail(f"session {index}: expected one URL elicitation, got {elicitations}")
        if "auth login" not in said:
            fail(f"the error does not name the command for clients that cannot open it: {said!r}")
        asked[index] = elicitations[0]
        await opened.wait()
        try:
            await asyncio.wait_for(completed.wait(), 60)
        except asyncio.TimeoutError:
            fail(f"session {index}: no notifications/elicitation/complete within 60 s")
        if asked[index].elicitation_id not in completed_ids:
            fail(f"session {index}: completed {completed_ids}, not {asked[index].elicitation_id}")
        result = await c.call_tool(args.tool, {"message": f"after the login {index}"})
        if result.is_error:
            fail(f"session {index}: the call after the login failed: {text_of(result)}")
        results[index] = text_of(result)


async def modern(args):
    """A 2026-07-28 client: the login is a round of the call itself."""
    asked = []

    async def elicitation(context, params):
        mode = getattr(params, "mode", None)
        url = getattr(params, "url", None)
        asked.append([mode, urllib.parse.urlsplit(url or "").netloc])
        if mode != "url" or not url:
            fail(f"expected a URL-mode elicitation, got {params}")
        done = await asyncio.to_thread(
            subprocess.run, shlex.split(args.browser) + [url], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            fail(f"the browser could not follow {url}: {done.stderr}")
        return types.ElicitResult(action="accept")

    async with client(args, elicitation_callback=elicitation) as c:
        result = await c.call_tool(args.tool, {"message": "in one call"})
        if args.expect_refusal:
            if not result.is_error:
                fail(f"expected a tool error, got {text_of(result)!r}")
            return finish({"asked": asked, "refusal": text_of(result)})
        if result.is_error:
            fail(f"the call failed: {text_of(result)}")
        finish({"asked": asked, "text": text_of(result)})


async def refused(args):
    """A 2025-11-25 client that opens URLs whose call is refused for good:
    a tool error, no -32042."""

    async def elicitation(context, params):
        fail(f"the gateway asked an in-band elicitation: {params}")

    async with client(args, elicitation_callback=elicitation) as c:
        try:
            result = await c.call_tool(args.tool, {"message": "refused"})
        except MCPError as error:
            fail(f"expected a tool error, got {error.code}: {error.message}")
        if not result.is_error:
            fail(f"expected a tool error, got {text_of(result)!r}")
        finish({"refusal": text_of(result)})


async def main():
    p = parser(__doc__)
    p.add_argument("--browser", required=True, help="the command that opens a URL")
    p.add_argument("--tool", required=True)
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--expect-refusal", action="store_true")
    args = p.parse_args()
    if args.mode == "auto":
        return await modern(args)
    if args.expect_refusal:
        return await refused(args)
    asked, results, opened = {}, {}, asyncio.Event()
    tasks = [asyncio.create_task(session(args, i, asked, opened, results)) for i in range(args.sessions)]

    async def open_once():
        while len(asked) < args.sessions:
            if any(t.done() for t in tasks):
                return
            await asyncio.sleep(0.05)
        urls = {e.url for e in asked.values()}
        if len(urls) != 1:
            fail(f"the sessions were sent to different logins: {urls}")
        # The person opens the URL and consents.
        url = urls.pop()
        done = await asyncio.to_thread(
            subprocess.run, shlex.split(args.browser) + [url], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            fail(f"the browser could not follow {url}: {done.stderr}")
        opened.set()

    await asyncio.gather(open_once(), *tasks)
    first = asked[0]
    finish({
        "elicitation_id": first.elicitation_id,
        "elicitation_ids": sorted({e.elicitation_id for e in asked.values()}),
        "url_host": urllib.parse.urlsplit(first.url).netloc,
        "texts": [results[i] for i in range(args.sessions)],
    })


run(main)
