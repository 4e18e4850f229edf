//! Telling secrets from settings, so that tokens found in client configs end
//! up in the gateway's `.env` (0600) and the config only says `${VAR}`.
//!
//! The rules err on the side of moving: a value moved that was not secret
//! costs one line in `.env`; a token copied into a config file (which people
//! paste into issues and commit to dotfile repos) is a leak.

/// Words in a variable, header or flag name that mark its value as secret.
const SECRET_WORDS: [&str; 14] = [
    "TOKEN",
    "TOKENS",
    "KEY",
    "APIKEY",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWD",
    "PAT",
    "AUTH",
    "AUTHORIZATION",
    "CREDENTIAL",
    "CREDENTIALS",
    "COOKIE",
];

/// Substrings that mark a name even inside a longer word (`ACCESSTOKEN`).
const SECRET_PARTS: [&str; 5] = ["TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "APIKEY"];

/// Prefixes of well-known token formats.
const TOKEN_PREFIXES: [&str; 20] = [
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AKIA",
    "AIza",
    "npm_",
    "hf_",
    "lin_api_",
];

/// Whether a variable, header or flag name says its value is a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // Split camelCase too: `apiKey` is API + KEY.
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut word));
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_ascii_lowercase();
        word.push(c.to_ascii_uppercase());
    }
    words.push(word);
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str())) || SECRET_PARTS.iter().any(|p| upper.contains(p))
}

/// Whether a value looks like a token by itself (known prefixes, JWTs, long
/// random-looking strings), whatever it is called.
pub fn looks_like_token(value: &str) -> bool {
    let value = strip_scheme(value).1;
    if value.len() < 8 || value.contains(char::is_whitespace) {
        return false;
    }
    if TOKEN_PREFIXES.iter().any(|p| value.starts_with(p) && value.len() >= p.len() + 8) {
        return true;
    }
    if value.starts_with("eyJ") && value.matches('.').count() == 2 {
        return true;
    }
    high_entropy(value)
}

/// A long string of token characters, with letters and digits, and close to
/// random (Shannon entropy, in bits a character).
fn high_entropy(value: &str) -> bool {
    if value.len() < 20
        || !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_+=.".contains(c))
        || !value.chars().any(|c| c.is_ascii_digit())
        || !value.chars().any(|c| c.is_ascii_alphabetic())
    {
        return false;
    }
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = value.len() as f64;
    let entropy: f64 = counts.values().map(|&k| k as f64 / n).map(|p| -p * p.log2()).sum();
    entropy >= 3.5
}

/// `("Bearer ", "xyz")` for `Bearer xyz`: the scheme stays in the config.
pub fn strip_scheme(value: &str) -> (&str, &str) {
    for scheme in ["Bearer ", "bearer ", "Basic ", "basic ", "Token ", "token "] {
        if let Some(rest) = value.strip_prefix(scheme) {
            return (scheme, rest.trim_start());
        }
    }
    ("", value)
}

/// Whether the value under `name` should be moved out of the config.
pub fn should_move(name: &str, value: &str) -> bool {
    if value.is_empty() || value.contains("${") {
        return false;
    }
    if looks_like_token(value) {
        return true;
    }
    is_secret_name(name) && !is_plain_setting(value)
}

/// A credential inside a URL, to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUrl {
    /// Where its value is in the text.
    pub range: std::ops::Range<usize>,
    /// What its variable is named after: `PASSWORD`, `TOKEN` or the query parameter's name.
    pub name: String,
    /// Where it was, for the import's report: `password`, `user` or `?name`.
    pub place: String,
}

