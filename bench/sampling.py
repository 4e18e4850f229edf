"""N terminals call a tool that asks its client for a sampling answer, all at
the same moment, R rounds: directly (each client runs its own server-everything)
and through the gateway (one shared server-everything; extra instances for
concurrent asking calls, or `serialize: true`). Every caller must get its own
answer. Prints Markdown tables: per contender and N, the latency of the first
round (which includes starting any extra instance) and of the later rounds,
and the backend processes that served them. The client answers each sampling
request after `--answer-ms` (default 200: a model's answer takes time, and
that is what a caller queued behind another one waits for).

With `--modern-server` (tests/fixtures/modern_server.py, a 2026-07-28 server)
it first times sequential calls that need one MRTR round (sampling answered
at once), directly and through the gateway to a 2026 and a 2025 client.

Run by bench/sampling.sh, which builds the release binaries and passes the paths.
"""
import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters, types

TOOL = "trigger-sampling-request"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


ANSWER_SECONDS = 0.2


async def caller(params, prefix, index, rounds, barrier, latencies, tool=TOOL, mode="legacy", answer=None):
    mine = f"answer-{index}"
    answer = ANSWER_SECONDS if answer is None else answer

    async def sampling(context, request):
        await asyncio.sleep(answer)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=mine), model="bench"
        )

    async with Client(params, mode=mode, raise_exceptions=True, read_timeout_seconds=120, cache=None,
                      sampling_callback=sampling) as client:
        await client.list_tools()
        for round_no in range(rounds):
            await barrier.wait()
            started = time.perf_counter()
            result = await client.call_tool(prefix + tool, {"prompt": f"q{index}", "maxTokens": 5})
            latencies[round_no].append((time.perf_counter() - started) * 1000)
            text = "".join(c.text for c in result.content if getattr(c, "type", None) == "text")
            if mine not in text:
                raise SystemExit(f"caller {index} round {round_no}: its answer {mine!r} is not in {text!r}")


class Barrier:
    """Releases all N callers at once, round after round."""

    def __init__(self, n):
        self.n, self.count, self.event = n, 0, asyncio.Event()

    async def wait(self):
        self.count += 1
        event = self.event
        if self.count == self.n:
            self.count, self.event = 0, asyncio.Event()
            event.set()
        await event.wait()


async def run(params_of, prefix, n, rounds):
    latencies = [[] for _ in range(rounds)]
    barrier = Barrier(n)
    await asyncio.gather(*(caller(params_of(i), prefix, i, rounds, barrier, latencies) for i in range(n)))
    later = [ms for r in latencies[1:] for ms in r]
    return {
        "first_round_p50_ms": round(statistics.median(latencies[0]), 1),
        "first_round_max_ms": round(max(latencies[0]), 1),
        "later_p50_ms": round(statistics.median(later), 1) if later else None,
        "later_p99_ms": round(percentile(later, 99), 1) if later else None,
    }


def status(args, env):
    out = subprocess.run([args.daemon, "status", "--json"], env=env, capture_output=True, check=True)
    return json.loads(out.stdout)


async def one_round(args, params, prefix, mode):
    """Sequential calls of a 2026-07-28 server's tool that needs one MRTR
    round (sampling answered at once): what a round costs, not a model."""
    latencies = [[] for _ in range(args.mrtr_calls)]
    await caller(params, prefix, 0, args.mrtr_calls, Barrier(1), latencies, tool="sample", mode=mode, answer=0)
    flat = [ms for r in latencies[5:] for ms in r]  # the first calls warm up
    return {"p50_ms": round(statistics.median(flat), 2), "p99_ms": round(percentile(flat, 99), 2), "calls": len(flat)}


async def mrtr(args):
    server = StdioServerParameters(command=args.python, args=[args.modern_server])
    rows = [dict(await one_round(args, server, "", "auto"), contender="direct: 2026 client, 2026 server")]
    config = f"servers:\n  modern:\n    command: {args.python}\n    args: [{args.modern_server}]\n    protocol: modern\n"
    async with running_gateway(args, config) as shim:
        for mode, name in [("auto", "gateway: 2026 client, 2026 server (the round relayed)"),
                           ("legacy", "gateway: 2025 client, 2026 server (the round as a sampling request)")]:
            rows.append(dict(await one_round(args, shim, "modern__", mode), contender=name))
    return rows


@contextlib.asynccontextmanager
async def running_gateway(args, config):
    """A daemon in a temporary home with this config; yields how to start its shim."""
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, MCP_GATEWAY_HOME=home, MCP_GATEWAY_SOCKET=f"{home}/gw.sock")
        Path(home, "config.yaml").write_text(config)
        daemon = subprocess.Popen([args.daemon, "serve"], env=env, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not Path(home, "gw.sock").exists():
                if time.monotonic() > deadline:
                    raise SystemExit("the daemon did not start")
                await asyncio.sleep(0.05)
            yield StdioServerParameters(command=args.shim, args=["--no-autostart"], env=env)
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)


async def gateway(args, n, extra):
    config = f"servers:\n  everything:\n    command: {args.node}\n    args: [{args.everything_js}]\n{extra}"
    async with running_gateway(args, config) as params:
        # One call alone first: the gateway learns that the tool asks.
        await run(lambda i: params, "everything__", 1, 1)
        measured = await run(lambda i: params, "everything__", n, args.rounds)
        env = params.env
        backends = [b for b in status(args, env)["backends"] if b.get("pid")]
        measured["backend_processes"] = sum(b.get("processes") or 1 for b in backends)
        measured["instances"] = len(backends)
        return measured


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--daemon", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--everything-js", required=True)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--callers", default="1,2,5")
    p.add_argument("--answer-ms", type=int, default=200)
    p.add_argument("--python", help="the Python that runs --modern-server")
    p.add_argument("--modern-server", help="tests/fixtures/modern_server.py: adds the MRTR section")
    p.add_argument("--mrtr-calls", type=int, default=200)
    p.add_argument("--json", help="where to write the raw results")
    args = p.parse_args()
    global ANSWER_SECONDS
    ANSWER_SECONDS = args.answer_ms / 1000
    mrtr_rows = await mrtr(args) if args.modern_server else []
    results = []
    for n in [int(x) for x in args.callers.split(",")]:
        direct = StdioServerParameters(command=args.node, args=[args.everything_js])
        row = await run(lambda i: direct, "", n, args.rounds)
        row.update(contender="direct (a server per caller)", callers=n, backend_processes=n, instances=n)
        results.append(row)
        for name, extra in [("gateway", ""), ("gateway, serialize: true", "    serialize: true\n")]:
            row = await gateway(args, n, extra)
            row.update(contender=name, callers=n)
            results.append(row)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"mrtr": mrtr_rows, "callers": results}, indent=1))
    print_markdown(mrtr_rows, results)


def print_markdown(mrtr_rows, results):
    if mrtr_rows:
        print("| one MRTR round, sequential calls | p50, ms | p99, ms | calls |")
        print("| --- | --- | --- | --- |")
        for r in mrtr_rows:
            print(f"| {r['contender']} | {r['p50_ms']} | {r['p99_ms']} | {r['calls']} |")
        print()
    print("| callers | contender | first round p50 (max), ms | later rounds p50 / p99, ms | instances | backend processes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['callers']} | {r['contender']} | {r['first_round_p50_ms']} ({r['first_round_max_ms']}) "
            f"| {r['later_p50_ms']} / {r['later_p99_ms']} | {r['instances']} | {r['backend_processes']} |"
        )


asyncio.run(main())
