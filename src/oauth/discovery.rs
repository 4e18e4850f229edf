//! Finding a server's authorization server: the 401's challenge, RFC 9728
//! protected resource metadata (PRM), and RFC 8414 / OpenID Connect
//! authorization server metadata, each tried in the order the MCP
//! authorization spec gives; with no PRM at all, the 2025-03-26 fallback
//! (the server's origin is the authorization server).

use serde::{Deserialize, Serialize};
use url::Url;

use super::OAuthError;

/// What a `WWW-Authenticate: Bearer …` challenge says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// Parses the `Bearer` challenge's auth-params (RFC 9110 §11.2: tokens or
    /// quoted strings, comma-separated). Other schemes' params are ignored.
    pub fn parse(header: &str) -> Challenge {
        let mut challenge = Challenge::default();
        let mut rest = header.trim();
        let mut in_bearer = false;
        while !rest.is_empty() {
            rest = rest.trim_start_matches([',', ' ', '\t']);
            // A scheme name (a token not followed by `=`) starts a new challenge.
            let token_end = rest.find(|c: char| c == '=' || c == ',' || c.is_whitespace()).unwrap_or(rest.len());
            let token = &rest[..token_end];
            let after = rest[token_end..].trim_start();
            if !after.starts_with('=') {
                in_bearer = token.eq_ignore_ascii_case("bearer");
                rest = after;
                if token.is_empty() {
                    break;
                }
                continue;
            }
            let after = after[1..].trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            if in_bearer {
                match token.to_ascii_lowercase().as_str() {
                    "resource_metadata" => challenge.resource_metadata = Some(value),
                    "scope" => challenge.scope = Some(value),
                    "error" => challenge.error = Some(value),
                    _ => {}
                }
            }
            rest = remaining;
        }
        challenge
    }
}

/// RFC 9728 protected resource metadata (the fields the gateway uses).
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization server metadata (the fields the gateway uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The grants the server offers, when it lists them (checked for
    /// `grant: client_credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
}

/// Where the PRM of `server` may be, in order: the path-aware well-known
/// (`/.well-known/oauth-protected-resource/<path>`), then the root one.
pub fn resource_metadata_urls(server: &Url) -> Vec<Url> {
    let mut urls = Vec::new();
    let path = server.path().trim_end_matches('/');
    if !path.is_empty() {
        urls.push(with_path(server, &format!("/.well-known/oauth-protected-resource{path}")));
    }
    urls.push(with_path(server, "/.well-known/oauth-protected-resource"));
    urls
}

/// Where the metadata of the authorization server `issuer` may be, in the
/// spec's order. With a path: RFC 8414 insertion, OIDC insertion, OIDC
/// appending; never the root, which belongs to another issuer. Without:
/// RFC 8414, then OIDC.
pub fn server_metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        return vec![
            with_path(issuer, "/.well-known/oauth-authorization-server"),
            with_path(issuer, "/.well-known/openid-configuration"),
        ];
    }
    vec![
        with_path(issuer, &format!("/.well-known/oauth-authorization-server{path}")),
        with_path(issuer, &format!("/.well-known/openid-configuration{path}")),
        with_path(issuer, &format!("{path}/.well-known/openid-configuration")),
    ]
}

/// `url`'s origin with `path`, no query or fragment.
fn with_path(url: &Url, path: &str) -> Url {
    let mut out = url.clone();
    out.set_path(path);
    out.set_query(None);
    out.set_fragment(None);
    out
}

/// Whether the PRM's `resource` may be used for `server` (the rule the
/// official SDKs apply): the same origin, and `server`'s path at or under it.
pub fn resource_matches(server: &Url, resource: &str) -> bool {
    let Ok(resource) = Url::parse(resource) else { return false };
    if resource.origin() != server.origin() {
        return false;
    }
    let want = resource.path().trim_end_matches('/');
    let have = server.path().trim_end_matches('/');
    have == want || have.starts_with(&format!("{want}/"))
}

/// Only `https`, or `http` to a loopback host: a token or code must not cross
/// the network in the clear.
pub fn check_transport(url: &Url, what: &str) -> Result<(), OAuthError> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        return Ok(());
    }
    Err(OAuthError::Discovery(format!(
        "{what} {} is neither https nor a loopback http URL",
        crate::redact::redacted_url(url.as_str())
    )))
}

