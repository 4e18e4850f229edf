//! Trace context end to end: the W3C `traceparent` a terminal's call carries
//! (or the one the gateway starts) reaches the backend in `params._meta`, and
//! as HTTP headers a remote backend; the daemon's spans reach an OTLP/HTTP
//! receiver with the right parent/child links.
//!
//! The receiver is a small axum server in the test that decodes what it gets
//! with the OTLP protobuf types; the same server stands in for a remote MCP
//! server that shows what headers and `_meta` a call came with (the stdio
//! side is the fixture server's `meta` tool).

use std::sync::{Arc, Mutex};

use crate::common::*;
use crate::teams::ContextForge;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use prost::Message as _;
use serde_json::{Value, json};

/// A client span's context, as a terminal's client would send it.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// What the test's HTTP server received.
#[derive(Default)]
struct Received {
    /// Every span exported to `/v1/traces`, with its resource's `service.name`.
    spans: Vec<(String, Span)>,
    /// Every MCP message POSTed to `/mcp`, with its `traceparent` header.
    mcp: Vec<(Option<String>, Value)>,
}

/// An OTLP/HTTP receiver at `/v1/traces` and a minimal Streamable HTTP MCP
/// server at `/mcp` (one tool, `meta`), on a loopback port of its own.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Received>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(traces))
            .route("/mcp", axum::routing::post(mcp))
            .with_state(received.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { port, received, _runtime: runtime }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The first span that `pick` finds, waiting for the exporter's batch.
    fn span(&self, what: &str, pick: impl Fn(&Span) -> bool) -> Span {
        self.span_of(what, |_, span| pick(span))
    }

    /// The first span that `pick` finds by its service and itself.
    fn span_of(&self, what: &str, pick: impl Fn(&str, &Span) -> bool) -> Span {
        let mut found = None;
        wait_until(TIMEOUT, || {
            let received = self.received.lock().unwrap();
            found = received.spans.iter().find(|(service, span)| pick(service, span)).map(|(_, s)| s.clone());
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {what} span arrived; got {:#?}", self.received.lock().unwrap().spans))
    }
}

async fn traces(
    axum::extract::State(received): axum::extract::State<Arc<Mutex<Received>>>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else { return axum::http::StatusCode::BAD_REQUEST };
    let mut received = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.spans.push((service.clone(), span));
        }
    }
    axum::http::StatusCode::OK
}

/// A stand-in remote MCP server: answers the handshake, lists `meta`, and
/// answers a call of it with the `_meta` and the `traceparent` header it came with.
async fn mcp(
    axum::extract::State(received): axum::extract::State<Arc<Mutex<Received>>>,
    headers: axum::http::HeaderMap,
    axum::Json(message): axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(String::from);
    received.lock().unwrap().mcp.push((header.clone(), message.clone()));
    let Some(id) = message.get("id").cloned() else { return axum::http::StatusCode::ACCEPTED.into_response() };
    let params = &message["params"];
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => json!({
            "protocolVersion": params["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "trace-standin", "version": "1"},
        }),
        "tools/list" => json!({"tools": [{"name": "meta", "inputSchema": {"type": "object"}}]}),
        "tools/call" => {
            let seen = json!({"_meta": params["_meta"], "header": header});
            json!({"content": [{"type": "text", "text": seen.to_string()}]})
        }
        "ping" => json!({}),
        other => {
            let error = json!({"code": -32601, "message": format!("no method {other}")});
            return axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": error})).into_response();
        }
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn text(value: &any_value::Value) -> Option<String> {
    match value {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `[version, trace id, span id, flags]` of a `traceparent`.
fn parts(traceparent: &Value) -> Vec<String> {
    let parts: Vec<String> = traceparent.as_str().unwrap_or_default().split('-').map(String::from).collect();
    assert_eq!(parts.len(), 4, "not a traceparent: {traceparent}");
    parts
}

/// Calls `tool` with `meta` as `_meta` and returns what the backend showed of its request.
fn call(client: &mut Client, id: u64, tool: &str, meta: Value) -> Value {
    let params = json!({"name": tool, "arguments": {"message": "an-argument-never-exported"}, "_meta": meta});
    let reply = client.request(json!(id), "tools/call", params);
    serde_json::from_str(first_text(&reply)).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

#[test]
fn a_call_continues_the_terminals_trace_to_the_backend_and_its_spans_are_exported_linked() {
    let receiver = Receiver::start();
    let mut gw = TestGateway::with_servers(&[("srv", fixture_server("trace"))]);
    gw.daemon_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()));
    // The batch goes out after 50 ms, not the default 5 s.
    gw.daemon_env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "50".into()));
    gw.start();
    let mut client = gw.client();
    client.initialize();

    // The terminal's trace: the backend's request is in it, as a span of ours.
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let seen = call(&mut client, 2, "srv__meta", json!({"traceparent": traceparent, "tracestate": "vendor=1"}));
    let [_, trace, backend_id, flags] = parts(&seen["traceparent"]).try_into().unwrap();
    assert_eq!((trace.as_str(), flags.as_str()), (CLIENT_TRACE, "01"), "{seen}");
    assert_ne!(backend_id, CLIENT_SPAN, "{seen}");
    assert_eq!(seen["tracestate"], "vendor=1", "{seen}");

    // Exported: terminal's span → our call (server) → our backend request (client).
    let backend = receiver.span("backend", |s| hex(&s.span_id) == backend_id);
    assert_eq!(hex(&backend.trace_id), CLIENT_TRACE);
    assert_eq!(backend.kind, SpanKind::Client as i32);
    assert_eq!(backend.name, "tools/call meta");
    assert_eq!(attribute(&backend, "mcp_gateway.server").as_deref(), Some("srv"));
    assert_eq!(attribute(&backend, "gen_ai.tool.name").as_deref(), Some("meta"));
    let call_span = receiver.span("call", |s| s.span_id == backend.parent_span_id);
    assert_eq!(hex(&call_span.parent_span_id), CLIENT_SPAN);
    assert_eq!(hex(&call_span.trace_id), CLIENT_TRACE);
    assert_eq!(call_span.kind, SpanKind::Server as i32);
    assert_eq!(call_span.name, "tools/call srv__meta");
    assert_eq!(attribute(&call_span, "mcp.method.name").as_deref(), Some("tools/call"));
    assert_eq!(attribute(&call_span, "gen_ai.tool.name").as_deref(), Some("srv__meta"));
    assert!(attribute(&call_span, "mcp.session.id").is_some(), "{call_span:?}");

    // No traceparent, or a malformed one: the gateway starts a trace.
    for (id, meta) in [(3, json!({})), (4, json!({"traceparent": "00-not-a-trace-01", "tracestate": "vendor=1"}))] {
        let seen = call(&mut client, id, "srv__meta", meta);
        let [_, trace, backend_id, _] = parts(&seen["traceparent"]).try_into().unwrap();
        assert_ne!(trace, CLIENT_TRACE);
        assert!(seen.get("tracestate").is_none(), "a tracestate without its traceparent is dropped: {seen}");
        let backend = receiver.span("backend", |s| hex(&s.span_id) == backend_id);
        let root = receiver.span("call", |s| s.span_id == backend.parent_span_id);
        assert!(root.parent_span_id.is_empty(), "a new trace's call is its root: {root:?}");
        assert_eq!(hex(&root.trace_id), trace);
    }

    // The session's span arrives when it ends, and each call links to it.
    let calls_link = call_span.links.first().map(|l| l.span_id.clone()).expect("a link to the session span");
    drop(client);
    let session = receiver.span("session", |s| s.span_id == calls_link);
    assert_eq!(session.name, "session");
    assert_eq!(attribute(&session, "mcp.session.id"), attribute(&call_span, "mcp.session.id"));

    let received = receiver.received.lock().unwrap();
    assert!(received.spans.iter().all(|(service, _)| service == "mcp-gateway"));
    let exported = format!("{:?}", received.spans);
    assert!(!exported.contains("an-argument-never-exported"), "arguments are never exported");
}

#[test]
fn a_remote_backend_gets_the_trace_context_in_meta_and_as_http_headers_with_export_off() {
    let receiver = Receiver::start();
    let mut gw = TestGateway::new();
    gw.write_config(&format!("servers:\n  remote:\n    url: \"{}/mcp\"\n", receiver.endpoint()));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let seen = call(&mut client, 2, "remote__meta", json!({"traceparent": traceparent}));
    let header = &seen["header"];
    assert_eq!(header, &seen["_meta"]["traceparent"], "{seen}");
    let [_, trace, span, _] = parts(header).try_into().unwrap();
    assert_eq!(trace, CLIENT_TRACE, "{seen}");
    assert_eq!(span, CLIENT_SPAN, "with export off the gateway records no span: the client's goes on as the parent");
    // Turning export on in the running daemon's config is said to need a restart.
    gw.write_config(&format!(
        "telemetry:\n  otlp_endpoint: {}\nservers:\n  remote:\n    url: \"{}/mcp\"\n",
        receiver.endpoint(),
        receiver.endpoint()
    ));
    assert!(
        wait_until(TIMEOUT, || gw.daemon_log().contains("`telemetry:` changed")),
        "no word of the restart it needs:\n{}",
        gw.daemon_log()
    );
    // Nothing is exported unless an endpoint is configured at the start (not
    // even at the exit, when the exporter flushes).
    drop(client);
    assert!(gw.stop().success(), "{}", gw.daemon_log());
    assert!(receiver.received.lock().unwrap().spans.is_empty());
}

#[test]
fn a_client_of_the_http_front_door_may_send_its_trace_context_as_headers() {
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "http:\n  listen: \"127.0.0.1:0\"\n  auth: {{ bearer_tokens: [\"tok-123\"] }}\nservers:\n  srv:\n{}",
        fixture_server("trace")
    ));
    gw.start();
    let url = status(&gw)["http"].as_str().expect("the front door is listening").to_string();
    let http = reqwest::blocking::Client::new();
    let post = |headers: &[(&str, &str)], body: Value| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("authorization", "Bearer tok-123")
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().expect("POST /mcp")
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "trace-test", "version": "1"}}});
    let response = post(&[], init);
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let session = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];
    post(&session, json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let headers = [session[0], session[1], ("traceparent", traceparent.as_str())];
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "srv__meta"}});
    let answer = http_messages(post(&headers, call));
    let seen: Value = serde_json::from_str(first_text(&answer[0])).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    let [_, trace, span, _] = parts(&seen["traceparent"]).try_into().unwrap();
    assert_eq!(trace, CLIENT_TRACE, "{seen}");
    assert_eq!(span, CLIENT_SPAN, "with export off the client's span goes on as the parent: {seen}");
}

