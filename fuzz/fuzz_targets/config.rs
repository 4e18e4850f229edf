//! `Config::parse` on arbitrary text as YAML (`.yaml`/`.yml`) or TOML (the
//! first byte picks the file name). It never panics; a refusal is an `Err` whose
//! message names the file (and, for syntax errors, a line and column inside the
//! text); an accepted config satisfies the rules `validate` promises. The same
//! text also exercises the pieces the loaded config is used with: `${VAR}`
//! expansion and the tool filters' `*` globs (checked against a reference matcher).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mcp_gateway::config::{Config, ConfigError, ToolFilter, expand};

const NAMES: [&str; 4] = ["config.yaml", "/home/u/.config/mcp-gateway/config.yml", "config.toml", "x/c.toml"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let name = NAMES[usize::from(selector & 3)];
    let path = Path::new(name);

    match Config::parse(path, &text) {
        Ok(config) => check_valid(&config),
        Err(err) => {
            let message = err.to_string();
            assert!(message.starts_with(name), "the error does not name the file: {message}");
            assert!(message.len() > name.len() + 2, "an error with no message: {message}");
            match err {
                ConfigError::Syntax { line, column, message, .. } => {
                    assert!(!message.is_empty());
                    let lines = yaml_lines(&text);
                    assert!((1..=lines + 1).contains(&line), "line {line} of a {lines}-line text");
                    assert!(column >= 1, "column {column}");
                }
                ConfigError::Invalid { message, .. } => assert!(!message.is_empty()),
                ConfigError::Format { .. } | ConfigError::Read { .. } => panic!("{name} has a known format"),
            }
        }
    }

    if selector & 4 != 0 {
        check_expand(&text);
    }
    if selector & 8 != 0 {
        check_glob(&text);
    }
});

/// How many lines a YAML reader sees: it also breaks lines at a lone `\r` and
/// at NEL, LS and PS (libyaml's rule), where an editor may show one line.
fn yaml_lines(text: &str) -> usize {
    let mut chars = text.chars().peekable();
    let mut lines = 1;
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => lines += 1,
            _ => {}
        }
    }
    lines
}

fn check_valid(config: &Config) {
    assert!(config.max_message_bytes >= 1024);
    assert!(config.page_size >= 1);
    for (name, server) in &config.servers {
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        assert!(server.command.as_deref().is_none_or(|c| !c.trim().is_empty()));
        let (fingerprint, revision) = (server.fingerprint(), server.revision());
        assert_eq!(fingerprint.len(), 24, "{fingerprint}");
        assert_eq!(revision.len(), 24, "{revision}");
        // Serialising (the catalog, `config show`) works for anything accepted.
        serde_json::to_string(server).expect("an accepted server serialises");
    }
    for mapping in config.workspaces.values() {
        if let Some(profile) = &mapping.profile {
            assert!(config.profiles.contains_key(profile));
        }
    }
    for profile in config.profiles.values() {
        for server in profile.servers.iter().flatten() {
            assert!(config.servers.contains_key(server));
        }
    }
}

fn check_expand(text: &str) {
    let lookup = |name: &str| match name {
        "A" => Some("value-of-a".to_string()),
        "E" => Some(String::new()),
        _ => None,
    };
    match expand(text, &lookup) {
        Ok(out) => {
            if !text.contains('$') {
                assert_eq!(out, text);
            }
        }
        Err(missing) => assert!(text.contains(&format!("${{{}", missing.0)), "{missing:?} is not in the text"),
    }
}

/// `*` matches any run of characters, everything else itself (the tool filters' rule).
fn reference_glob(pattern: &[char], name: &[char]) -> bool {
    // matches[j]: pattern[..i] matches name[..j].
    let mut matches = vec![false; name.len() + 1];
    matches[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            next[j] = if p == '*' {
                matches[j] || (j > 0 && next[j - 1])
            } else {
                j > 0 && matches[j - 1] && name[j - 1] == p
            };
        }
        matches = next;
    }
    matches[name.len()]
}

fn check_glob(text: &str) {
    let mut parts = text.splitn(2, '\n');
    let pattern = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    if pattern.len() > 64 || name.len() > 256 {
        return;
    }
    let want = reference_glob(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>());
    let allow = ToolFilter { allow: Some(vec![pattern.to_string()]), deny: vec![] };
    assert_eq!(allow.permits(name), want, "allow {pattern:?} for {name:?}");
    let deny = ToolFilter { allow: None, deny: vec![pattern.to_string()] };
    assert_eq!(deny.permits(name), !want, "deny {pattern:?} for {name:?}");
}
