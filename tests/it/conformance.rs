//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`,
//! `server` mode) run with the suite's own frozen requirement sets, one test per
//! protocol revision: `--requirements 2025-11-25` (the handshake era) and
//! `--requirements 2026-07-28` (the stateless era). A set fixes both which
//! scenarios run and the wire they run at, so each revision is measured on its
//! own wire and a new suite release cannot move the goalposts.
//!
//! Each set runs in ten columns, concurrently: **direct** against the fixture
//! (`tests/fixtures/conformance_server.py`) over Streamable HTTP, and **through
//! the gateway's front door** with its own fixture process behind it over stdio
//! or over HTTP, serving the handshake era only (`--era legacy`, the gateway
//! told `protocol: handshake`), the stateless era only (`--era modern`,
//! `protocol: modern`), or both (`--era both`, the gateway probing as it does
//! by default). `prefix: false`, so the suite sees the fixture's own names.
//! Three more columns reach the same gateway (the fixture over stdio, in
//! each era) through the stdio shim, `mcp-gateway-connect`, instead: the
//! suite speaks only HTTP, so `tests/fixtures/shim_http_bridge.py` stands in
//! for a client's HTTP transport and relays each MCP session to a shim of its
//! own (the stateless wire's requests to one).
//!
//! A scenario passes when none of its checks fails or warns. Scenarios the set
//! lists as `not_scored` (extensions, pending, added after the release) are run
//! and shown, never judged. For the scored ones the test fails when the direct
//! column fails any (the fixture is the reference and must pass everything),
//! when a scenario that passes directly fails through the gateway and
//! `tests/conformance/known-gaps-<revision>.yml` does not list it for that
//! column, and when a listed gap passes (the list must shrink as the gateway is
//! fixed). `MCP_GATEWAY_CONFORMANCE_GAPS=write` rewrites that file from the run
//! instead of failing on (or for) gaps.
//!
//! The matrix goes to stdout and to `target/conformance.md` (one section per
//! revision); the suite's results, the daemon logs and the fixtures' stderr stay
//! in `target/conformance/<revision>/<column>/`. `CONFORMANCE.md` holds the one
//! published.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::conformance::{Outcome, Scenario, publish, read_checks, requirements, writing_gaps};
use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How many lines of a daemon log a failure message quotes.
const LOG_TAIL: usize = 40;

#[test]
fn the_2025_11_25_requirements_hold_through_the_gateway_wherever_they_hold_directly() {
    measure("2025-11-25");
}

#[test]
fn the_2026_07_28_requirements_hold_through_the_gateway_wherever_they_hold_directly() {
    measure("2026-07-28");
}

/// Which protocol era the fixture behind a column serves (its `--era`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// The handshake era (`initialize`, up to 2025-11-25).
    Legacy,
    /// The stateless era (2026-07-28: `server/discover`, per-request `_meta`).
    Modern,
    /// Both, as a dual-era SDK server is by default.
    Both,
}

impl Era {
    fn fixture_arg(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
            Era::Both => "both",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Era::Legacy => "2025",
            Era::Modern => "2026",
            Era::Both => "both",
        }
    }

    /// The gateway's `protocol:` for a server of this era. A single-era server
    /// is named as such, so the column measures the gateway's translation
    /// between eras rather than its probing; a dual-era one is left to the
    /// default probe, which is what a user's config would do.
    fn protocol(self) -> Option<&'static str> {
        match self {
            Era::Legacy => Some("handshake"),
            Era::Modern => Some("modern"),
            Era::Both => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Stdio,
    Http,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "HTTP",
        }
    }
}

/// Which of the gateway's client-facing fronts the suite talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    /// The daemon's own Streamable HTTP endpoint.
    Door,
    /// The stdio shim, `mcp-gateway-connect`, behind
    /// `tests/fixtures/shim_http_bridge.py` (the suite speaks only HTTP).
    Shim,
}

/// One column of the matrix: the fixture directly, or the gateway with the
/// fixture behind it over `transport`, reached through `front`.
#[derive(Debug, Clone, Copy)]
struct Column {
    via: Option<Transport>,
    era: Era,
    front: Front,
}

impl Column {
    const DIRECT: Column = Column { via: None, era: Era::Both, front: Front::Door };

    /// Every column, direct first, in the order the table shows them. The
    /// shim is measured with the fixture over stdio only: which transport
    /// the backend uses is the front door columns' question, and the shim's
    /// is its stdio front in both eras.
    fn all() -> Vec<Column> {
        let mut columns = vec![Column::DIRECT];
        for via in [Transport::Stdio, Transport::Http] {
            for era in [Era::Legacy, Era::Modern, Era::Both] {
                columns.push(Column { via: Some(via), era, front: Front::Door });
            }
        }
        for era in [Era::Legacy, Era::Modern, Era::Both] {
            columns.push(Column { via: Some(Transport::Stdio), era, front: Front::Shim });
        }
        columns
    }

