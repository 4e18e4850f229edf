"""Several client processes on ONE shared real backend: direct (a server per
client), the gateway and rmcp-mux, side by side in one run.

Each client is its own Python process running the `mcp` SDK's stdio client (what
a real AI client's MCP stack costs, not a tuned harness): it initializes, lists
tools, then on a common start signal makes `--calls` sequential `echo` calls.
Every contender first runs `--warmup` untimed rounds (its node warms up).
Throughput is all calls over the span from the first client's first call to the
last client's last one. Contenders are interleaved round by round, so load from
other work on the machine hits all alike; the median round is reported.

Memory: `--pss-sessions` clients connect (initialize, list, one call) and stay;
`--settle` seconds later the PSS of every process that serves them is summed
(`--memory-runs` times, each contender started afresh; the median is kept): the servers the
clients spawned (direct), or the shims/proxies plus the daemon and its backend
(gateway, rmcp-mux). The Python clients themselves are not counted.

Run by bench/shared-backend.sh (which bench/run.sh calls as step 6).
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# ---------------------------------------------------------------- the client process
async def client_main(spec):
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=spec["cmd"][0], args=spec["cmd"][1:], env=spec.get("env") or None)
    tool, calls = spec["tool"], spec["calls"]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with Client(params, mode="legacy", raise_exceptions=True, read_timeout_seconds=120, cache=None) as client:
        await client.list_tools()
        result = await client.call_tool(tool, {"message": "warm-up"})
        if "warm-up" not in json.dumps(result.model_dump(mode="json")):
            raise SystemExit(f"unexpected answer: {result}")
        print("ready", flush=True)
        await reader.readline()  # go (or, in the memory test, leave)
        if calls:
            started = time.monotonic()
            for i in range(calls):
                result = await client.call_tool(tool, {"message": f"m{i}"})
                if result.is_error:
                    raise SystemExit(f"call {i} failed: {result}")
            ended = time.monotonic()
            print(json.dumps({"start": started, "end": ended, "calls": calls}), flush=True)
            # Connected until the harness has read every process's CPU time:
            # leaving now would end the shim or proxy, and its time with it.
            await reader.readline()


# ---------------------------------------------------------------- /proc
def children_of():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pids):
    kids, out, todo = children_of(), set(), list(pids)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(kids.get(p, []))
    return out


def pss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_secs(pids):
    """CPU time of each process, by role name (its comm): the scheduler's own
    nanosecond count summed over the process's threads (`/proc/PID/task/*/schedstat`),
    not utime+stime, which are sampled at the clock tick (10 ms: a shim that
    runs a few µs per call would read as 0)."""
    out = {}
    for p in pids:
        try:
            comm = Path(f"/proc/{p}/comm").read_text().strip()
            ns = 0
            for t in os.listdir(f"/proc/{p}/task"):
                try:
                    ns += int(Path(f"/proc/{p}/task/{t}/schedstat").read_text().split()[0])
                except OSError:
                    pass  # a thread that just ended
        except OSError:
            continue
        out[p] = (comm, ns / 1e9)
    return out


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- contenders
class Contender:
    def __init__(self, name, cmd, tool, env=None, server=None):
        self.name, self.cmd, self.tool, self.env, self.server = name, cmd, tool, env, server

    def spec(self, calls):
        env = dict(os.environ, **(self.env or {}))
        return {"cmd": self.cmd, "tool": self.tool, "calls": calls, "env": env}


def wait_for(path, what, proc, seconds=30):
    deadline = time.monotonic() + seconds
    while not Path(path).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (socket {path})")
        time.sleep(0.02)


def start_clients(contender, n, calls):
    procs = []
    for _ in range(n):
        p = subprocess.Popen([sys.executable, __file__, "--client", json.dumps(contender.spec(calls))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(p)
    for p in procs:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"{contender.name}: a client did not get ready (said {line!r})")
    return procs


def throughput_round(contender, n, calls):
    """Calls/s, and CPU µs per call by process name (clients are `python`)."""
    procs = start_clients(contender, n, calls)
    pids = tree([p.pid for p in procs] + ([contender.server.pid] if contender.server else []))
    before = cpu_secs(pids)
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    spans = []
    for p in procs:
        line = p.stdout.readline()
        if not line:
            raise SystemExit(f"{contender.name}: a client died mid-run")
        spans.append(json.loads(line))
    after = cpu_secs(pids)
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)
    total = sum(s["calls"] for s in spans)
    elapsed = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    cpu = {}
    for pid, (comm, secs) in after.items():
        used = secs - before.get(pid, (comm, 0.0))[1]
        cpu[comm] = cpu.get(comm, 0.0) + used * 1e6 / total
    return total / elapsed, cpu


def memory(contender, n, settle):
    procs = start_clients(contender, n, 0)
    # Terminals stay connected for hours: what counts is what they hold once
    # connected, not during set-up (the gateway lets go of the code pages its
    # set-up ran once it has started nothing for 3 s).
    time.sleep(settle)
    served = set()
    for p in procs:
        served |= tree([p.pid]) - {p.pid}
    if contender.server:
        served |= tree([contender.server.pid])
    pss = sum(pss_kb(p) for p in served)
    rss = sum(rss_kb(p) for p in served)
    by_name = {}
    for p in served:
        try:
            name = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            continue
        entry = by_name.setdefault(name, {"count": 0, "pss_kb": 0, "rss_kb": 0})
        entry["count"] += 1
        entry["pss_kb"] += pss_kb(p)
        entry["rss_kb"] += rss_kb(p)
    for p in procs:
        p.stdin.write("bye\n")
        p.stdin.close()
    for p in procs:
        p.wait(timeout=60)
    return {"processes": len(served), "pss_kb": pss, "rss_kb": rss, "by_name": by_name}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--node")
    ap.add_argument("--everything-js")
    ap.add_argument("--daemon", help="mcp-gateway")
    ap.add_argument("--shim", help="mcp-gateway-connect")
    ap.add_argument("--mux", help="rmcp-mux (left out if absent)")
    ap.add_argument("--also-gateway", nargs=3, action="append", default=[], metavar=("LABEL", "DAEMON", "SHIM"),
                    help="another gateway build beside the first (a before/after comparison in one run)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds per contender before the timed ones")
    ap.add_argument("--pss-sessions", type=int, default=5)
    ap.add_argument("--memory-runs", type=int, default=3, help="memory readings per contender (the median is kept)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds the sessions are connected before memory is read")
    ap.add_argument("--only", help="comma-separated contender names")
    ap.add_argument("--json", help="where to write the results")
    args = ap.parse_args()
    if args.client:
        asyncio.run(client_main(json.loads(args.client)))
        return

    work = tempfile.mkdtemp(prefix="mcp-gateway-shared.")
    server = [args.node, args.everything_js, "stdio"]
    keep = args.only.split(",") if args.only else [""]
    names = ["direct (a server per client)", "gateway"] + [g[0] for g in args.also_gateway]
    if args.mux and os.access(args.mux, os.X_OK):
        names.append("rmcp-mux")
    names = [n for n in names if any(n.startswith(k) for k in keep)]
    gateways = {"gateway": (args.daemon, args.shim), **{g[0]: (g[1], g[2]) for g in args.also_gateway}}
    started = []
    launches = 0

    def launch(name):
        """The contender `name`, its server (daemon or mux) started afresh."""
        nonlocal launches
        launches += 1
        if name.startswith("direct"):
            return Contender(name, server, "echo")
        home = f"{work}/{launches}"
        os.makedirs(home)
        if name in gateways:
            daemon, shim = gateways[name]
            env = {"MCP_GATEWAY_HOME": home, "MCP_GATEWAY_SOCKET": f"{home}/gw.sock"}
            Path(f"{home}/config.yaml").write_text(
                f"servers:\n  everything:\n    command: {json.dumps(args.node)}\n"
                f"    args: {json.dumps(server[1:])}\n")
            gw = subprocess.Popen([daemon, "serve"], env=dict(os.environ, **env),
                                  stdout=subprocess.DEVNULL, stderr=open(f"{home}/daemon.log", "w"))
            started.append(gw)
            wait_for(env["MCP_GATEWAY_SOCKET"], name, gw)
            return Contender(name, [shim, "--no-autostart"], "everything__echo", env, gw)
        sock = f"{home}/mux.sock"
        mux = subprocess.Popen([args.mux, "--socket", sock, "--cmd", args.node, "--log-level", "warn",
                                "--", *server[1:]],
                               stdout=subprocess.DEVNULL, stderr=open(f"{home}/mux.log", "w"))
        started.append(mux)
        wait_for(sock, "rmcp-mux", mux)
        return Contender(name, [args.mux, "proxy", "--socket", sock], "echo", None, mux)

    def stop_all():
        for p in started:
            p.terminate()
        for p in started:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        started.clear()

    try:
        contenders = [launch(n) for n in names]
        # Untimed rounds first: node compiles its hot paths over the first few
        # thousand calls (its CPU per call falls from ~115 to ~50 µs), and
        # each contender has a node of its own, so timed rounds that began
        # cold measured whose node warmed up first, not the multiplexers.
        for r in range(args.warmup):
            for c in contenders:
                throughput_round(c, args.clients, args.calls)
            print(f"warm-up round {r + 1} done", file=sys.stderr)
        rates = {c.name: [] for c in contenders}
        cpus = {c.name: [] for c in contenders}
        for r in range(args.rounds):
            order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for c in order:
                rate, cpu = throughput_round(c, args.clients, args.calls)
                rates[c.name].append(rate)
                cpus[c.name].append(cpu)
                shown = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(cpu.items()))
                print(f"round {r + 1}: {c.name}: {rate:,.0f} calls/s; CPU µs/call: {shown}", file=sys.stderr)
        stop_all()
        # Alone and started afresh: a process's PSS counts the pages it
        # shares (node's own, for one) as split with every process mapping
        # them, so the other contenders' servers must not be running. Taken
        # several times, interleaved: one reading of node's PSS varies by about
        # half a megabyte, as much as the multiplexers differ.
        readings = {c.name: [] for c in contenders}
        for _ in range(args.memory_runs):
            for c in contenders:
                fresh = launch(c.name)
                readings[c.name].append(memory(fresh, args.pss_sessions, args.settle))
                stop_all()
        results = []
        for c in contenders:
            runs = sorted(readings[c.name], key=lambda m: m["pss_kb"])
            mem = dict(runs[len(runs) // 2], pss_kb_runs=[m["pss_kb"] for m in readings[c.name]])
            kinds = sorted({k for cpu in cpus[c.name] for k in cpu})
            cpu = {k: statistics.median(cpu.get(k, 0.0) for cpu in cpus[c.name]) for k in kinds}
            results.append({"name": c.name, "calls_per_s": rates[c.name],
                            "median_calls_per_s": statistics.median(rates[c.name]),
                            "cpu_us_per_call": cpu, **mem})
        out = {"clients": args.clients, "calls": args.calls, "rounds": args.rounds, "warmup": args.warmup, "memory_runs": args.memory_runs,
               "pss_sessions": args.pss_sessions, "settle": args.settle, "contenders": results}
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        print_markdown(out)
    finally:
        stop_all()


def print_markdown(out):
    print(f"| contender | calls/s, {out['clients']} clients × {out['calls']} calls (median of {out['rounds']}) "
          f"| every round | processes, {out['pss_sessions']} sessions | PSS MiB | RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c in out["contenders"]:
        every = ", ".join(f"{x:,.0f}" for x in c["calls_per_s"])
        print(f"| {c['name']} | {c['median_calls_per_s']:,.0f} | {every} | {c['processes']} "
              f"| {c['pss_kb'] / 1024:,.1f} | {c['rss_kb'] / 1024:,.1f} |")


if __name__ == "__main__":
    main()
