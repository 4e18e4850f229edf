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
