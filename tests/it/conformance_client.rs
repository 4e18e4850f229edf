//! The official MCP conformance suite's client leg (npm
//! `@modelcontextprotocol/conformance`, `client` mode) with the gateway as the
//! client: each scenario's mock server is a remote server (`url:`) of a
//! gateway, and a real client (the Python `mcp` SDK) drives the gateway through
//! the shim, so what the suite judges is what the gateway sent on its backend
//! leg. One test per protocol revision, each running the suite's frozen
//! requirement set (`--requirements <revision>`, every scenario of the leg at
//! once).
//!
//! The suite runs `tests/fixtures/conformance_client.py <server-url>` per
//! scenario; that script writes the gateway's config (the era of the revision
//! under test as `protocol:`, `prefix: false`), starts `mcp-gateway serve`,
//! connects the SDK's stdio client to `mcp-gateway-connect`, does what the
//! scenario asks, and stops the daemon. Every process it starts carries this
//! test's tag, and the test fails when one outlives the run.
//!
//! A scenario passes when none of its checks fails or warns. The test judges
//! every scored scenario of the set's client leg, `auth/*` included (the
//! script logs in with `mcp-gateway auth login` first, its browser a redirect
//! follower); `not_scored` ones are run and shown. It fails when a judged scenario
//! fails and `tests/conformance/known-gaps-client-<revision>.yml` (scenario →
//! the first check that failed) does not list it, when a listed gap passes,
//! and when an entry names no judged scenario. `MCP_GATEWAY_CONFORMANCE_GAPS=write`
//! rewrites that file from the run instead.
//!
//! The matrix goes to stdout and to `target/conformance-client.md`; each
//! scenario's result (the suite's `checks.json`, and as `stderr.txt` the
//! script's log with the daemon's) stays in
//! `target/conformance/client/<revision>/<scenario>/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::conformance::{Outcome, Scenario, publish, read_checks, requirements, writing_gaps};
use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How many lines of a scenario's log a failure message quotes.
const LOG_TAIL: usize = 30;

#[test]
fn the_2025_11_25_client_requirements_hold_with_the_gateway_as_the_client() {
    measure("2025-11-25");
}

#[test]
fn the_2026_07_28_client_requirements_hold_with_the_gateway_as_the_client() {
    measure("2026-07-28");
}

/// Scenarios this test judges: those the set scores.
fn judged(scenario: &Scenario) -> bool {
    scenario.unscored.is_none()
}

/// Runs `revision`'s client leg through the gateway with results in `out`;
/// returns what each scenario came to and the processes the run left behind.
fn run_leg(revision: &str, out: &Path, scenarios: &[Scenario]) -> (BTreeMap<String, Outcome>, Vec<Proc>) {
    let raw = out.join("raw");
    std::fs::create_dir_all(&raw).unwrap_or_else(|e| panic!("{}: {e}", raw.display()));
    let d = deps();
    let driver = format!("{ROOT}/tests/fixtures/conformance_client.py");
    // The suite runs the command through a shell, with the server's URL appended.
    let command = format!("'{}' '{driver}'", d.python());
    let tag = format!("conformance-client-{revision}-{}", std::process::id());
    let output = Command::new(d.node())
        .arg(d.get("MCP_TEST_CONFORMANCE_JS"))
        // Every scenario of the set starts at once, each with its own Python
        // client and daemon: on 2 busy cores a client may need longer than
        // the suite's default 30 s.
        .args(["client", "--command", &command, "--requirements", revision, "--timeout", "90000", "-o"])
        .arg(&raw)
        .env("MCP_GATEWAY_BIN", DAEMON)
        .env("MCP_GATEWAY_SHIM", SHIM)
        .env("MCP_GATEWAY_TEST_TAG", &tag)
        .env_remove("MCP_GATEWAY_CONFIG")
        .env_remove("MCP_GATEWAY_SOCKET")
        .env_remove("MCP_GATEWAY_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running the suite with {}: {e}", d.node()));
    let _ = std::fs::write(out.join("suite.log"), [output.stdout, output.stderr].concat());

    // Whatever a scenario left running (a daemon, a shim) is a failure; it
    // must not outlive the test either.
    let mut leftovers = Vec::new();
    if !wait_until(Duration::from_secs(5), || tagged_processes(&tag).is_empty()) {
        leftovers = tagged_processes(&tag);
        leftovers.iter().for_each(|p| signal(p.pid, nix::sys::signal::Signal::SIGKILL));
    }

    let mut outcomes = BTreeMap::new();
    for scenario in scenarios {
        let outcome = match settle_result(&raw, out, &scenario.name) {
            Some(dir) => read_checks(&dir.join("checks.json")).unwrap_or(Outcome::Missing),
            None => Outcome::Missing,
        };
        outcomes.insert(scenario.name.clone(), outcome);
    }
    (outcomes, leftovers)
}