    /// The column's name in the known-gaps file and under `target/conformance/`.
    fn key(self) -> String {
        match (self.via, self.front) {
            (None, _) => "direct".to_string(),
            (Some(via), Front::Door) => format!("{}-{}", via.label().to_lowercase(), self.era.label()),
            (Some(via), Front::Shim) => format!("shim-{}-{}", via.label().to_lowercase(), self.era.label()),
        }
    }

    fn heading(self) -> String {
        match (self.via, self.front) {
            (None, _) => "direct (fixture over HTTP)".to_string(),
            (Some(via), Front::Door) => format!("gateway, {}, {}", via.label(), self.era.label()),
            (Some(via), Front::Shim) => format!("shim, {}, {}", via.label(), self.era.label()),
        }
    }
}

/// One column's run of the suite.
struct Run {
    column: Column,
    outcomes: BTreeMap<String, Outcome>,
    /// Where the suite's results, the daemon log and the fixture's stderr are.
    dir: PathBuf,
    /// The last lines of the daemon's log (empty for the direct column).
    daemon_tail: String,
    seconds: f64,
}

/// A Python process serving HTTP on an ephemeral port of 127.0.0.1, which it
/// writes to `<name>.port` in the column's directory once it listens (its
/// stderr goes to `<name>.stderr` there); stopped when dropped.
struct Listener {
    child: Child,
    url: String,
}

