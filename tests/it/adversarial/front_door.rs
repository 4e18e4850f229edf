//! A second HTTP client against the front door: another credential's session
//! id, a credential a reload took away, two `Host` or `Origin` headers where a
//! check reads one, and browser pages from allowed and other origins (CORS).

use std::io::{Read, Write};

use reqwest::Method;
use reqwest::blocking::{Client as Http, Response};
use serde_json::{Value, json};

use crate::common::*;

const TOKEN_A: &str = "front-door-token-aaaa";
const TOKEN_B: &str = "front-door-token-bbbb";
const PAGE: &str = "https://app.example";

/// The `http:` section's `auth:` with token A mapped to `a_profile`, B to
/// profile `b`: each profile gives the fixture server its own `WHO`, so an
/// answer says whose backend (and profile) served it.
fn config(a_profile: &str) -> String {
    format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  allowed_origins: [{PAGE:?}]\n  auth:\n    bearer_tokens:\n      \
         - {{ token: \"${{TOKEN_A}}\", profile: {a_profile} }}\n      - {{ token: \"${{TOKEN_B}}\", profile: b }}\n\
         profiles:\n  a: {{ env: {{ WHO: alpha }} }}\n  b: {{ env: {{ WHO: beta }} }}\n\
         servers:\n  fx:\n{}    env: {{ WHO: \"${{WHO}}\" }}\n    share: credential\n",
        fixture_server("front-door")
    )
}

fn front_door() -> (TestGateway, String) {
    let mut gw = TestGateway::new();
    gw.write_config(&config("a"));
    gw.daemon_env.push(("TOKEN_A".into(), TOKEN_A.into()));
    gw.daemon_env.push(("TOKEN_B".into(), TOKEN_B.into()));
    gw.start();
    let url = status(&gw)["http"].as_str().expect("the front door is listening").to_string();
    (gw, url)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn post(http: &Http, url: &str, headers: &[(&str, String)], body: &Value) -> Response {
    let mut request = http.post(url).header("accept", "application/json, text/event-stream").json(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    request.send().expect("the front door answers")
}

fn initialize_request() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"front-door","version":"1"}}})
}

/// Opens a session with `token`; its id.
fn open_session(http: &Http, url: &str, token: &str) -> String {
    let response = post(http, url, &[bearer(token)], &initialize_request());
    assert_eq!(response.status(), 200);
    let session = response.headers().get("mcp-session-id").expect("a session id").to_str().unwrap().to_string();
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(post(http, url, &in_session(token, &session), &initialized).status(), 202);
    session
}

fn in_session(token: &str, session: &str) -> Vec<(&'static str, String)> {
    vec![bearer(token), ("mcp-session-id", session.to_string()), ("mcp-protocol-version", "2025-06-18".into())]
}

fn who_call() -> Value {
    json!({"jsonrpc":"2.0","id":"who","method":"tools/call","params":{"name":"fx__env","arguments":{"name":"WHO"}}})
}

/// Who answers a `tools/call` in a session: its backend's `WHO`.
fn who_answers(http: &Http, url: &str, token: &str, session: &str) -> String {
    let answer = http_messages(post(http, url, &in_session(token, session), &who_call()));
    first_text(answer.last().expect("an answer")).to_string()
}

fn get_stream(http: &Http, url: &str, token: &str, session: &str) -> Response {
    http.get(url)
        .header("authorization", format!("Bearer {token}"))
        .header("mcp-session-id", session)
        .header("accept", "text/event-stream")
        .send()
        .expect("the front door answers")
}

fn delete(http: &Http, url: &str, token: &str, session: &str) -> Response {
    http.delete(url)
        .header("authorization", format!("Bearer {token}"))
        .header("mcp-session-id", session)
        .send()
        .expect("the front door answers")
}

/// Status and body, read to the end.
fn answer(response: Response) -> (u16, String) {
    (response.status().as_u16(), response.text().unwrap_or_default())
}

