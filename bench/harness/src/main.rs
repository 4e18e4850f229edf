//! mcpbench: the benchmark harness behind bench/run.sh.
//!
//! Every subcommand reads a JSON spec (contenders: how to start one MCP stdio
//! session, i.e. a shim or a server spawned directly) and prints a JSON result
//! on stdout. Contenders run interleaved (round-robin, rotating the order each
//! round) so that machine drift hits all of them alike.
//!
//!   mcpbench latency    SPEC CALLS ROUNDS
//!   mcpbench attach     SPEC ITERS
//!   mcpbench throughput SPEC SESSIONS DEPTH SECS ROUNDS
//!   mcpbench sharing    SPEC TERMINALS
//!   mcpbench idle       SPEC SESSIONS
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("mcpbench: {msg}");
    std::process::exit(1)
}

// ---------------------------------------------------------------- sessions

#[derive(Clone)]
struct Launch {
    cmd: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    fn from(v: &Value) -> Launch {
        let cmd: Vec<String> = v["cmd"].as_array().unwrap_or_else(|| die("contender without cmd"))
            .iter().map(|s| s.as_str().unwrap().to_string()).collect();
        let env = v.get("env").and_then(Value::as_object).map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
        }).unwrap_or_default();
        Launch { cmd, env }
    }
    fn spawn(&self) -> Session {
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap_or_else(|e| die(format!("spawn {:?}: {e}", self.cmd)));
        let stdin = BufWriter::new(child.stdin.take().unwrap());
        let stdout = BufReader::with_capacity(1 << 16, child.stdout.take().unwrap());
        Session { child, stdin: Some(stdin), stdout, next_id: 1, line: String::new() }
    }
}

struct Session {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
}

const PROTOCOL: &str = "2025-06-18";

impl Session {
    fn send(&mut self, msg: &Value) {
        let w = self.stdin.as_mut().unwrap();
        serde_json::to_writer(&mut *w, msg).unwrap();
        w.write_all(b"\n").and_then(|_| w.flush()).unwrap_or_else(|e| die(format!("write to session: {e}")));
    }
    /// Sends a request and waits for the answer with its id (notifications and
    /// server requests in between are skipped; a server request gets an error).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.wait_for(id)
    }
    fn wait_for(&mut self, id: u64) -> Value {
        loop {
            self.line.clear();
            let n = self.stdout.read_line(&mut self.line).unwrap_or(0);
            if n == 0 {
                die(format!("session {:?} closed its stdout while waiting for answer {id}", self.child.id()));
            }
            let Ok(msg) = serde_json::from_str::<Value>(&self.line) else { continue };
            if msg.get("method").is_some() {
                if let Some(rid) = msg.get("id") {
                    let rid = rid.clone();
                    self.send(&json!({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "bench client"}}));
                }
                continue;
            }
            if msg.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = msg.get("error") {
                    die(format!("request {id} failed: {e}"));
                }
                return msg;
            }
        }
    }
    fn initialize(&mut self) -> Value {
        let r = self.request("initialize", json!({"protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "mcpbench", "version": "0.1.0"}}));
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }
    fn call(&mut self, tool: &str, args: &Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        if r["result"]["isError"] == json!(true) {
            die(format!("tool {tool} returned an error: {}", r["result"]));
        }
        r
    }
    fn close(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Closes every session's stdin at once, waits up to `grace` for the processes to
/// exit by themselves, kills the rest; returns how many exited and how fast.
fn close_all(mut sessions: Vec<Session>, grace: Duration) -> Value {
    let n = sessions.len();
    let t0 = Instant::now();
    for s in sessions.iter_mut() {
        drop(s.stdin.take());
    }
    let mut times = Vec::new();
    let mut alive: Vec<Session> = sessions;
    while !alive.is_empty() && t0.elapsed() < grace {
        alive.retain_mut(|s| match s.child.try_wait() {
            Ok(Some(_)) => {
                times.push(t0.elapsed().as_secs_f64() * 1000.0);
                false
            }
            _ => true,
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = alive.len();
    for mut s in alive {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
    json!({"sessions": n, "exited_by_themselves": n - killed, "killed_after_secs": grace.as_secs_f64(),
        "killed": killed, "exit_ms": summary(times)})
}

// ---------------------------------------------------------------- stats

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    json!({"n": v.len(), "p50": pct(&v, 50.0), "p90": pct(&v, 90.0), "p99": pct(&v, 99.0),
           "min": pct(&v, 0.0), "max": pct(&v, 100.0), "mean": mean})
}

// ---------------------------------------------------------------- /proc

fn ticks_per_sec() -> f64 {
    100.0 // USER_HZ on Linux
}

fn all_ppids() -> HashMap<u32, u32> {
    let mut m = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Some((ppid, _)) = stat(pid) {
            m.insert(pid, ppid);
        }
    }
    m
}

/// (ppid, utime+stime in ticks)
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[1].parse().ok()?, f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?))
}

fn descendants(roots: &[u32]) -> Vec<u32> {
    let ppids = all_ppids();
    let mut out: Vec<u32> = Vec::new();
    let mut seen: HashSet<u32> = roots.iter().copied().collect();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &ppids {
            if pp == p && seen.insert(c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok()).unwrap_or(0)
}
fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}
fn pss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines().find(|l| l.starts_with("Pss:")).and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok()).unwrap_or(0)
}
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// Processes, RSS and PSS of a group of pids.
fn mem_of(pids: &[u32]) -> Value {
    let alive: Vec<u32> = pids.iter().copied().filter(|p| stat(*p).is_some()).collect();
    let rss: u64 = alive.iter().map(|p| rss_kb(*p)).sum();
    let pss: u64 = alive.iter().map(|p| pss_kb(*p)).sum();
    let mut names: HashMap<String, usize> = HashMap::new();
    for p in &alive {
        *names.entry(comm(*p)).or_default() += 1;
    }
    json!({"processes": alive.len(), "rss_kb": rss, "pss_kb": pss, "by_name": names})
}

fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| stat(*p)).map(|(_, t)| t).sum()
}

