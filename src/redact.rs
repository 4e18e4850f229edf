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
