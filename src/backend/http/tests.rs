//! The transport against a server that misbehaves in the ways real ones do:
//! overloaded (503 with `Retry-After`) and polling (it closes a request's event
//! stream after a priming event and sends the answer on a resumed GET).

use super::*;
use crate::backend::SharingKey;
use crate::config::Config;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
struct Fake {
    /// Each request the server saw: method, and the JSON-RPC method or `Last-Event-ID`.
    seen: Mutex<Vec<String>>,
    /// The id of the call whose answer waits for the resumed stream.
    parked: Mutex<Option<Value>>,
}

async fn post(State(fake): State<Arc<Fake>>, body: String) -> Response {
    let message: Value = serde_json::from_str(&body).unwrap_or_default();
    let method = jsonrpc::method(&message).to_string();
    let calls = {
        let mut seen = lock(&fake.seen);
        seen.push(format!("POST {method}"));
        seen.iter().filter(|s| **s == "POST tools/call").count()
    };
    let id = message.get("id").cloned().unwrap_or_default();
    match method.as_str() {
        "initialize" => {
            let result = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"}});
            ([("mcp-session-id", "s1")], axum::Json(jsonrpc::result(id, result))).into_response()
        }
        "tools/call" if calls == 1 => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response(),
        "tools/call" => {
            *lock(&fake.parked) = Some(id);
            // A priming event with an id, then the stream ends: resume later.
            ([("content-type", "text/event-stream")], "id: e1\nretry: 10\ndata: \n\n").into_response()
        }
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

async fn get(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    lock(&fake.seen).push(format!("GET {}", last.as_deref().unwrap_or("-")));
    let parked = lock(&fake.parked).take();
    match (last.as_deref(), parked) {
        (Some("e1"), Some(id)) => {
            let answer = jsonrpc::result(id, json!({"content": [{"type": "text", "text": "resumed"}]}));
            let body = format!("id: e2\ndata: {answer}\n\n");
            ([("content-type", "text/event-stream")], body).into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

struct Quiet;

impl BackendHandler for Quiet {
    fn on_request(&self, _: &Arc<Backend>, _: Value, _: Option<SessionId>) {}
    fn on_notification(&self, _: &Arc<Backend>, _: Value) {}
    fn on_exit(&self, _: &Arc<Backend>) {}
}

#[tokio::test]
async fn an_overloaded_server_is_tried_again_and_a_closed_answer_stream_is_resumed() {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new().route("/mcp", axum::routing::post(post).get(get)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (config, identity, resolved) = remote_server(url, "");
    let (backend, handle) =
        connect(identity, &config, &resolved, Duration::from_secs(5), Arc::new(Quiet), EraPlan::Known(Era::Handshake))
            .await
            .unwrap();
    let reply =
        tokio::time::timeout(Duration::from_secs(10), backend.request("tools/call", json!({"name": "x"}), None))
            .await
            .expect("the call was answered")
            .unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "resumed", "{reply}");
    let seen = lock(&fake.seen).clone();
    assert_eq!(seen.iter().filter(|s| *s == "POST tools/call").count(), 2, "sent again after the 503: {seen:?}");
    assert!(seen.contains(&"GET e1".to_string()), "resumed from the priming event: {seen:?}");
    assert!(!backend.awaits_answer(&json!(0)) && backend.in_flight().0 == 0, "nothing left in flight");
    handle.stop().await;
}

/// A modern server that refuses the first request's protocol version once
/// (400, -32022, naming the version it supports), then serves.
async fn refusing_once(State(seen): State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap, body: String) -> Response {
    let message: Value = serde_json::from_str(&body).unwrap_or_default();
    let header = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let meta = message.pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion").cloned();
    let first = {
        let mut seen = lock(&seen);
        seen.push(format!("{} {header} {}", jsonrpc::method(&message), meta.unwrap_or_default()));
        seen.len() == 1
    };
    let id = message.get("id").cloned().unwrap_or_default();
    if first {
        let data = json!({"supported": [LATEST_MODERN_VERSION], "requested": header});
        let refusal = jsonrpc::error_with_data(id, jsonrpc::UNSUPPORTED_VERSION, "Unsupported protocol version", data);
        return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
    }
    let result = match jsonrpc::method(&message) {
        "server/discover" => json!({"resultType": "complete", "supportedVersions": [LATEST_MODERN_VERSION],
            "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "1"}}),
        _ => json!({"resultType": "complete", "tools": []}),
    };
    axum::Json(jsonrpc::result(id, result)).into_response()
}

#[tokio::test]
async fn a_modern_server_that_refuses_the_version_once_is_asked_again_at_one_it_supports() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route("/mcp", axum::routing::post(refusing_once)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (config, identity, resolved) = remote_server(url, "    protocol: modern\n");
    let (backend, handle) =
        connect(identity, &config, &resolved, Duration::from_secs(5), Arc::new(Quiet), EraPlan::Known(Era::Modern))
            .await
            .expect("the server started after the second server/discover");
    assert!(backend.is_modern());
    let discovered = lock(&seen).clone();
    let asked = format!("server/discover {LATEST_MODERN_VERSION} \"{LATEST_MODERN_VERSION}\"");
    assert_eq!(discovered, [asked.clone(), asked], "sent again, header and envelope alike");
    handle.stop().await;
}

/// A server that refuses every request as a team gateway refuses a token it
/// did not issue.
async fn refusing_the_token() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"detail": "Invalid authentication credentials"}))).into_response()
}

#[tokio::test]
async fn a_refused_static_token_is_named_as_such_in_either_era() {
    let app = axum::Router::new().route("/mcp", axum::routing::post(refusing_the_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    for (extra, plan) in [("    protocol: modern\n", EraPlan::Known(Era::Modern)), ("", EraPlan::Probe)] {
        let (config, identity, mut resolved) = remote_server(url.clone(), extra);
        resolved.headers = vec![("Authorization".into(), "Bearer not-this-one".into())];
        let Err(error) = connect(identity, &config, &resolved, Duration::from_secs(5), Arc::new(Quiet), plan).await
        else {
            panic!("a refused token started ({extra:?})");
        };
        let error = error.to_string();
        assert!(error.contains("server `fake`"), "{error}");
        assert!(error.contains("refused the `Authorization` of its `headers:` (HTTP 401 Unauthorized)"), "{error}");
        assert!(!error.contains("not-this-one"), "the token is never in the error: {error}");
    }
}

/// The remote server `fake` at `url` (with `extra` config lines), as the pool
/// would hand it to the transport.
fn remote_server(url: String, extra: &str) -> (crate::config::ServerConfig, Identity, Resolved) {
    let yaml = format!("servers:\n  fake:\n    url: {url}\n{extra}");
    let config = Config::parse(std::path::Path::new("test.yaml"), &yaml).unwrap().servers.shift_remove("fake").unwrap();
    let identity =
        Identity { server: "fake".into(), key: SharingKey("global".into()), instance: "test".into(), lane: 0 };
    let resolved = Resolved {
        url: Some(url),
        headers: Vec::new(),
        command: String::new(),
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        image: None,
        volumes: Vec::new(),
        network: None,
        oauth: None,
    };
    (config, identity, resolved)
}