/// The fixed endpoints of the 2025-03-26 fallback: the server's origin is the
/// authorization server, with `/authorize`, `/token` and `/register`.
pub fn fallback_metadata(server: &Url) -> ServerMetadata {
    let origin = with_path(server, "");
    let issuer = origin.as_str().trim_end_matches('/').to_string();
    ServerMetadata {
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        registration_endpoint: Some(format!("{issuer}/register")),
        issuer,
        scopes_supported: None,
        token_endpoint_auth_methods_supported: None,
        client_id_metadata_document_supported: false,
        authorization_response_iss_parameter_supported: false,
        revocation_endpoint: None,
        grant_types_supported: None,
        token_endpoint_auth_signing_alg_values_supported: None,
    }
}

/// What was discovered about one server: everything a login needs.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The PRM's `resource`, verbatim (sent as RFC 8707 `resource`); `None`
    /// on the 2025-03-26 fallback, which has no PRM.
    pub resource: Option<String>,
    pub metadata: ServerMetadata,
    /// The scope to ask for: the challenge's, else the PRM's
    /// `scopes_supported`, else none (omitted).
    pub scope: Option<String>,
}

/// The scope to request: the challenge's, else the PRM's `scopes_supported`
/// (space-joined), else none, so the parameter is omitted.
pub fn select_scope(challenge: Option<&str>, prm: Option<&[String]>) -> Option<String> {
    if let Some(scope) = challenge.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(scope.to_string());
    }
    prm.filter(|s| !s.is_empty()).map(|s| s.join(" "))
}

/// Runs discovery for `server` given its 401 challenge.
pub async fn discover(http: &reqwest::Client, server: &Url, challenge: &Challenge) -> Result<Discovered, OAuthError> {
    let prm = resource_metadata(http, server, challenge).await?;
    let Some(prm) = prm else {
        // 2025-03-26: no PRM; the server's origin is the authorization server.
        let origin = with_path(server, "");
        let metadata = match fetch_server_metadata(http, &origin, false).await? {
            Some(m) => m,
            None => fallback_metadata(server),
        };
        let scope = select_scope(challenge.scope.as_deref(), None);
        return Ok(Discovered { resource: None, metadata, scope });
    };
    if !resource_matches(server, &prm.resource) {
        return Err(OAuthError::Discovery(format!(
            "the protected resource metadata names the resource {}, which is not this server ({}): refusing to authorize for it",
            crate::redact::redacted_url(&prm.resource),
            crate::redact::redacted_url(server.as_str())
        )));
    }
    let Some(issuer) = prm.authorization_servers.first() else {
        return Err(OAuthError::Discovery("the protected resource metadata names no authorization server".into()));
    };
    let issuer_url = Url::parse(issuer)
        .map_err(|e| OAuthError::Discovery(format!("the authorization server {issuer:?} is not a URL: {e}")))?;
    check_transport(&issuer_url, "the authorization server")?;
    let metadata = fetch_server_metadata(http, &issuer_url, true).await?.ok_or_else(|| {
        OAuthError::Discovery(format!("the authorization server {issuer} publishes no RFC 8414 or OpenID metadata"))
    })?;
    if metadata.issuer != *issuer {
        return Err(OAuthError::Discovery(format!(
            "the authorization server metadata names the issuer {:?}, not {issuer:?} whose metadata was asked for (RFC 8414 §3.3)",
            metadata.issuer
        )));
    }
    let scope = select_scope(challenge.scope.as_deref(), prm.scopes_supported.as_deref());
    Ok(Discovered { resource: Some(prm.resource), metadata, scope })
}

/// The PRM: from the challenge's `resource_metadata` (same origin only), else
/// the well-known paths. `None` when the server publishes none.
async fn resource_metadata(
    http: &reqwest::Client,
    server: &Url,
    challenge: &Challenge,
) -> Result<Option<ResourceMetadata>, OAuthError> {
    let candidates = match &challenge.resource_metadata {
        Some(named) => {
            let url = server
                .join(named)
                .map_err(|e| OAuthError::Discovery(format!("the challenge's resource_metadata is not a URL: {e}")))?;
            if url.origin() != server.origin() {
                return Err(OAuthError::Discovery(format!(
                    "the challenge names protected resource metadata on another origin ({}); refusing it",
                    crate::redact::redacted_url(url.as_str())
                )));
            }
            vec![url]
        }
        None => resource_metadata_urls(server),
    };
    for url in candidates {
        if let Some(prm) = get_json::<ResourceMetadata>(http, &url).await? {
            return Ok(Some(prm));
        }
    }
    Ok(None)
}

