"""One session through the shim: the handshake, the tool list, echo and get-sum of
server-everything, the prompt and resource lists, and one resource read.

Output: {"protocolVersion", "connectSeconds", "server", "tools", "echo", "sum",
"prompts", "resources", "resourceTemplates", "read"}
"""
import time

from _common import client, fail, finish, parser, run, text_of


async def main():
    args = parser(__doc__).parse_args()
    started = time.monotonic()
    async with client(args) as c:
        connect_seconds = time.monotonic() - started
        version = c.protocol_version
        server = c.server_info.name if c.server_info else None
        print(f"protocolVersion={version} server={server}", flush=True)

        names = [t.name for t in (await c.list_tools()).tools]
        echo_tool = f"{args.tool_prefix}echo"
        if echo_tool not in names:
            fail(f"{echo_tool} not in {names}")
        echo = await c.call_tool(echo_tool, {"message": "hello gateway"})
        echo_text = text_of(echo)
        if echo.is_error or "hello gateway" not in echo_text:
            fail(f"{echo_tool} gave {echo_text!r}")

        # server-everything calls it get-sum now, add in older releases.
        sum_tool = next((f"{args.tool_prefix}{n}" for n in ("get-sum", "add") if f"{args.tool_prefix}{n}" in names), None)
        if sum_tool is None:
            fail(f"no get-sum or add tool in {names}")
        total = text_of(await c.call_tool(sum_tool, {"a": 2, "b": 3}))
        if "5" not in total:
            fail(f"{sum_tool}(2, 3) gave {total!r}")

        caps = c.server_capabilities
        prompts = (await c.list_prompts()).prompts if caps.prompts else []
        resources, templates, read = [], [], None
        if caps.resources:
            resources = (await c.list_resources()).resources
            templates = (await c.list_resource_templates()).resource_templates
            if resources:
                contents = (await c.read_resource(resources[0].uri)).contents
                if not contents:
                    fail(f"reading {resources[0].uri} gave no contents")
                read = str(contents[0].uri)

    finish({
        "protocolVersion": version,
        "connectSeconds": connect_seconds,
        "server": server,
        "tools": len(names),
        "echo": echo_text,
        "sum": total,
        "prompts": len(prompts),
        "resources": len(resources),
        "resourceTemplates": len(templates),
        "read": read,
    })


run(main)