#[test]
fn a_session_answers_only_to_the_credential_that_opened_it() {
    let (gw, url) = front_door();
    let http = Http::new();
    let session_a = open_session(&http, &url, TOKEN_A);
    assert_eq!(who_answers(&http, &url, TOKEN_A, &session_a), "alpha");

    // What B gets for a session id that exists nowhere: the yardstick.
    let unknown = answer(post(&http, &url, &in_session(TOKEN_B, "no-such-session"), &who_call()));
    assert_eq!(unknown.0, 404);
    // B with A's session id: exactly that, on every method.
    let call = answer(post(&http, &url, &in_session(TOKEN_B, &session_a), &who_call()));
    assert_eq!(call, unknown, "B calling a tool in A's session");
    assert_eq!(answer(get_stream(&http, &url, TOKEN_B, &session_a)), unknown, "B opening A's stream");
    assert_eq!(answer(delete(&http, &url, TOKEN_B, &session_a)), unknown, "B deleting A's session");

    // A's session is untouched: it still answers A, from A's backend.
    assert_eq!(who_answers(&http, &url, TOKEN_A, &session_a), "alpha");
    let stream = get_stream(&http, &url, TOKEN_A, &session_a);
    assert_eq!(stream.status(), 200, "A still opens its own stream");
    drop(stream);
    // B's own session is B's.
    let session_b = open_session(&http, &url, TOKEN_B);
    assert_eq!(who_answers(&http, &url, TOKEN_B, &session_b), "beta");
    assert_eq!(answer(post(&http, &url, &in_session(TOKEN_A, &session_b), &who_call())).0, 404);

    // Modern requests carry no session: each is authenticated on its own, and
    // served in its own credential's profile.
    let modern = |token: Option<&str>| {
        let mut headers = vec![("mcp-protocol-version", "2026-07-28".to_string())];
        headers.extend(token.map(bearer));
        let mut call = who_call();
        call["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "front-door", "version": "1"}});
        headers.extend(routing_headers(&call));
        post(&http, &url, &headers, &call)
    };
    assert_eq!(modern(None).status(), 401);
    assert_eq!(first_text(http_messages(modern(Some(TOKEN_B))).last().unwrap()), "beta");
    assert_eq!(first_text(http_messages(modern(Some(TOKEN_A))).last().unwrap()), "alpha");

    // A deletes its own session.
    assert_eq!(delete(&http, &url, TOKEN_A, &session_a).status(), 204);
    let log = gw.daemon_log();
    assert!(log.contains("another credential") && log.contains("bearer_tokens[1]"), "the refusal is logged:\n{log}");
    assert!(!log.contains(TOKEN_A) && !log.contains(TOKEN_B), "never the tokens:\n{log}");
}

#[test]
fn a_reload_that_changes_a_credential_ends_the_sessions_it_opened() {
    let (gw, url) = front_door();
    let http = Http::new();
    let session_a = open_session(&http, &url, TOKEN_A);
    assert_eq!(who_answers(&http, &url, TOKEN_A, &session_a), "alpha");
    let sessions = || status(&gw)["sessions"].as_array().map_or(0, Vec::len);
    assert_eq!(sessions(), 1);

    // Token A now maps to profile b: what it opened under profile a is not its.
    gw.write_config(&config("b"));
    assert!(
        wait_until(TIMEOUT, || answer(post(&http, &url, &in_session(TOKEN_A, &session_a), &who_call())).0 == 404),
        "the session opened under the old mapping still answers"
    );
    assert!(wait_until(TIMEOUT, || sessions() == 0), "and it was closed, not only refused");
    let reopened = open_session(&http, &url, TOKEN_A);
    assert_eq!(who_answers(&http, &url, TOKEN_A, &reopened), "beta", "a new session follows the new mapping");

    // Token B removed: it is refused, and so is its session.
    let session_b = open_session(&http, &url, TOKEN_B);
    gw.write_config(&config("b").replace("      - { token: \"${TOKEN_B}\", profile: b }\n", ""));
    assert!(
        wait_until(TIMEOUT, || answer(post(&http, &url, &in_session(TOKEN_B, &session_b), &who_call())).0 == 401),
        "a removed token still works"
    );
    assert_eq!(who_answers(&http, &url, TOKEN_A, &reopened), "beta", "the others go on");
}

/// Sends `request` on a fresh connection; the status line of the answer.
fn raw_status_line(addr: &str, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen);
    String::from_utf8_lossy(&seen).lines().next().unwrap_or_default().to_string()
}