/// The credentials written inside a URL or connection string that should
/// move, each with the name its variable is made from: the password
/// (`postgresql://user:PASSWORD@host/db`), a user name standing alone where
/// it is the token (`https://TOKEN@host`, or one shaped like a token; a lone
/// `postgresql://user@host` names a user), and query values under a secret
/// name or shaped like a token (`?api_key=…`). Empty for text that is not a
/// URL. In order of their place in `text`.
pub fn in_url(text: &str) -> Vec<InUrl> {
    use crate::redact::UrlPart;
    let Some(parts) = crate::redact::credential_parts(text) else { return Vec::new() };
    let has_password = parts.iter().any(|(part, _)| *part == UrlPart::Password);
    let scheme = text.split_once("://").map_or("", |(scheme, _)| scheme).to_ascii_lowercase();
    let token_scheme = ["http", "https", "ws", "wss"].contains(&scheme.as_str());
    parts
        .into_iter()
        .filter(|(_, range)| !text[range.clone()].contains("${"))
        .filter_map(|(part, range)| {
            let value = &text[range.clone()];
            let (name, place) = match part {
                UrlPart::Password => ("PASSWORD".to_string(), "password".to_string()),
                UrlPart::Username if !has_password && (token_scheme || looks_like_token(value)) => {
                    ("TOKEN".to_string(), "user".to_string())
                }
                UrlPart::Username => return None,
                UrlPart::Query(name) if should_move(&name, value) => (name.clone(), format!("?{name}")),
                UrlPart::Query(_) => return None,
            };
            Some(InUrl { range, name, place })
        })
        .collect()
}

/// Values that are settings even under a secret-sounding name (`USE_AUTH=true`,
/// `GOOGLE_APPLICATION_CREDENTIALS=/path/key.json`, `AUTH_URL=https://…`).
fn is_plain_setting(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["true", "false", "yes", "no", "on", "off", "none", "null"].contains(&lower.as_str())
        || (value.len() < 8 && value.chars().all(|c| c.is_ascii_digit()))
        || value.starts_with('/')
        || value.starts_with("~/")
        || value.starts_with("./")
        || lower.starts_with("http://")
        || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for secret in ["GITHUB_PERSONAL_ACCESS_TOKEN", "API_KEY", "apiKey", "x-api-key", "Authorization", "DB_PASSWORD"]
        {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in ["PATH", "HOME", "MEMORY_FILE_PATH", "AUTHOR", "DEBUG", "MONKEY_MODE"] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn credentials_inside_urls() {
        let found = |text: &str| -> Vec<(String, String)> {
            in_url(text).into_iter().map(|found| (text[found.range].to_string(), found.name)).collect()
        };
        let pair = |value: &str, name: &str| (value.to_string(), name.to_string());
        assert_eq!(found("postgresql://app:hunter2@db/app"), [pair("hunter2", "PASSWORD")]);
        assert_eq!(found("postgresql://app@db/app"), [], "a lone user name in a connection string is a user");
        assert_eq!(
            found("https://ghp_abcdefghijklmnop0123@github.com/o/r"),
            [pair("ghp_abcdefghijklmnop0123", "TOKEN")]
        );
        assert_eq!(found("https://x-token@host/mcp"), [pair("x-token", "TOKEN")], "http userinfo alone is a token");
        assert_eq!(
            found("https://h/mcp?api_key=abc123&region=eu&sig=aB3dE5gH7jK9mN1pQ3sT5vW7yZ9"),
            [pair("abc123", "api_key"), pair("aB3dE5gH7jK9mN1pQ3sT5vW7yZ9", "sig")]
        );
        assert_eq!(found("postgresql://app:${DB_PASSWORD}@db/app"), [], "already a reference");
        assert_eq!(found("--port=3000"), []);
        assert_eq!(found("https://example.com/docs"), []);
    }

    #[test]
    fn values() {
        assert!(looks_like_token("ghp_abcdefghijklmnopqrstuvwxyz0123456789"));
        assert!(looks_like_token("Bearer sk-proj-abcdefgh12345678"));
        assert!(looks_like_token("aB3dE5gH7jK9mN1pQ3sT5vW7yZ9"));
        for plain in ["@modelcontextprotocol/server-everything", "stdio", "/home/me/.mcp-memory.json", "--port=3000"] {
            assert!(!looks_like_token(plain), "{plain}");
        }
        assert!(should_move("SLACK_BOT_TOKEN", "xoxb-1"));
        assert!(should_move("DB_PASSWORD", "hunter2"));
        assert!(!should_move("USE_AUTH", "true"));
        assert!(!should_move("GITHUB_TOKEN", "${GITHUB_TOKEN}"));
        assert!(!should_move("LOG_LEVEL", "debug"));
    }
}