#[test]
fn the_spans_still_queued_when_the_daemon_stops_are_flushed_before_it_exits() {
    let receiver = Receiver::start();
    // The config's setting this time, not the environment's.
    let mut gw = TestGateway::new();
    gw.write_config(&format!(
        "telemetry:\n  otlp_endpoint: {}/\nservers:\n  srv:\n{}",
        receiver.endpoint(),
        fixture_server("trace")
    ));
    // No batch would go out for ten minutes: only the exit's flush sends it.
    gw.daemon_env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "600000".into()));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let seen = call(&mut client, 2, "srv__meta", json!({}));
    let [_, trace, _, _] = parts(&seen["traceparent"]).try_into().unwrap();
    assert!(receiver.received.lock().unwrap().spans.is_empty(), "exported before the exit");
    drop(client);
    let started = std::time::Instant::now();
    assert!(gw.stop().success(), "{}", gw.daemon_log());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the flush held the exit");
    let received = receiver.received.lock().unwrap();
    let names: Vec<&str> =
        received.spans.iter().filter(|(_, s)| hex(&s.trace_id) == trace).map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(names.len(), 2, "the call and its backend request, flushed at the exit: {names:?}");
    assert!(received.spans.iter().any(|(_, s)| s.name == "session"), "{:?}", received.spans);
}