// ---------------------------------------------------------------- spec

fn load_spec(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(format!("{path}: {e}")));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| die(format!("{path}: {e}")));
    v["contenders"].as_array().cloned().unwrap_or_else(|| die("spec without contenders"))
}

fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or("?").to_string()
}
fn watch_pids(c: &Value) -> Vec<u32> {
    c.get("watch_pids").and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_u64().map(|p| p as u32)).collect())
        .unwrap_or_default()
}
fn echo_args(c: &Value, i: u64) -> Value {
    let key = c.get("arg").and_then(Value::as_str).unwrap_or("message");
    json!({ key: format!("hello {i}") })
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------- latency

fn latency(args: &[String]) -> Value {
    let spec = load_spec(&args[0]);
    let calls: usize = arg(args, 1, 5000);
    let rounds: usize = arg(args, 2, 20);
    let per_round = (calls / rounds).max(1);
    let mut sessions: Vec<Session> = spec.iter().map(|c| {
        let mut s = Launch::from(c).spawn();
        s.initialize();
        s.request("tools/list", json!({}));
        for i in 0..200 {
            s.call(c["tool"].as_str().unwrap(), &echo_args(c, i));
        }
        s
    }).collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); spec.len()];
    for r in 0..rounds {
        for k in 0..spec.len() {
            let i = (k + r) % spec.len();
            let tool = spec[i]["tool"].as_str().unwrap().to_string();
            for j in 0..per_round {
                let a = echo_args(&spec[i], j as u64);
                let t0 = Instant::now();
                sessions[i].call(&tool, &a);
                samples[i].push(t0.elapsed().as_nanos() as f64 / 1000.0);
            }
        }
    }
    for s in sessions {
        s.close();
    }
    json!(spec.iter().zip(samples).map(|(c, v)| json!({"name": name(c), "us": summary(v)})).collect::<Vec<_>>())
}