#[test]
fn two_host_or_two_origin_headers_are_refused() {
    let (_gw, url) = front_door();
    let addr = url.trim_start_matches("http://").trim_end_matches("/mcp").to_string();
    let port = addr.rsplit(':').next().unwrap();
    let body = initialize_request().to_string();
    let request = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\n{extra}Authorization: Bearer {TOKEN_A}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let allowed_host = format!("Host: {addr}\r\n");
    let allowed_origin = format!("Origin: http://localhost:{port}\r\n");
    // The same request with one of each is served: only the duplicate differs.
    assert!(raw_status_line(&addr, &request(&format!("{allowed_host}{allowed_origin}"))).starts_with("HTTP/1.1 200"));
    for (what, headers) in [
        ("Host, allowed first", format!("{allowed_host}Host: evil.example\r\n")),
        ("Host, allowed twice", format!("{allowed_host}{allowed_host}")),
        ("Origin, allowed first", format!("{allowed_host}{allowed_origin}Origin: http://evil.example\r\n")),
        ("Origin, allowed twice", format!("{allowed_host}{allowed_origin}{allowed_origin}")),
    ] {
        let status = raw_status_line(&addr, &request(&headers));
        assert!(status.starts_with("HTTP/1.1 400"), "two of {what}: {status}");
    }
}

/// Every `Access-Control-*` header of a response, lower-cased names.
fn cors_headers(response: &Response) -> Vec<String> {
    response.headers().keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
}

fn header<'a>(response: &'a Response, name: &str) -> Vec<&'a str> {
    response.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or_default()).collect()
}

/// The comma-separated values of a header, lower-cased.
fn list(response: &Response, name: &str) -> Vec<String> {
    header(response, name).iter().flat_map(|v| v.split(',')).map(|v| v.trim().to_ascii_lowercase()).collect()
}

#[test]
fn pages_of_allowed_origins_get_cors_and_others_get_nothing() {
    let (_gw, url) = front_door();
    let http = Http::new();
    let preflight = |origin: &str| {
        http.request(Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,mcp-session-id,mcp-param-region")
            .send()
            .expect("the front door answers")
    };

    // A preflight comes without credentials, and is answered all the same.
    let allowed = preflight(PAGE);
    assert_eq!(allowed.status(), 204);
    assert_eq!(header(&allowed, "access-control-allow-origin"), [PAGE]);
    assert!(list(&allowed, "vary").contains(&"origin".into()));
    let methods = list(&allowed, "access-control-allow-methods");
    for method in ["post", "get", "delete", "options"] {
        assert!(methods.contains(&method.into()), "{method} in {methods:?}");
    }
    let headers = list(&allowed, "access-control-allow-headers");
    for needed in [
        "authorization",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
        "x-api-key",
        "mcp-method",
        "mcp-name",
        "mcp-param-region",
    ] {
        assert!(headers.contains(&needed.into()), "{needed} in {headers:?}");
    }
    assert!(!header(&allowed, "access-control-max-age").is_empty());
    // ...and says nothing else: no session, no body.
    assert!(allowed.headers().get("mcp-session-id").is_none());
    assert_eq!(allowed.text().unwrap(), "");

    // Another origin: 403, and nothing a browser would act on.
    let other = preflight("https://evil.example");
    assert_eq!(other.status(), 403);
    assert_eq!(cors_headers(&other), Vec::<String>::new());

    // An actual request from the page: its script may read the answer and the session id.
    let opened = post(&http, &url, &[bearer(TOKEN_A), ("origin", PAGE.into())], &initialize_request());
    assert_eq!(opened.status(), 200);
    assert_eq!(header(&opened, "access-control-allow-origin"), [PAGE]);
    assert!(list(&opened, "vary").contains(&"origin".into()));
    let exposed = list(&opened, "access-control-expose-headers");
    assert!(exposed.contains(&"mcp-session-id".into()) && exposed.contains(&"mcp-protocol-version".into()));
    assert!(opened.headers().get("mcp-session-id").is_some());
    // A refusal reaches the page too (it must see the 401 to ask for a token).
    let refused = post(&http, &url, &[("origin", PAGE.into())], &initialize_request());
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "access-control-allow-origin"), [PAGE]);
    // Without an Origin (not a browser) nothing is added; another origin is refused bare.
    let plain = post(&http, &url, &[bearer(TOKEN_A)], &initialize_request());
    assert_eq!(plain.status(), 200);
    assert_eq!(cors_headers(&plain), Vec::<String>::new());
    let forbidden =
        post(&http, &url, &[bearer(TOKEN_A), ("origin", "https://evil.example".into())], &initialize_request());
    assert_eq!(forbidden.status(), 403);
    assert_eq!(cors_headers(&forbidden), Vec::<String>::new());
}