/// The first metadata document found at `issuer`'s well-known URLs; `None`
/// when there is none. `strict`: also the OIDC forms (with a PRM).
async fn fetch_server_metadata(
    http: &reqwest::Client,
    issuer: &Url,
    strict: bool,
) -> Result<Option<ServerMetadata>, OAuthError> {
    let urls = server_metadata_urls(issuer);
    let urls = if strict { urls } else { urls.into_iter().take(1).collect() };
    for url in urls {
        if let Some(metadata) = get_json::<ServerMetadata>(http, &url).await? {
            return Ok(Some(metadata));
        }
    }
    Ok(None)
}

/// GETs a JSON document: `None` on a 4xx (not there), an error on anything
/// else that is not a JSON document of the expected shape.
async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &Url) -> Result<Option<T>, OAuthError> {
    let shown = crate::redact::redacted_url(url.as_str());
    let response = http
        .get(url.clone())
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .map_err(|e| OAuthError::Discovery(format!("{shown}: {}", crate::redact::http_error(&e.without_url()))))?;
    let status = response.status();
    if status.is_client_error() {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(OAuthError::Discovery(format!("{shown} answered HTTP {status}")));
    }
    let body = response.bytes().await.map_err(|e| OAuthError::Discovery(format!("{shown}: {}", e.without_url())))?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| OAuthError::Discovery(format!("{shown} is not a valid metadata document: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_challenge_gives_its_bearer_params() {
        let c = Challenge::parse(
            r#"Bearer error="invalid_token", error_description="Missing \"Authorization\", header", resource_metadata="http://localhost:3000/.well-known/oauth-protected-resource/mcp", scope="mcp:basic mcp:write""#,
        );
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://localhost:3000/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("mcp:basic mcp:write"));
        let other = Challenge::parse(r#"Basic realm="x", Bearer scope=read"#);
        assert_eq!(other.scope.as_deref(), Some("read"));
        assert_eq!(Challenge::parse(r#"Basic scope="no""#), Challenge::default());
        assert_eq!(Challenge::parse("Bearer"), Challenge::default());
        assert_eq!(Challenge::parse(r#"Bearer scope="unterminated"#).scope.as_deref(), Some("unterminated"));
    }

    #[test]
    fn protected_resource_metadata_is_path_aware_first() {
        let urls = resource_metadata_urls(&url("http://localhost:3000/mcp?x=1"));
        let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                "http://localhost:3000/.well-known/oauth-protected-resource"
            ]
        );
        let root = resource_metadata_urls(&url("https://example.com/"));
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].as_str(), "https://example.com/.well-known/oauth-protected-resource");
    }

    #[test]
    fn server_metadata_urls_follow_the_spec_and_never_use_the_root_for_a_path() {
        let root: Vec<String> =
            server_metadata_urls(&url("https://as.example")).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            root,
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        let tenant: Vec<String> =
            server_metadata_urls(&url("https://as.example/tenant1")).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            tenant,
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn the_resource_must_be_this_server() {
        let server = url("http://localhost:3000/mcp");
        assert!(resource_matches(&server, "http://localhost:3000/mcp"));
        assert!(resource_matches(&server, "http://localhost:3000"));
        assert!(!resource_matches(&server, "https://evil.example.com/mcp"));
        assert!(!resource_matches(&server, "http://localhost:3001/mcp"));
        assert!(!resource_matches(&server, "http://localhost:3000/mc"));
        assert!(!resource_matches(&server, "not a url"));
    }

    #[test]
    fn scopes_come_from_the_challenge_then_the_prm_else_none() {
        let prm = vec!["mcp:basic".to_string(), "mcp:read".to_string()];
        assert_eq!(select_scope(Some("mcp:basic"), Some(&prm)).as_deref(), Some("mcp:basic"));
        assert_eq!(select_scope(None, Some(&prm)).as_deref(), Some("mcp:basic mcp:read"));
        assert_eq!(select_scope(Some("  "), Some(&[])), None);
        assert_eq!(select_scope(None, None), None);
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_transport(&url("https://as.example"), "x").is_ok());
        assert!(check_transport(&url("http://localhost:1"), "x").is_ok());
        assert!(check_transport(&url("http://127.0.0.1:1"), "x").is_ok());
        assert!(check_transport(&url("http://[::1]:1"), "x").is_ok());
        assert!(check_transport(&url("http://as.example"), "x").is_err());
    }

    #[test]
    fn the_fallback_is_the_origin() {
        let m = fallback_metadata(&url("http://localhost:3000/mcp"));
        assert_eq!(m.issuer, "http://localhost:3000");
        assert_eq!(m.authorization_endpoint, "http://localhost:3000/authorize");
        assert_eq!(m.token_endpoint, "http://localhost:3000/token");
        assert_eq!(m.registration_endpoint.as_deref(), Some("http://localhost:3000/register"));
    }
}