// ---------------------------------------------------------------- attach

fn attach(args: &[String]) -> Value {
    let spec = load_spec(&args[0]);
    let iters: usize = arg(args, 1, 50);
    let mut init: Vec<Vec<f64>> = vec![Vec::new(); spec.len()];
    let mut list: Vec<Vec<f64>> = vec![Vec::new(); spec.len()];
    let mut tools: Vec<usize> = vec![0; spec.len()];
    for r in 0..iters + 2 {
        for k in 0..spec.len() {
            let i = (k + r) % spec.len();
            let l = Launch::from(&spec[i]);
            let t0 = Instant::now();
            let mut s = l.spawn();
            s.initialize();
            let t1 = t0.elapsed();
            let reply = s.request("tools/list", json!({}));
            let t2 = t0.elapsed();
            tools[i] = reply["result"]["tools"].as_array().map(|a| a.len()).unwrap_or(0);
            s.close();
            if r >= 2 {
                // the first two rounds are warm-up (page cache, daemon caches)
                init[i].push(t1.as_secs_f64() * 1000.0);
                list[i].push(t2.as_secs_f64() * 1000.0);
            }
        }
    }
    json!(spec.iter().enumerate().map(|(i, c)| json!({"name": name(c), "tools": tools[i],
        "initialize_ms": summary(init[i].clone()), "tools_list_ms": summary(list[i].clone())})).collect::<Vec<_>>())
}

// ---------------------------------------------------------------- throughput

fn throughput(args: &[String]) -> Value {
    let spec = load_spec(&args[0]);
    let nsess: usize = arg(args, 1, 16);
    let depth: usize = arg(args, 2, 1);
    let secs: f64 = arg(args, 3, 3.0);
    let rounds: usize = arg(args, 4, 3);
    let me = std::process::id();
    let mut totals: Vec<(u64, f64, [u64; 5])> = vec![(0, 0.0, [0; 5]); spec.len()];
    for r in 0..rounds {
        for k in 0..spec.len() {
            let i = (k + r) % spec.len();
            let c = &spec[i];
            let mut sessions: Vec<Session> = (0..nsess).map(|_| {
                let mut s = Launch::from(c).spawn();
                s.initialize();
                s
            }).collect();
            let tool = c["tool"].as_str().unwrap().to_string();
            for s in sessions.iter_mut() {
                for j in 0..20 {
                    s.call(&tool, &echo_args(c, j));
                }
            }
            let stop = Arc::new(AtomicBool::new(false));
            let measuring = Arc::new(AtomicBool::new(false));
            let count = Arc::new(AtomicU64::new(0));
            let mut handles = Vec::new();
            for mut s in sessions.drain(..) {
                let (stop, measuring, count, tool, c) = (stop.clone(), measuring.clone(), count.clone(), tool.clone(), c.clone());
                handles.push(std::thread::spawn(move || {
                    let mut next = 1_000_000u64;
                    let send = |s: &mut Session, next: &mut u64| {
                        let id = *next;
                        *next += 1;
                        s.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                            "params": {"name": tool, "arguments": echo_args(&c, id)}}));
                    };
                    for _ in 0..depth {
                        send(&mut s, &mut next);
                    }
                    let mut outstanding = depth;
                    while outstanding > 0 {
                        s.line.clear();
                        if s.stdout.read_line(&mut s.line).unwrap_or(0) == 0 {
                            die("session closed during the throughput run");
                        }
                        if !s.line.contains("\"result\"") && !s.line.contains("\"error\"") {
                            continue;
                        }
                        outstanding -= 1;
                        if measuring.load(Ordering::Relaxed) {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        if !stop.load(Ordering::Relaxed) {
                            send(&mut s, &mut next);
                            outstanding += 1;
                        }
                    }
                    s
                }));
            }
            std::thread::sleep(Duration::from_millis(300));
            let watch = watch_pids(c);
            let groups = |me: u32| -> [Vec<u32>; 5] {
                let kids = descendants(&[me]);
                let wdesc = descendants(&watch);
                [vec![me], kids, watch.clone(), wdesc, vec![]]
            };
            let g0 = groups(me);
            let cpu0: Vec<u64> = g0.iter().map(|g| cpu_ticks(g)).collect();
            let n0 = count.load(Ordering::Relaxed);
            measuring.store(true, Ordering::Relaxed);
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_secs_f64(secs));
            let n1 = count.load(Ordering::Relaxed);
            let el = t0.elapsed().as_secs_f64();
            let cpu1: Vec<u64> = g0.iter().map(|g| cpu_ticks(g)).collect();
            stop.store(true, Ordering::Relaxed);
            for h in handles {
                h.join().unwrap().close();
            }
            totals[i].0 += n1 - n0;
            totals[i].1 += el;
            for g in 0..4 {
                totals[i].2[g] += cpu1[g] - cpu0[g];
            }
        }
    }
    json!(spec.iter().enumerate().map(|(i, c)| {
        let (n, el, cpu) = totals[i];
        let per_call_us = |t: u64| if n == 0 { f64::NAN } else { t as f64 / ticks_per_sec() * 1e6 / n as f64 };
        json!({"name": name(c), "sessions": nsess, "depth": depth, "calls": n, "secs": el,
            "calls_per_sec": n as f64 / el,
            "cpu_us_per_call": {"client": per_call_us(cpu[0]), "children": per_call_us(cpu[1]),
                "daemon": per_call_us(cpu[2]), "daemon_children": per_call_us(cpu[3]),
                "total": per_call_us(cpu[0] + cpu[1] + cpu[2] + cpu[3])},
            "cpu_cores_busy": (cpu[0] + cpu[1] + cpu[2] + cpu[3]) as f64 / ticks_per_sec() / el})
    }).collect::<Vec<_>>())
}