/// Moves the suite's `<scenario>-<timestamp>/` result (under `raw`, `auth/`
/// scenarios one level down) to `<out>/<scenario>/`, and returns where it is.
fn settle_result(raw: &Path, out: &Path, name: &str) -> Option<PathBuf> {
    let (parent, base) = match name.rsplit_once('/') {
        Some((parent, base)) => (raw.join(parent), base),
        None => (raw.to_path_buf(), name),
    };
    let prefix = format!("{base}-");
    // The timestamp starts with a digit, so `iss-supported` is not taken for
    // `iss-supported-missing`.
    let found = std::fs::read_dir(&parent).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&prefix))
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })?;
    let target = out.join(name);
    if let Some(dir) = target.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&found, &target).ok()?;
    Some(target)
}

/// Scenario → reason: the client-leg gaps the gateway is known to have for
/// one revision.
type Gaps = BTreeMap<String, String>;

fn gaps_file(revision: &str) -> PathBuf {
    Path::new(ROOT).join("tests/conformance").join(format!("known-gaps-client-{revision}.yml"))
}

fn read_gaps(revision: &str) -> Gaps {
    let file = gaps_file(revision);
    let Ok(text) = std::fs::read_to_string(&file) else { return Gaps::new() };
    let gaps: Option<Gaps> = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    gaps.unwrap_or_default()
}

