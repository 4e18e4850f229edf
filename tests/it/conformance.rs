//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`,
//! `server` mode, every scenario including pending ones) in three columns:
//! directly against the fixture server over Streamable HTTP, and through the
//! gateway's front door with the same fixture behind it over stdio and over
//! HTTP (`prefix: false`, so the suite sees the fixture's own names).
//!
//! Each run has a baseline of expected failures (`tests/conformance/`): the
//! suite itself fails a run on a regression or on a stale entry. On top, every
//! scenario that passes directly must pass through the gateway. The table is
//! printed and written to `target/conformance.md`; `CONFORMANCE.md` holds the
//! one published.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The fixture server over HTTP on an ephemeral port; killed when dropped.
struct HttpFixture {
    child: Child,
    url: String,
}

impl HttpFixture {
    fn start(dir: &Path) -> Self {
        let port_file = dir.join("fixture.port");
        let log = std::fs::File::create(dir.join("fixture.stderr")).unwrap();
        let child = Command::new(deps().python())
            .arg(fixture_script())
            .args(["--http", "0", "--port-file"])
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut port = String::new();
        assert!(
            wait_until(TIMEOUT, || {
                port = std::fs::read_to_string(&port_file).unwrap_or_default();
                port.ends_with('\n')
            }),
            "the fixture did not start: {}",
            std::fs::read_to_string(dir.join("fixture.stderr")).unwrap_or_default()
        );
        HttpFixture { child, url: format!("http://127.0.0.1:{}/mcp", port.trim()) }
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture_script() -> String {
    format!("{ROOT}/tests/fixtures/conformance_server.py")
}

fn suite(args: &[&str]) -> Command {
    let d = deps();
    let mut command = Command::new(d.node());
    command.arg(d.get("MCP_TEST_CONFORMANCE_JS")).args(args).stdin(Stdio::null());
    command
}

/// The server scenarios this version of the suite has.
fn scenarios() -> Vec<String> {
    let out = suite(&["list", "--server"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Runs every scenario against `url` with `baseline`; returns whether each
/// scenario passed (no check failed or warned, as the suite's baseline counts
/// warnings) and the suite's output, for a failure message.
fn run_suite(url: &str, baseline: &str, out: &Path, names: &[String]) -> (BTreeMap<String, bool>, bool, String) {
    let baseline = format!("{ROOT}/tests/conformance/{baseline}");
    let output = suite(&["server", "--url", url, "--suite", "all", "--expected-failures", &baseline, "-o"])
        .arg(out)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let mut results = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let dir = entry.unwrap().path();
        let dir_name = dir.file_name().unwrap().to_string_lossy().to_string();
        // `server-<scenario>-<timestamp>`: the longest scenario name that fits.
        let Some(name) = names.iter().filter(|n| dir_name.starts_with(&format!("server-{n}-"))).max_by_key(|n| n.len())
        else {
            continue;
        };
        let checks: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("checks.json")).unwrap()).unwrap();
        let passed = checks.iter().all(|c| !matches!(c["status"].as_str(), Some("FAILURE" | "WARNING")));
        results.insert(name.clone(), passed);
    }
    (results, output.status.success(), text)
}

/// A gateway whose front door trusts loopback (the suite sends no
/// credentials) with the fixture as its one server, named by `server`.
fn gateway(server: &str) -> (TestGateway, String) {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  auth: {{ localhost: true }}\nservers:\n  conformance:\n{server}    prefix: false\n"
    ));
    gw.start();
    let url = status(&gw)["http"].as_str().expect("the front door is listening").to_string();
    (gw, url)
}

#[test]
fn the_official_conformance_suite_passes_through_the_gateway_wherever_it_passes_directly() {
    let names = scenarios();
    assert!(names.len() >= 30, "the suite lists its scenarios: {names:?}");
    let scratch = tempfile::tempdir().unwrap();
    let out = |column: &str| -> PathBuf {
        let dir = scratch.path().join(column);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };

    let fixture = HttpFixture::start(scratch.path());
    let (direct, direct_ok, direct_log) = run_suite(&fixture.url, "baseline-direct.yml", &out("direct"), &names);

    // The suite's scenarios are of the handshake era (server→client requests,
    // resources/subscribe), and so are the fixture's tools: a dual-era SDK
    // server, it would otherwise be spoken to in the modern era, where those
    // do not exist (tests/it/modern.rs covers that era with a server written for it).
    let stdio_server =
        format!("    command: {}\n    args: [{:?}]\n    protocol: handshake\n", deps().python(), fixture_script());
    let (stdio_gw, stdio_url) = gateway(&stdio_server);
    let (via_stdio, stdio_ok, stdio_log) = run_suite(&stdio_url, "baseline-gateway.yml", &out("stdio"), &names);

    let (http_gw, http_url) = gateway(&format!("    url: {:?}\n    protocol: handshake\n", fixture.url));
    let (via_http, http_ok, http_log) = run_suite(&http_url, "baseline-gateway.yml", &out("http"), &names);

    let mark = |results: &BTreeMap<String, bool>, name: &str| match results.get(name) {
        Some(true) => "pass",
        Some(false) => "FAIL",
        None => "not run",
    };
    let mut table = String::from(
        "| scenario | direct (fixture over HTTP) | gateway, fixture over stdio | gateway, fixture over HTTP |\n|---|---|---|---|\n",
    );
    for name in &names {
        table.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            mark(&direct, name),
            mark(&via_stdio, name),
            mark(&via_http, name)
        ));
    }
    println!("{table}");
    let target = Path::new(ROOT).join("target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("conformance.md"), &table);

    assert_eq!(direct.len(), names.len(), "every scenario ran directly:\n{direct_log}");
    assert!(direct_ok, "the direct run broke its baseline:\n{direct_log}");
    assert!(stdio_ok, "through the gateway (stdio) broke its baseline:\n{stdio_log}\n{}", stdio_gw.daemon_log());
    assert!(http_ok, "through the gateway (HTTP) broke its baseline:\n{http_log}\n{}", http_gw.daemon_log());
    for (name, passed) in &direct {
        if *passed {
            assert_eq!(via_stdio.get(name), Some(&true), "{name} passes directly, not through stdio\n{table}");
            assert_eq!(via_http.get(name), Some(&true), "{name} passes directly, not through HTTP\n{table}");
        }
    }
}