// ---------------------------------------------------------------- sharing

/// Each contender: {"name", "terminal": [{cmd, env, calls: [{name, arguments}]}], "watch_pids"}.
/// Every terminal starts each entry of "terminal" (a shim, or one server each),
/// initializes it, lists tools and makes its calls; then the whole tree is measured.
fn sharing(args: &[String]) -> Value {
    let spec = load_spec(&args[0]);
    let terminals: usize = arg(args, 1, 1);
    let me = std::process::id();
    let mut out = Vec::new();
    for c in &spec {
        let entries = c["terminal"].as_array().unwrap().clone();
        let mut sessions = Vec::new();
        let t0 = Instant::now();
        for _ in 0..terminals {
            for e in &entries {
                let mut s = Launch::from(e).spawn();
                s.initialize();
                s.request("tools/list", json!({}));
                for call in e["calls"].as_array().cloned().unwrap_or_default() {
                    s.call(call["name"].as_str().unwrap(), &call["arguments"]);
                }
                sessions.push(s);
            }
        }
        let setup = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(2));
        let watch = watch_pids(c);
        let clients = descendants(&[me]);
        let daemon_tree: Vec<u32> = watch.iter().copied().chain(descendants(&watch)).collect();
        let all: Vec<u32> = clients.iter().copied().chain(daemon_tree.iter().copied()).collect();
        let shims_rss: Vec<f64> = sessions.iter().map(|s| rss_kb(s.child.id()) as f64).collect();
        out.push(json!({"name": name(c), "terminals": terminals, "setup_secs": setup,
            "total": mem_of(&all), "client_side": mem_of(&clients), "daemon_side": mem_of(&daemon_tree),
            "daemon_only": mem_of(&watch), "per_session_rss_kb": summary(shims_rss)}));
        let exits = close_all(sessions, Duration::from_secs(5));
        out.last_mut().unwrap()["shim_exit_after_eof"] = exits;
        std::thread::sleep(Duration::from_millis(500));
    }
    json!(out)
}

// ---------------------------------------------------------------- idle

