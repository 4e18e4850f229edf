"""The OAuth soak's sessions (run by bench/oauth-soak.sh): SESSIONS shims on
one daemon, each calling the OAuth-protected fixture's `echo` tool every
INTERVAL seconds for DURATION seconds, then the authorization server's
counts (tests/fixtures/oauth_server.py `/stats`) and a verdict as one JSON
line on stdout.

    python oauth_soak.py SHIM STATS_URL DURATION SESSIONS INTERVAL

A call fails when it gets a JSON-RPC error, a tool error (`isError`: a login
the gateway says is needed, say), or no answer within 60 s.
"""
import json
import subprocess
import sys
import threading
import time
import urllib.request

SHIM, STATS_URL = sys.argv[1], sys.argv[2]
DURATION, SESSIONS, INTERVAL = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ANSWER_WITHIN = 60.0


def stats():
    with urllib.request.urlopen(STATS_URL, timeout=10) as response:
        return json.load(response)


class Session:
    def __init__(self, n):
        self.n = n
        self.calls = 0
        self.failed = 0
        self.login_errors = 0
        self.failures = []
        self.latencies = []
        self.proc = subprocess.Popen([SHIM], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    def answer(self, id_):
        deadline = time.monotonic() + ANSWER_WITHIN
        with self.cond:
            while True:
                for i, m in enumerate(self.lines):
                    if m is None:
                        return None
                    if m.get("id") == id_ and ("result" in m or "error" in m):
                        return self.lines.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def run(self, until):
        self.send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": f"soak-{self.n}", "version": "1"}}})
        if self.answer("init") is None:
            self.failed += 1
            self.failures.append("no answer to initialize")
            return
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        i = 0
        while time.monotonic() < until:
            i += 1
            started = time.monotonic()
            self.send({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                "name": "remote__echo", "arguments": {"message": f"{self.n}-{i}"}}})
            m = self.answer(i)
            self.calls += 1
            text = json.dumps(m) if m is not None else "no answer"
            ok = m is not None and "result" in m and not m["result"].get("isError") \
                and m["result"]["content"][0]["text"] == f"Echo: {self.n}-{i}"
            if ok:
                self.latencies.append(time.monotonic() - started)
            else:
                self.failed += 1
                if "auth login" in text:
                    self.login_errors += 1
                if len(self.failures) < 5:
                    self.failures.append(text[:300])
            # Messages nobody waits for (list_changed, say) are dropped.
            with self.cond:
                self.lines = [x for x in self.lines if x is None or "id" in x]
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main():
    before = stats()
    started = time.monotonic()
    until = started + DURATION
    sessions = [Session(n) for n in range(SESSIONS)]
    threads = [threading.Thread(target=s.run, args=(until,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    after = stats()
    latencies = sorted(x for s in sessions for x in s.latencies)
    refreshes = after["refreshes"] - before["refreshes"]
    # Each access token lives `ttl` seconds: the soak outlives this many of them.
    expiries = int(elapsed // after["ttl"])
    result = {
        "duration_s": round(elapsed, 1),
        "sessions": SESSIONS,
        "ttl_s": after["ttl"],
        "calls": sum(s.calls for s in sessions),
        "failed_calls": sum(s.failed for s in sessions),
        "login_errors": sum(s.login_errors for s in sessions),
        "forced_logins": after["logins"] - before["logins"],
        "invalid_grant": after["invalid_grant"] - before["invalid_grant"],
        "refreshes": refreshes,
        "expiries": expiries,
        "expired_token_seen_by_server": after["expired_seen"] - before["expired_seen"],
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
        "failures": [f for s in sessions for f in s.failures][:10],
    }
    # One refresh per token lifetime, not one per session: a token is
    # refreshed a tenth of its lifetime ahead, so at most one per 0.9 ttl
    # (and one more under way at the end), and at least one per ttl.
    most = int(elapsed // (0.9 * after["ttl"])) + 1
    result["refreshes_allowed"] = [max(0, expiries - 1), most]
    result["ok"] = (
        result["failed_calls"] == 0
        and result["forced_logins"] == 0
        and result["invalid_grant"] == 0
        and result["calls"] > 0
        and expiries - 1 <= refreshes <= most
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
