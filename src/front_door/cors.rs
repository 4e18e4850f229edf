//! CORS for the allowed origins, so that a browser page served from one of
//! `allowed_origins` can use the front door.
//!
//! A few fixed headers rather than `tower-http`'s `CorsLayer`: the origin check
//! is the front door's own (DNS-rebinding protection, a disallowed Origin gets
//! 403 with no CORS headers at all), and the preflight must be answered before
//! authentication (browsers send it without credentials) yet after the Host and
//! Origin checks. Only an Origin that passed that check ever reaches this.
//!
//! A preflight is answered with what the front door accepts, the same for
//! everyone: it says nothing about sessions or credentials. No
//! `Access-Control-Allow-Credentials`: the front door uses no cookies, and a
//! page sends its token in `Authorization` itself.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The methods of `/mcp`.
const ALLOWED_METHODS: &str = "POST, GET, DELETE, OPTIONS";

/// Request headers a page may send (besides the configured API-key header and
/// the 2026 `Mcp-Param-*` ones, which are per tool). `Content-Type:
/// application/json` is not CORS-safelisted, so it must be listed.
const ALLOWED_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "content-type",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "mcp-session-id",
];

/// The prefix of the 2026 era's headers mirroring tool parameters
/// (`x-mcp-header` annotations): any name is possible, so the ones a
/// preflight asks for are allowed by name.
const PARAM_HEADER_PREFIX: &str = "mcp-param-";

/// What page scripts may read from a response: the session id above all (a
/// client cannot continue its session without it).
const EXPOSED_HEADERS: &str = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate";

/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE_SECS: &str = "600";

/// The answer to a preflight (`OPTIONS` with an allowed `Origin`): 204 with
/// the methods and headers the front door accepts. `request` is the
/// preflight's headers (for `Access-Control-Request-Headers`).
pub(super) fn preflight(origin: &HeaderValue, request: &HeaderMap, api_key_header: &str) -> Response {
    let mut allowed: Vec<String> = ALLOWED_HEADERS.iter().map(|h| h.to_string()).collect();
    if let Ok(api_key) = HeaderName::from_bytes(api_key_header.as_bytes()) {
        allowed.push(api_key.as_str().to_string());
    }
    for requested in request.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        let Ok(requested) = requested.to_str() else { continue };
        for name in requested.split(',').map(str::trim) {
            // Only names that are valid header names, so the value stays one.
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes())
                && name.as_str().starts_with(PARAM_HEADER_PREFIX)
                && !allowed.iter().any(|a| a == name.as_str())
            {
                allowed.push(name.as_str().to_string());
            }
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
    if let Ok(allowed) = HeaderValue::from_str(&allowed.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
    // The answer depends on both (a cache must not serve it for another).
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    headers.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    response
}

/// Lets a page from `origin` read an actual response (any status: a page must
/// be able to see a 401 or a 404 to act on it).
pub(super) fn allow(response: &mut Response, origin: &HeaderValue) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(response: &Response, name: HeaderName) -> Vec<String> {
        response.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn a_preflight_allows_the_origin_methods_and_the_headers_mcp_needs() {
        let origin = HeaderValue::from_static("https://app.example");
        let mut request = HeaderMap::new();
        request.insert(header::ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("POST"));
        request.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("content-type,mcp-param-region, x-evil,authorization"),
        );
        let response = preflight(&origin, &request, "X-Team-Key");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(values(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN), ["https://app.example"]);
        assert_eq!(values(&response, header::ACCESS_CONTROL_ALLOW_METHODS), [ALLOWED_METHODS]);
        let allowed = values(&response, header::ACCESS_CONTROL_ALLOW_HEADERS).join(",");
        let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
        for needed in ["authorization", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id"] {
            assert!(allowed.contains(&needed), "{needed} in {allowed:?}");
        }
        for needed in ["mcp-method", "mcp-name", "mcp-param-region", "x-team-key"] {
            assert!(allowed.contains(&needed), "{needed} in {allowed:?}");
        }
        assert!(!allowed.contains(&"x-evil"), "only headers the front door uses: {allowed:?}");
        assert_eq!(values(&response, header::ACCESS_CONTROL_MAX_AGE), [MAX_AGE_SECS]);
        assert!(values(&response, header::VARY).contains(&"Origin".to_string()));
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[test]
    fn an_actual_response_exposes_the_session_id_to_the_page() {
        let origin = HeaderValue::from_static("https://app.example");
        let mut response = StatusCode::OK.into_response();
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
        allow(&mut response, &origin);
        assert_eq!(values(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN), ["https://app.example"]);
        assert!(values(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS)[0].contains("Mcp-Session-Id"));
        assert_eq!(values(&response, header::VARY), ["Accept", "Origin"], "added to, not replacing");
    }
}