fn idle(args: &[String]) -> Value {
    let spec = load_spec(&args[0]);
    let n: usize = arg(args, 1, 1000);
    let c = &spec[0];
    let watch = watch_pids(c);
    let daemon = *watch.first().unwrap_or_else(|| die("idle needs watch_pids (the daemon)"));
    let snap = || json!({"rss_kb": rss_kb(daemon), "pss_kb": pss_kb(daemon), "fds": fds(daemon),
        "threads": status_kb(daemon, "Threads:")});
    std::thread::sleep(Duration::from_millis(500));
    let before = snap();
    let l = Launch::from(c);
    let t0 = Instant::now();
    let mut sessions: Vec<Session> = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(l.spawn());
    }
    // initialize all: send first, then read, so the daemon sees them concurrently
    for s in sessions.iter_mut() {
        s.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": PROTOCOL,
            "capabilities": {}, "clientInfo": {"name": "mcpbench", "version": "0.1.0"}}}));
    }
    for s in sessions.iter_mut() {
        s.wait_for(1);
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s.next_id = 2;
        s.request("tools/list", json!({}));
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let during = snap();
    let shim_pids: Vec<u32> = sessions.iter().map(|s| s.child.id()).collect();
    let shims = mem_of(&shim_pids);
    let shim_rss = summary(shim_pids.iter().map(|p| rss_kb(*p) as f64).collect());
    let t1 = Instant::now();
    let exits = close_all(sessions, Duration::from_secs(5));
    // The sessions' fds go back; the backend the first tools/list started
    // keeps its pipes, so the count need not fall to `before`'s: they are
    // back once the count has not fallen for a second (deadline 15 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut last_fds, mut fds_changed) = (fds(daemon), Instant::now());
    while fds_changed.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = fds(daemon);
        if now != last_fds {
            (last_fds, fds_changed) = (now, Instant::now());
        }
    }
    let fds_back_secs = fds_changed.duration_since(t1).as_secs_f64();
    let after = settled(daemon, fds_changed, &snap);
    json!({"name": name(c), "sessions": n, "connect_secs": connect_secs, "before": before, "during": during,
        "after": after, "fds_back_secs": fds_back_secs, "shim_exit_after_eof": exits, "shims": shims, "shim_rss_kb": shim_rss})
}

/// The daemon's memory once it has settled after the last session left: it
/// gives back the heap its sessions freed and the code pages their set-up ran
/// 3 s after the last session left or started (`SETTLE` in src/memory.rs), so
/// the snapshot waits past that (4 s after `since`), then until RSS has not
/// changed for 2 s (polled every 250 ms; deadline 30 s after `since`; the
/// snapshot says how long it waited and whether RSS had come to rest).
fn settled(daemon: u32, since: Instant, snap: &dyn Fn() -> Value) -> Value {
    let (past_settle, deadline) = (since + Duration::from_secs(4), since + Duration::from_secs(30));
    let (mut last, mut changed) = (rss_kb(daemon), Instant::now());
    loop {
        let now = Instant::now();
        let resting = now >= past_settle && now.duration_since(changed) >= Duration::from_secs(2);
        if resting || now >= deadline {
            let mut s = snap();
            s["settled_after_secs"] = json!(now.duration_since(since).as_secs_f64());
            s["rss_at_rest"] = json!(resting);
            return s;
        }
        std::thread::sleep(Duration::from_millis(250));
        let rss = rss_kb(daemon);
        if rss != last || Instant::now() < past_settle {
            (last, changed) = (rss, Instant::now());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else { die("usage: mcpbench latency|attach|throughput|sharing|idle SPEC ...") };
    let rest = &args[1..];
    let v = match cmd.as_str() {
        "latency" => latency(rest),
        "attach" => attach(rest),
        "throughput" => throughput(rest),
        "sharing" => sharing(rest),
        "idle" => idle(rest),
        _ => die(format!("unknown subcommand {cmd}")),
    };
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