/// The known-gaps file for what this run measured: every judged scenario that
/// failed, with its first failing check.
fn write_gaps(revision: &str, scenarios: &[Scenario], outcomes: &BTreeMap<String, Outcome>) {
    let mut text = format!(
        "# Scenarios of the conformance suite's {revision} requirement set, client leg, that\n\
         # fail with the gateway as the client (scenario -> the first check that failed or\n\
         # warned). tests/it/conformance_client.rs fails on a failure not listed here and on\n\
         # an entry that passes now. Regenerate (after fixing the gateway) with\n\
         #   MCP_GATEWAY_CONFORMANCE_GAPS=write cargo nextest run -E 'test(/^conformance_client::/)'\n\
         # and review the diff: it should only lose lines.\n"
    );
    let failing: Vec<(&Scenario, &Outcome)> = scenarios
        .iter()
        .filter(|s| judged(s))
        .filter_map(|s| outcomes.get(&s.name).filter(|o| !o.passed()).map(|o| (s, o)))
        .collect();
    for (scenario, outcome) in &failing {
        let reason = serde_json::to_string(&outcome.reason()).unwrap_or_default();
        let _ = writeln!(text, "{}: {reason}", scenario.name);
    }
    if failing.is_empty() {
        text.push_str("{}\n");
    }
    let file = gaps_file(revision);
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// The revision's section of the matrix, in Markdown.
fn matrix(
    revision: &str,
    scenarios: &[Scenario],
    outcomes: &BTreeMap<String, Outcome>,
    gaps: &Gaps,
    seconds: f64,
) -> String {
    let mut md = format!(
        "### Requirement set {revision}, client leg\n\n| scenario | judged | the gateway as the client |\n|---|---|---|\n"
    );
    for scenario in scenarios {
        let judged_here = match &scenario.unscored {
            Some(reason) => format!("no (not scored: {reason})"),
            None => "yes".to_string(),
        };
        let cell = outcomes.get(&scenario.name).unwrap_or(&Outcome::Missing).cell(gaps.contains_key(&scenario.name));
        let _ = writeln!(md, "| {} | {judged_here} | {cell} |", scenario.name);
    }
    let judged_ones: Vec<&Scenario> = scenarios.iter().filter(|s| judged(s)).collect();
    let passing = judged_ones.iter().filter(|s| outcomes.get(&s.name).is_some_and(Outcome::passed)).count();
    let _ = write!(
        md,
        "| **judged passing** | {} | {passing}/{} |\n\nWall time {seconds:.1} s, every scenario of the set at once.\n",
        judged_ones.len(),
        judged_ones.len()
    );
    md
}

/// The last lines of what a scenario's client script logged (with the daemon's log).
fn log_tail(out: &Path, name: &str) -> String {
    let log = std::fs::read_to_string(out.join(name).join("stderr.txt")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

/// Runs `revision`'s client leg, publishes the matrix, then judges.
fn measure(revision: &str) {
    let started = Instant::now();
    let scenarios = requirements(revision, "client");
    assert!(
        scenarios.iter().filter(|s| judged(s)).count() >= 4,
        "the {revision} set lists its client scenarios: {scenarios:?}"
    );
    let target = Path::new(ROOT).join("target");
    let out = target.join("conformance").join("client").join(revision);
    let _ = std::fs::remove_dir_all(&out);
    let (outcomes, leftovers) = run_leg(revision, &out, &scenarios);
    let seconds = started.elapsed().as_secs_f64();

    let writing = writing_gaps();
    if writing {
        write_gaps(revision, &scenarios, &outcomes);
    }
    let gaps = read_gaps(revision);
    let section = matrix(revision, &scenarios, &outcomes, &gaps, seconds);
    println!("{section}");
    publish(&target.join("conformance").join("client"), &target.join("conformance-client.md"), revision, &section);

    let mut problems = Vec::new();
    for scenario in scenarios.iter().filter(|s| judged(s)) {
        let outcome = outcomes.get(&scenario.name).unwrap_or(&Outcome::Missing);
        match (outcome.passed(), gaps.get(&scenario.name), writing) {
            (false, None, false) => problems.push(format!(
                "  {} fails with the gateway as the client:\n{}  -- the last {LOG_TAIL} lines of its log ({}) --\n{}\n",
                scenario.name,
                outcome.details(),
                out.join(&scenario.name).join("stderr.txt").display(),
                log_tail(&out, &scenario.name)
            )),
            (true, Some(reason), false) => {
                problems.push(format!("  {} passes now; drop its known gap ({reason})\n", scenario.name))
            }
            _ => {}
        }
    }
    for name in gaps.keys().filter(|n| !scenarios.iter().any(|s| &s.name == *n && judged(s))) {
        problems.push(format!("  the known gap {name} is not a scenario this test judges for {revision}\n"));
    }
    for p in &leftovers {
        problems.push(format!("  a process outlived the run (killed now): {} {}\n", p.pid, p.cmdline));
    }
    if problems.is_empty() {
        return;
    }
    panic!(
        "conformance client leg {revision}: {} problem(s) (results in {})\n{}\nThe matrix is on stdout and in \
         target/conformance-client.md. A gap the gateway is meant to have goes into {}; \
         MCP_GATEWAY_CONFORMANCE_GAPS=write rewrites that file from a run (see CONFORMANCE.md).",
        problems.len(),
        out.display(),
        problems.concat(),
        gaps_file(revision).display()
    );
}