impl Listener {
    /// Starts `command` with `--port-file` added and waits for the port.
    fn start(mut command: Command, dir: &Path, name: &str) -> Self {
        let port_file = dir.join(format!("{name}.port"));
        let stderr = dir.join(format!("{name}.stderr"));
        let log = std::fs::File::create(&stderr).unwrap_or_else(|e| panic!("{}: {e}", stderr.display()));
        let child = command
            .arg("--port-file")
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {name} with {}: {e}", deps().python()));
        let mut port = String::new();
        // Owned before the wait, so that a process that never comes up is stopped.
        let mut listener = Listener { child, url: String::new() };
        assert!(
            wait_until(TIMEOUT, || {
                port = std::fs::read_to_string(&port_file).unwrap_or_default();
                port.ends_with('\n')
            }),
            "the {name} did not start: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        listener.url = format!("http://127.0.0.1:{}/mcp", port.trim());
        listener
    }

    /// The fixture server over Streamable HTTP, serving `era`.
    fn fixture(dir: &Path, era: Era) -> Self {
        let mut command = Command::new(deps().python());
        command.arg(fixture_script()).args(era_args(era)).args(["--http", "0"]);
        Listener::start(command, dir, "fixture")
    }

    /// `tests/fixtures/shim_http_bridge.py` in front of `gw`'s shim: each MCP
    /// session it serves is a `mcp-gateway-connect --no-autostart` of its own
    /// (all of the stateless wire's requests one), in `gw`'s environment.
    fn bridge(dir: &Path, gw: &TestGateway) -> Self {
        let mut command = gw.command(deps().python());
        command
            .arg(format!("{ROOT}/tests/fixtures/shim_http_bridge.py"))
            .args(["--shim", SHIM, "--socket"])
            .arg(&gw.socket)
            .current_dir(gw.dir.path());
        Listener::start(command, dir, "bridge")
    }
}

impl Drop for Listener {
    /// SIGTERM first: the bridge then ends its shims' sessions itself (a
    /// SIGKILLed one leaves them to notice their closed stdin).
    fn drop(&mut self) {
        signal(self.child.id() as i32, nix::sys::signal::Signal::SIGTERM);
        if !wait_until(Duration::from_secs(10), || matches!(self.child.try_wait(), Ok(Some(_)))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn fixture_script() -> String {
    format!("{ROOT}/tests/fixtures/conformance_server.py")
}

/// The fixture's `--era` arguments. A fixture from before the option serves
/// one era whatever it is asked, so it is asked nothing (its columns then
/// differ only in what the gateway is told).
fn era_args(era: Era) -> Vec<&'static str> {
    static HAS_ERA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let has_era =
        *HAS_ERA.get_or_init(|| std::fs::read_to_string(fixture_script()).is_ok_and(|text| text.contains("\"--era\"")));
    if has_era { vec!["--era", era.fixture_arg()] } else { Vec::new() }
}

/// A gateway with the fixture as its one server (`server` is the body of the
/// server's entry) and, for the front door, a front door that trusts loopback
/// (the suite sends no credentials); the front door's URL with it.
fn gateway(server: &str, era: Era, front: Front) -> (TestGateway, Option<String>) {
    let mut gw = TestGateway::new();
    let protocol = era.protocol().map(|p| format!("    protocol: {p}\n")).unwrap_or_default();
    let http = match front {
        Front::Door => "http:\n  listen: \"127.0.0.1:0\"\n  auth: { localhost: true }\n",
        Front::Shim => "",
    };
    gw.write_config(&format!("{http}servers:\n  conformance:\n{server}{protocol}    prefix: false\n"));
    gw.start();
    if front == Front::Shim {
        return (gw, None);
    }
    let url = status(&gw)["http"]
        .as_str()
        .unwrap_or_else(|| panic!("the front door is not listening:\n{}", gw.daemon_log()))
        .to_string();
    (gw, Some(url))
}

/// Runs `revision`'s requirement set against `url`, writing results to `out`,
/// and reads back what each scenario came to. The suite's exit status is not
/// consulted: it judges against the set alone, while this test judges each
/// column against the direct one.
fn run_suite(revision: &str, url: &str, out: &Path, scenarios: &[Scenario]) -> BTreeMap<String, Outcome> {
    let d = deps();
    let output = Command::new(d.node())
        .arg(d.get("MCP_TEST_CONFORMANCE_JS"))
        .args(["server", "--url", url, "--requirements", revision, "-o"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running the suite with {}: {e}", d.node()));
    let log = [output.stdout, output.stderr].concat();
    let _ = std::fs::write(out.join("suite.log"), &log);

    let mut outcomes: BTreeMap<String, Outcome> =
        scenarios.iter().map(|s| (s.name.clone(), Outcome::Missing)).collect();
    let entries = std::fs::read_dir(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    for dir in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let dir_name = dir.file_name().unwrap_or_default().to_string_lossy().to_string();
        // `server-<scenario>-<timestamp>`: the longest scenario name that fits.
        let Some(scenario) = scenarios
            .iter()
            .map(|s| &s.name)
            .filter(|n| dir_name.starts_with(&format!("server-{n}-")))
            .max_by_key(|n| n.len())
        else {
            continue;
        };
        let Some(outcome) = read_checks(&dir.join("checks.json")) else { continue };
        outcomes.insert(scenario.clone(), outcome);
    }
    outcomes
}

/// Sets up `column` (its own fixture and, but for the direct one, its own
/// gateway), runs the suite through it and tears it down.
fn run_column(revision: &str, column: Column, scenarios: &[Scenario], dir: PathBuf) -> Run {
    let started = Instant::now();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap_or_else(|e| panic!("{}: {e}", results.display()));
    let (outcomes, daemon_log) = match column.via {
        None => {
            let fixture = Listener::fixture(&dir, column.era);
            (run_suite(revision, &fixture.url, &results, scenarios), None)
        }
        Some(via) => {
            // Declared first, so dropped last: the fixture outlives the daemon
            // that uses it, and the daemon the bridge and its shims.
            let fixture = (via == Transport::Http).then(|| Listener::fixture(&dir, column.era));
            let server = match &fixture {
                Some(fixture) => format!("    url: {:?}\n", fixture.url),
                None => {
                    let args: Vec<String> = std::iter::once(fixture_script())
                        .chain(era_args(column.era).into_iter().map(str::to_string))
                        .map(|a| format!("{a:?}"))
                        .collect();
                    format!("    command: {}\n    args: [{}]\n", deps().python(), args.join(", "))
                }
            };
            let (gw, door) = gateway(&server, column.era, column.front);
            let outcomes = match door {
                Some(url) => run_suite(revision, &url, &results, scenarios),
                None => {
                    let bridge = Listener::bridge(&dir, &gw);
                    let outcomes = run_suite(revision, &bridge.url, &results, scenarios);
                    drop(bridge);
                    outcomes
                }
            };
            (outcomes, Some(gw.daemon_log()))
        }
    };
    let daemon_log = daemon_log.unwrap_or_default();
    if column.via.is_some() {
        let _ = std::fs::write(dir.join("daemon.log"), &daemon_log);
    }
    let lines: Vec<&str> = daemon_log.lines().collect();
    let daemon_tail = lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n");
    Run { column, outcomes, dir, daemon_tail, seconds: started.elapsed().as_secs_f64() }
}

/// Scenario → reason, per gateway column: the gaps the gateway is known to
/// have for one revision (`tests/conformance/known-gaps-<revision>.yml`).
type Gaps = BTreeMap<String, BTreeMap<String, String>>;

fn gaps_file(revision: &str) -> PathBuf {
    Path::new(ROOT).join("tests/conformance").join(format!("known-gaps-{revision}.yml"))
}

fn read_gaps(revision: &str) -> Gaps {
    let file = gaps_file(revision);
    let Ok(text) = std::fs::read_to_string(&file) else { return Gaps::new() };
    let gaps: Option<Gaps> = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    gaps.unwrap_or_default()
}

/// The known-gaps file for what this run measured: every scored scenario that
/// passes directly and fails through a column, with its first failing check.
fn write_gaps(revision: &str, scenarios: &[Scenario], runs: &[Run]) {
    let direct = &runs[0];
    let mut text = format!(
        "# Scored scenarios of the conformance suite's {revision} requirement set that pass\n\
         # directly against tests/fixtures/conformance_server.py but fail through the\n\
         # gateway: column -> scenario -> the first check that failed or warned.\n\
         # tests/it/conformance.rs fails on a failure not listed here and on an entry\n\
         # that passes now. Regenerate (after fixing the gateway) with\n\
         #   MCP_GATEWAY_CONFORMANCE_GAPS=write cargo nextest run -E 'test(/^conformance::/)'\n\
         # and review the diff: it should only lose lines.\n"
    );
    let mut any = false;
    for run in &runs[1..] {
        let failing: Vec<(&Scenario, &Outcome)> = scenarios
            .iter()
            .filter(|s| s.unscored.is_none() && direct.outcomes.get(&s.name).is_some_and(Outcome::passed))
            .filter_map(|s| run.outcomes.get(&s.name).filter(|o| !o.passed()).map(|o| (s, o)))
            .collect();
        if failing.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(text, "{}:", run.column.key());
        for (scenario, outcome) in failing {
            let reason = serde_json::to_string(&outcome.reason()).unwrap_or_default();
            let _ = writeln!(text, "  {}: {reason}", scenario.name);
        }
    }
    if !any {
        text.push_str("{}\n");
    }
    let file = gaps_file(revision);
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// The revision's section of the matrix, in Markdown.
fn matrix(revision: &str, scenarios: &[Scenario], runs: &[Run], gaps: &Gaps, seconds: f64) -> String {
    let mut md = format!("### Requirement set {revision}\n\n| scenario | scored |");
    let mut rule = String::from("|---|---|");
    for run in runs {
        let _ = write!(md, " {} |", run.column.heading());
        rule.push_str("---|");
    }
    let _ = write!(md, "\n{rule}\n");
    for scenario in scenarios {
        let scored = match &scenario.unscored {
            None => "yes".to_string(),
            Some(reason) => format!("no ({reason})"),
        };
        let _ = write!(md, "| {} | {scored} |", scenario.name);
        for run in runs {
            let gap = gaps.get(&run.column.key()).is_some_and(|g| g.contains_key(&scenario.name));
            let cell = run.outcomes.get(&scenario.name).unwrap_or(&Outcome::Missing).cell(gap);
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    let scored = scenarios.iter().filter(|s| s.unscored.is_none()).count();
    let _ = write!(md, "| **scored passing** | {scored} |");
    for run in runs {
        let passing = scenarios
            .iter()
            .filter(|s| s.unscored.is_none() && run.outcomes.get(&s.name).is_some_and(Outcome::passed))
            .count();
        let _ = write!(md, " {passing}/{scored} |");
    }
    let timings: Vec<String> = runs.iter().map(|r| format!("{} {:.1} s", r.column.key(), r.seconds)).collect();
    let _ = write!(md, "\n\nWall time {seconds:.1} s, the columns concurrently ({}).\n", timings.join(", "));
    md
}

/// Runs `revision`'s set in every column, publishes the matrix, then judges.
fn measure(revision: &str) {
    let started = Instant::now();
    let scenarios = requirements(revision, "server");
    assert!(
        scenarios.iter().filter(|s| s.unscored.is_none()).count() >= 20,
        "the {revision} set lists its scored server scenarios: {scenarios:?}"
    );
    let target = Path::new(ROOT).join("target");
    let out = target.join("conformance").join(revision);
    let _ = std::fs::remove_dir_all(&out);

    // Every column is its own fixture, gateway and suite process; they share
    // nothing, so they run at once (the suite mostly waits on the network).
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = Column::all()
            .into_iter()
            .map(|column| {
                let (scenarios, dir) = (&scenarios, out.join(column.key()));
                scope.spawn(move || run_column(revision, column, scenarios, dir))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let seconds = started.elapsed().as_secs_f64();

    let writing = writing_gaps();
    if writing {
        write_gaps(revision, &scenarios, &runs);
    }
    let gaps = read_gaps(revision);
    let section = matrix(revision, &scenarios, &runs, &gaps, seconds);
    println!("{section}");
    publish(&target.join("conformance"), &target.join("conformance.md"), revision, &section);

    let problems = judge(&scenarios, &runs, &gaps, writing);
    let misplaced = misplaced_gaps(revision, &scenarios, &runs, &gaps);
    if problems.is_empty() && misplaced.is_empty() {
        return;
    }
    let mut message = format!("conformance {revision}: {} problem(s)\n", problems.len() + misplaced.len());
    if !misplaced.is_empty() {
        let _ = writeln!(message, "\n== {} names ==", gaps_file(revision).display());
        misplaced.iter().for_each(|t| message.push_str(t));
    }
    for (index, run) in runs.iter().enumerate() {
        let mine: Vec<&Problem> = problems.iter().filter(|p| p.column == index).collect();
        if mine.is_empty() {
            continue;
        }
        let _ = writeln!(message, "\n== {} (its results: {}) ==", run.column.key(), run.dir.display());
        mine.iter().for_each(|p| message.push_str(&p.text));
        // A stale entry needs no log; a failure through the gateway may.
        if run.column.via.is_some() && mine.iter().any(|p| p.failure) {
            let _ = writeln!(message, "-- the last {LOG_TAIL} lines of its daemon log --\n{}", run.daemon_tail);
        }
    }
    let _ = write!(
        message,
        "\nThe matrix is on stdout and in target/conformance.md. A gap the gateway is meant to \
         have goes into {}; MCP_GATEWAY_CONFORMANCE_GAPS=write rewrites that file from a run \
         (see CONFORMANCE.md).",
        gaps_file(revision).display()
    );
    panic!("{message}");
}

/// Something wrong with one column's run.
struct Problem {
    /// The column's index in the runs.
    column: usize,
    text: String,
    /// A scenario failed (rather than a known gap went stale).
    failure: bool,
}

/// What is wrong with the run, column by column. With `writing`, the gaps
/// file was just written from this run, so only the direct column can be wrong.
fn judge(scenarios: &[Scenario], runs: &[Run], gaps: &Gaps, writing: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    let direct = &runs[0];
    let scored: Vec<&Scenario> = scenarios.iter().filter(|s| s.unscored.is_none()).collect();
    for scenario in &scored {
        let outcome = direct.outcomes.get(&scenario.name).unwrap_or(&Outcome::Missing);
        if !outcome.passed() {
            let text = format!(
                "  {} fails directly, against the fixture (which must pass every scored scenario):\n{}",
                scenario.name,
                outcome.details()
            );
            problems.push(Problem { column: 0, text, failure: true });
        }
    }
    if writing {
        return problems;
    }
    for (index, run) in runs.iter().enumerate().skip(1) {
        let key = run.column.key();
        let listed = gaps.get(&key);
        for scenario in &scored {
            let passes_directly = direct.outcomes.get(&scenario.name).is_some_and(Outcome::passed);
            let outcome = run.outcomes.get(&scenario.name).unwrap_or(&Outcome::Missing);
            let gap = listed.and_then(|g| g.get(&scenario.name));
            match (passes_directly, outcome.passed(), gap) {
                (true, false, None) => problems.push(Problem {
                    column: index,
                    text: format!("  {} passes directly, fails through {key}:\n{}", scenario.name, outcome.details()),
                    failure: true,
                }),
                (_, true, Some(reason)) => problems.push(Problem {
                    column: index,
                    text: format!("  {} passes through {key} now; drop its known gap ({reason})\n", scenario.name),
                    failure: false,
                }),
                _ => {}
            }
        }
    }
    problems
}

/// Entries of the known-gaps file that name no gateway column or no scored
/// scenario of the set: a typo there would otherwise excuse nothing, silently.
fn misplaced_gaps(revision: &str, scenarios: &[Scenario], runs: &[Run], gaps: &Gaps) -> Vec<String> {
    let columns: Vec<String> = runs[1..].iter().map(|r| r.column.key()).collect();
    let scored = |name: &str| scenarios.iter().any(|s| s.name == name && s.unscored.is_none());
    let mut problems = Vec::new();
    for (key, entries) in gaps {
        if !columns.contains(key) {
            problems.push(format!("  a column {key:?}, not one of {columns:?}\n"));
            continue;
        }
        for name in entries.keys().filter(|n| !scored(n)) {
            problems.push(format!("  {key}: {name}, not a scored scenario of {revision}\n"));
        }
    }
    problems
}
