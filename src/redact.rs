//! Showing URLs without the secrets they carry.
//!
//! A remote server's `url:` often holds a credential: `user:password@` in its
//! authority, or an API key in its query (`?token=…`, `?api_key=…`). Every
//! place the gateway prints a backend URL (errors sent to clients, `status`,
//! the daemon log, `logs`, the CLI) prints it through [`RedactedUrl`], which
//! keeps what helps to find a problem (scheme, host, port, path, and the names
//! of the query parameters) and replaces every credential with [`MASK`].
//!
//! `reqwest`'s own errors name the URL of the request in their `Display`, so
//! the HTTP transport strips it from them ([`reqwest::Error::without_url`])
//! and describes them with [`http_error`].

use std::fmt;

/// What stands in for a value that is not shown.
pub const MASK: &str = "***";

/// A URL that displays without its userinfo, query values or fragment.
///
/// ```
/// use mcp_gateway::redact::RedactedUrl;
/// let shown = RedactedUrl("https://me:hunter2@example.com:8443/mcp?token=abc&v=1#x").to_string();
/// assert_eq!(shown, "https://***@example.com:8443/mcp?token=***&v=***#***");
/// ```
///
/// Text that does not parse as a URL is not shown at all: nothing says which
/// part of it would be the secret.
#[derive(Debug, Clone, Copy)]
pub struct RedactedUrl<'a>(pub &'a str);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match redact(self.0) {
            Some(url) => f.write_str(url.as_str()),
            None => f.write_str("<a URL that does not parse, not shown>"),
        }
    }
}

/// [`RedactedUrl`] as a `String`.
pub fn redacted_url(url: &str) -> String {
    RedactedUrl(url).to_string()
}

fn redact(text: &str) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(text).ok()?;
    if !url.username().is_empty() || url.password().is_some() {
        // Both fail only for URLs that cannot have userinfo (no host), which
        // then have none to hide.
        let _ = url.set_password(None);
        let _ = url.set_username(MASK);
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() => format!("{name}={MASK}"),
                // A bare name (`?verbose`), or `name=` with no value: nothing secret.
                _ => pair.to_string(),
            })
            .collect();
        url.set_query(Some(&masked.join("&")));
    }
    if url.fragment().is_some_and(|f| !f.is_empty()) {
        url.set_fragment(Some(MASK));
    }
    Some(url)
}

/// A part of a URL that may carry a credential: what [`RedactedUrl`] masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlPart {
    /// The user name of the authority (`https://TOKEN@host`, `postgresql://USER:pw@host`).
    Username,
    /// The password of the authority (`postgresql://user:PASSWORD@host`).
    Password,
    /// The value of the query parameter of this name (`?api_key=VALUE`).
    Query(String),
}

/// Where in a URL's text each credential-carrying part is, as written
/// (percent-encoding kept), so that a caller can replace exactly that text:
/// the authority's user name and password, and every non-empty query value.
/// `None` when the text is not a URL with a host (the same parse as
/// [`RedactedUrl`]'s decides; the positions are then read off the text itself,
/// as the parsed URL's serialization may be normalized).
pub fn credential_parts(text: &str) -> Option<Vec<(UrlPart, std::ops::Range<usize>)>> {
    let url = reqwest::Url::parse(text).ok()?;
    if !url.has_host() {
        return None;
    }
    let authority_start = text.find("://")? + 3;
    let authority_end = text[authority_start..].find(['/', '?', '#']).map_or(text.len(), |i| authority_start + i);
    let mut parts = Vec::new();
    if let Some(at) = text[authority_start..authority_end].rfind('@') {
        let userinfo = authority_start..authority_start + at;
        match text[userinfo.clone()].find(':') {
            Some(colon) => {
                let colon = userinfo.start + colon;
                parts.push((UrlPart::Username, userinfo.start..colon));
                parts.push((UrlPart::Password, colon + 1..userinfo.end));
            }
            None => parts.push((UrlPart::Username, userinfo)),
        }
    }
    let query_end = text[authority_end..].find('#').map_or(text.len(), |i| authority_end + i);
    if let Some(question) = text[authority_end..query_end].find('?') {
        let mut start = authority_end + question + 1;
        for pair in text[start..query_end].split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                let value_start = start + name.len() + 1;
                parts.push((UrlPart::Query(name.to_string()), value_start..value_start + value.len()));
            }
            start += pair.len() + 1;
        }
    }
    parts.retain(|(_, range)| !range.is_empty());
    Some(parts)
}

/// A `reqwest` error as text, with its causes (`error sending request: client
/// error (Connect): tcp connect error: Connection refused`, as the top-level
/// message alone rarely says what went wrong), and with the URL it names, if it
/// still names one, redacted.
pub fn http_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        // reqwest writes the URL as `Url::as_str` gives it.
        text = text.replace(url.as_str(), &redacted_url(url.as_str()));
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper repeats its cause's message in its own; say each once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_query_values_are_masked_and_the_rest_is_kept() {
        assert_eq!(
            redacted_url("http://user:SECRET1@127.0.0.1:8080/mcp?token=SECRET2"),
            "http://***@127.0.0.1:8080/mcp?token=***"
        );
        assert_eq!(redacted_url("https://SECRET@host/p"), "https://***@host/p");
        assert_eq!(redacted_url("https://:SECRET@host/p"), "https://***@host/p");
        assert_eq!(redacted_url("https://host/a/b?x=1&flag&y=&z=S%20T"), "https://host/a/b?x=***&flag&y=&z=***");
        assert_eq!(redacted_url("https://host/mcp#access_token=SECRET"), "https://host/mcp#***");
        assert_eq!(redacted_url("https://mcp.context7.com/mcp"), "https://mcp.context7.com/mcp");
    }

    #[test]
    fn credential_parts_are_located_in_the_text_as_written() {
        let text = "postgresql://me:p%40ss@db.example:5432/app?sslmode=require&password=x#frag";
        let parts = credential_parts(text).unwrap();
        let shown: Vec<(UrlPart, &str)> = parts.iter().map(|(p, r)| (p.clone(), &text[r.clone()])).collect();
        assert_eq!(
            shown,
            [
                (UrlPart::Username, "me"),
                (UrlPart::Password, "p%40ss"),
                (UrlPart::Query("sslmode".into()), "require"),
                (UrlPart::Query("password".into()), "x"),
            ]
        );
        let text = "https://ghp_TOKEN@github.com/org/repo.git";
        let parts = credential_parts(text).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!((&parts[0].0, &text[parts[0].1.clone()]), (&UrlPart::Username, "ghp_TOKEN"));
        assert_eq!(credential_parts("https://host/p?flag&empty=").unwrap(), []);
        assert!(credential_parts("not a url").is_none());
        assert!(credential_parts("mailto:me@example.com").is_none());
    }

    #[test]
    fn text_that_is_not_a_url_is_not_shown() {
        let shown = redacted_url("not a url SECRET");
        assert!(!shown.contains("SECRET"), "{shown}");
        let shown = redacted_url("http://us er:SECRET@[bad/");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn an_http_error_says_why_without_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let url = format!("http://user:SECRET1@127.0.0.1:{}/mcp?token=SECRET2", port.expect("a free port"));
        let error = reqwest::blocking::get(&url).expect_err("nothing listens there");
        let text = http_error(&error);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("token=***"), "the redacted URL stays: {text}");
        assert!(text.to_lowercase().contains("connection refused"), "the cause is said: {text}");
        let stripped = http_error(&error.without_url());
        assert!(!stripped.contains("127.0.0.1") && stripped.to_lowercase().contains("refused"), "{stripped}");
    }
}
