//! The official conformance suite as both of its legs use it (`conformance`,
//! the gateway as a server; `conformance_client`, the gateway as the client of
//! a remote server): the pinned package's frozen requirement sets, what one
//! scenario's `checks.json` came to, and the Markdown matrix each leg
//! publishes under `target/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::deps;

/// A requirement set as the suite ships it (`requirements/<revision>.yaml`).
#[derive(Debug, Deserialize)]
struct Requirements {
    #[serde(default)]
    server: Vec<String>,
    #[serde(default)]
    client: Vec<String>,
    #[serde(default)]
    not_scored: Vec<NotScored>,
}

#[derive(Debug, Deserialize)]
struct NotScored {
    scenario: String,
    leg: String,
    reason: String,
}

/// A scenario of one leg of a set: `unscored` holds the set's reason for not
/// counting it.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub unscored: Option<String>,
}

/// The scenarios `revision`'s set lists for `leg` (`server` or `client`): the
/// scored ones in the set's order, then the ones it runs without scoring.
pub fn requirements(revision: &str, leg: &str) -> Vec<Scenario> {
    let suite = Path::new(deps().get("MCP_TEST_CONFORMANCE_JS"));
    // The entry point is <package>/dist/index.js; the sets are <package>/requirements/.
    let file = suite
        .parent()
        .and_then(Path::parent)
        .map(|package| package.join("requirements").join(format!("{revision}.yaml")))
        .unwrap_or_else(|| panic!("no package directory above {}", suite.display()));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let set: Requirements = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let scored = match leg {
        "server" => set.server,
        "client" => set.client,
        other => panic!("no leg {other:?} in a requirement set"),
    };
    let mut scenarios: Vec<Scenario> = scored.into_iter().map(|name| Scenario { name, unscored: None }).collect();
    scenarios.extend(
        set.not_scored
            .into_iter()
            .filter(|n| n.leg == leg)
            .map(|n| Scenario { name: n.scenario, unscored: Some(n.reason) }),
    );
    scenarios
}

/// One check that failed or warned.
#[derive(Debug, Clone)]
pub struct Finding {
    pub id: String,
    pub status: String,
    pub message: String,
}

impl Finding {
    /// One line: the whole message for a failure message, `limit` characters
    /// of it for a known-gaps file.
    pub fn summary(&self, limit: Option<usize>) -> String {
        let message: String = self.message.split_whitespace().collect::<Vec<_>>().join(" ");
        let message = match limit.and_then(|l| message.char_indices().nth(l)) {
            Some((cut, _)) => format!("{}…", &message[..cut]),
            None => message,
        };
        format!("{} ({}): {message}", self.id, self.status)
    }
}

/// What a scenario came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No check failed or warned; `ran` is how many were not skipped (a
    /// scenario the suite has stubbed out skips all of them).
    Pass { ran: usize },
    /// These checks failed or warned.
    Fail(Vec<Finding>),
    /// The suite left no `checks.json` for it (it crashed or was never run).
    Missing,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass { .. })
    }

    /// Why it did not pass, in one line (the first failing check).
    pub fn reason(&self) -> String {
        match self {
            Outcome::Pass { .. } => "passes".to_string(),
            Outcome::Fail(findings) => findings.first().map(|f| f.summary(Some(120))).unwrap_or_default(),
            Outcome::Missing => "no result: the suite wrote no checks.json (its suite.log may say why)".to_string(),
        }
    }

    /// Every failing check, one per line, for a failure message.
    pub fn details(&self) -> String {
        match self {
            Outcome::Fail(findings) => findings.iter().map(|f| format!("      {}\n", f.summary(None))).collect(),
            other => format!("      {}\n", other.reason()),
        }
    }

    /// The matrix cell; `gap` says whether a known-gaps file lists it.
    pub fn cell(&self, gap: bool) -> &'static str {
        match self {
            Outcome::Pass { ran: 0 } => "pass (all skipped)",
            Outcome::Pass { .. } => "pass",
            Outcome::Fail(_) if gap => "FAIL (known gap)",
            Outcome::Fail(_) => "FAIL",
            Outcome::Missing => "no result",
        }
    }
}

/// What one scenario's `checks.json` says: a pass when no check failed or
/// warned; `None` when there is no such file.
pub fn read_checks(file: &Path) -> Option<Outcome> {
    let text = std::fs::read_to_string(file).ok()?;
    let checks: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let findings: Vec<Finding> = checks
        .iter()
        .filter(|c| matches!(c["status"].as_str(), Some("FAILURE" | "WARNING")))
        .map(|c| Finding {
            id: c["id"].as_str().unwrap_or("?").to_string(),
            status: c["status"].as_str().unwrap_or("?").to_string(),
            message: c["errorMessage"].as_str().or(c["description"].as_str()).unwrap_or_default().to_string(),
        })
        .collect();
    let ran = checks.iter().filter(|c| c["status"] != "SKIPPED").count();
    Some(if findings.is_empty() { Outcome::Pass { ran } } else { Outcome::Fail(findings) })
}

/// Whether this run rewrites the known-gaps files instead of failing on gaps
/// (`MCP_GATEWAY_CONFORMANCE_GAPS=write`).
pub fn writing_gaps() -> bool {
    std::env::var("MCP_GATEWAY_CONFORMANCE_GAPS").is_ok_and(|v| v == "write")
}

/// Writes one revision's section to `<sections>/<revision>.md` and rebuilds
/// `combined` from every section there, under a lock: the revisions run as
/// separate processes and may finish together.
pub fn publish(sections: &Path, combined: &Path, revision: &str, section: &str) {
    let _ = std::fs::create_dir_all(sections);
    let _ = std::fs::write(sections.join(format!("{revision}.md")), section);
    let Ok(lock) = std::fs::File::create(sections.join(".lock")) else { return };
    let Ok(_held) = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive) else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(sections)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let all: Vec<String> = files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect();
    let temporary = combined.with_extension("md.tmp");
    if std::fs::File::create(&temporary).and_then(|mut f| f.write_all(all.join("\n").as_bytes())).is_ok() {
        let _ = std::fs::rename(&temporary, combined);
    }
}