#[test]
fn a_telemetry_endpoint_that_is_not_an_http_url_is_refused_by_name() {
    let gw = TestGateway::new();
    gw.write_config("telemetry:\n  otlp_endpoint: localhost:4317\n");
    let out = gw.command(DAEMON).args(["config", "check"]).output().expect("config check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("telemetry.otlp_endpoint") && stderr.contains("localhost:4317"), "{stderr}");
}

#[test]
fn one_trace_runs_from_the_terminals_call_through_the_daemon_into_contextforge() {
    let receiver = Receiver::start();
    let mut gw = TestGateway::new();
    // ContextForge exports to the same receiver (its settings, from
    // mcpgateway/config.py: OTLP over HTTP, the URL used as is). Every process
    // of the test gets these; the daemon's own (daemon_env) come after and win.
    let traces = format!("{}/v1/traces", receiver.endpoint());
    for (name, value) in [
        ("OTEL_ENABLE_OBSERVABILITY", "true"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", traces.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http"),
        ("OTEL_SERVICE_NAME", "contextforge"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ] {
        gw.extra_env.push((name.into(), value.into()));
    }
    gw.daemon_env.push(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".into(), traces.clone()));
    gw.daemon_env.push(("OTEL_SERVICE_NAME".into(), "mcp-gateway".into()));

    let everything_port = free_port();
    let _everything = everything_over_http(&gw, everything_port, "streamableHttp");
    let cf = ContextForge::start(&gw, &gw.dir.path().join("contextforge"));
    let endpoint = cf.serve("everything", &format!("http://127.0.0.1:{everything_port}/mcp"));
    gw.write_config(&format!(
        "servers:\n  team:\n    url: \"{endpoint}\"\n    headers: {{ Authorization: \"Bearer ${{CF_TOKEN}}\" }}\n"
    ));
    let env_file = gw.home.join(".env");
    std::fs::write(&env_file, format!("CF_TOKEN={}\n", cf.token)).expect("write .env");
    std::fs::set_permissions(&env_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod .env");
    gw.start();
    let mut client = gw.client();
    client.initialize();

    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let params = json!({"name": "team__everything-echo", "arguments": {"message": "traced"}, "_meta": {"traceparent": traceparent}});
    let reply = client.request(json!(2), "tools/call", params);
    assert_eq!(first_text(&reply), "Echo: traced", "{reply}\n{}", gw.daemon_log());

    // Terminal → the daemon's call → its request to ContextForge → ContextForge's span.
    let backend = receiver.span_of("the daemon's request to ContextForge", |service, s| {
        service == "mcp-gateway" && s.kind == SpanKind::Client as i32 && hex(&s.trace_id) == CLIENT_TRACE
    });
    assert_eq!(backend.name, "tools/call everything-echo");
    let call_span = receiver.span("the daemon's call", |s| s.span_id == backend.parent_span_id);
    assert_eq!(hex(&call_span.parent_span_id), CLIENT_SPAN);
    // ContextForge's request span is a child of it, and its tool call runs
    // inside (ContextForge 1.0.7: `POST /servers/<id>/mcp` and the
    // `POST /mcp/{path}` serving it, both children of our request, then
    // `tool.invoke` → `tool.gateway_call` → `mcp.client.call` to server-everything).
    let mut invoke = None;
    wait_until(TIMEOUT, || {
        let received = receiver.received.lock().unwrap();
        let requests: Vec<&[u8]> = received
            .spans
            .iter()
            .filter(|(service, s)| service == "contextforge" && s.parent_span_id == backend.span_id)
            .map(|(_, s)| s.span_id.as_slice())
            .collect();
        invoke = received
            .spans
            .iter()
            .find(|(service, s)| {
                service == "contextforge" && s.name == "tool.invoke" && requests.contains(&s.parent_span_id.as_slice())
            })
            .map(|(_, s)| s.clone());
        invoke.is_some()
    });
    let Some(invoke) = invoke else {
        let received = receiver.received.lock().unwrap();
        let spans: Vec<(&str, &str, String, String)> = received
            .spans
            .iter()
            .map(|(service, s)| (service.as_str(), s.name.as_str(), hex(&s.trace_id), hex(&s.parent_span_id)))
            .collect();
        panic!(
            "no ContextForge tool.invoke under a request span that is a child of the daemon's request {}; \
             spans: {spans:#?}\n{}",
            hex(&backend.span_id),
            crate::teams::read(&cf.log)
        );
    };
    assert_eq!(hex(&invoke.trace_id), CLIENT_TRACE, "one trace: {invoke:?}");
}

#[test]
fn a_collector_that_never_answers_costs_the_calls_nothing_and_the_exit_at_most_the_flush_bound() {
    // Connections to it are accepted by the kernel and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let mut gw = TestGateway::with_servers(&[("srv", fixture_server("trace"))]);
    gw.daemon_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint));
    gw.daemon_env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "10".into()));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    for id in 2..5 {
        let seen = call(&mut client, id, "srv__meta", json!({}));
        assert_eq!(parts(&seen["traceparent"]).len(), 4);
    }
    drop(client);
    let started = std::time::Instant::now();
    assert!(gw.stop().success(), "{}", gw.daemon_log());
    // The sessions' drain, then at most 3 s of flushing, then the runtime's 1 s.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(8), "the exit took {took:?}:\n{}", gw.daemon_log());
    assert!(gw.daemon_log().contains("did not flush within 3s"), "{}", gw.daemon_log());
}

#[test]
fn an_endpoint_the_exporter_cannot_use_is_logged_without_its_secret_and_calls_still_carry_a_trace() {
    let mut gw = TestGateway::with_servers(&[("srv", fixture_server("trace"))]);
    // Not a URI the exporter accepts (a space in the host), with a password in it.
    gw.daemon_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), "http://user:hunter2-secret@exa mple:4318".into()));
    gw.start();
    let mut client = gw.client();
    client.initialize();
    let seen = call(&mut client, 2, "srv__meta", json!({}));
    assert_eq!(parts(&seen["traceparent"]).len(), 4);
    let log = gw.daemon_log();
    assert!(log.contains("not exporting trace spans"), "{log}");
    assert!(!log.contains("hunter2-secret"), "the endpoint's password reached the log:\n{log}");
}
