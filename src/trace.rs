//! W3C trace context on every call, and its spans exported over OTLP.
//!
//! A client's request gets a `call` span (kind server): a child of the
//! client's own span when its `params._meta.traceparent` is valid, else the
//! root of a new trace (a malformed one is ignored, never an error). Each
//! request the gateway then sends a backend for it gets a `request` span
//! (kind client; not `backend`, the name of each backend's own log span), whose context is written into that request's
//! `params._meta.traceparent`/`tracestate` (the convention of the MCP SDKs and
//! of OpenTelemetry's MCP semantic conventions) and, by the HTTP transport,
//! into the `traceparent`/`tracestate` headers. So the backend, or the team
//! gateway behind it, continues the same trace.
//!
//! A session has a span of its own too; a call links to it rather than being
//! its child, because a call's parent is the client's span, and a session that
//! lasts all day would otherwise make one day-long trace of every call.
//!
//! The spans are `tracing` spans with the target [`TARGET`]; the
//! `tracing-opentelemetry` layer [`layer`] builds turns those (and only those:
//! no log events, no other spans) into OpenTelemetry spans. It is installed
//! only when spans are exported; trace context is propagated either way (see
//! [`stamp`]). Export is off unless the config's `telemetry.otlp_endpoint`
//! or the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector (OTLP over HTTP/protobuf;
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off). Both,
//! because a daemon started by a shim gets only an allow-listed environment
//! (never the terminal's `OTEL_*`): the file is what reaches it however it
//! starts, and the variables are what a service manager or container sets.
//! Attributes name the method, tool, server and session; never arguments,
//! results or secrets.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The `tracing` target of the spans that become OpenTelemetry spans.
pub const TARGET: &str = "mcp_gateway::trace";

/// The W3C trace context keys, in `_meta` and as HTTP headers.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// How long one export may take (`OTEL_EXPORTER_OTLP_TIMEOUT` may shorten it:
/// the exporter applies its own timeout inside this one).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether spans are exported. When not, a call makes no spans at all (they
/// cost more than the rest of a call's hop together): the gateway passes the
/// client's trace context on unchanged, as a hop that records nothing should,
/// and starts one only for a client that sent none (see [`stamp`]).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// The tracer provider, kept to flush and stop the exporter at shutdown.
pub struct Exporter {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Exporter {
    /// Flushes what is queued and stops the exporter, waiting at most `within`
    /// (a collector that does not answer must not hold the daemon's exit).
    /// Blocks: call it off the runtime's workers, which the export itself needs.
    pub fn shutdown(self, within: Duration) {
        if !self.exporting {
            return;
        }
        if let Err(e) = self.provider.shutdown_with_timeout(within) {
            tracing::warn!("the trace exporter did not flush within {within:?}: {e}");
        }
    }
}

/// Where spans go, when anywhere: the standard environment variables (the
/// exporter reads them itself), else `configured` (the config file's
/// `telemetry.otlp_endpoint`, a base URL). `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none` turn export off either way.
enum Destination {
    Off,
    Environment(String),
    Configured(String),
}

fn destination(configured: Option<&str>) -> Destination {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return Destination::Off;
    }
    if let Some(endpoint) = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        return Destination::Environment(endpoint);
    }
    match configured.filter(|c| !c.trim().is_empty()) {
        Some(base) => Destination::Configured(format!("{}/v1/traces", base.trim_end_matches('/'))),
        None => Destination::Off,
    }
}

/// The layer that makes this crate's trace spans OpenTelemetry spans, and the
/// exporter to shut down with the daemon. `runtime` runs the exports (see
/// [`RuntimeClient`]). No layer when nothing is exported: no span of a call is
/// made then, and a layer installed only to see the session's and the
/// backends' spans entered and left, on every poll of their tasks, cost
/// 3,000 to 6,000 instructions per call (its filter looks each span up on
/// each enter and exit).
pub fn layer<S>(
    runtime: tokio::runtime::Handle,
    configured: Option<&str>,
) -> (Option<impl Layer<S> + Send + Sync>, Exporter)
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let mut builder = SdkTracerProvider::builder();
    let mut exporting = false;
    let mut problem = None;
    let (endpoint, from_config) = match destination(configured) {
        Destination::Off => (None, None),
        Destination::Environment(endpoint) => (Some(endpoint), None),
        Destination::Configured(endpoint) => (Some(endpoint.clone()), Some(endpoint)),
    };
    if endpoint.is_some() {
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(RuntimeClient::new(runtime));
        if let Some(endpoint) = from_config {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter.build();
        match exporter {
            Ok(exporter) => {
                builder = builder.with_batch_exporter(exporter);
                exporting = true;
            }
            // The error may quote the endpoint, which may carry credentials.
            Err(e) => {
                problem = endpoint.as_deref().map(|raw| e.to_string().replace(raw, &crate::redact::redacted_url(raw)))
            }
        }
    }
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("mcp-gateway");
    }
    let resource =
        resource.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    let provider = builder.with_resource(resource).build();
    let layer = exporting.then(|| spans_layer(&provider));
    // Said once the log is set up (by whoever installs the layer).
    let report = Report { endpoint: endpoint.map(|e| crate::redact::redacted_url(&e)), problem };
    REPORT.get_or_init(|| report);
    EXPORTING.store(exporting, std::sync::atomic::Ordering::Relaxed);
    (layer, Exporter { provider, exporting })
}

/// The `tracing-opentelemetry` layer, for this crate's trace spans only.
fn spans_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + use<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let filter = tracing_subscriber::filter::Targets::new().with_target(TARGET, tracing::Level::TRACE);
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("mcp-gateway"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        .with_target(false)
        .with_filter(filter)
}

/// What [`layer`] decided, for [`log_setup`].
struct Report {
    endpoint: Option<String>,
    problem: Option<String>,
}

static REPORT: std::sync::OnceLock<Report> = std::sync::OnceLock::new();

/// Logs whether spans are exported, and where (without the URL's secrets).
pub fn log_setup() {
    match REPORT.get() {
        Some(Report { endpoint: Some(endpoint), problem: None }) => {
            tracing::info!(endpoint, "exporting trace spans over OTLP/HTTP")
        }
        Some(Report { endpoint: Some(endpoint), problem: Some(problem) }) => tracing::warn!(
            endpoint,
            "not exporting trace spans: the OTLP exporter could not be set up: {problem} \
             (only OTLP over HTTP/protobuf is built in)"
        ),
        _ => tracing::debug!(
            "trace export is off (set `telemetry.otlp_endpoint` in the config, or OTEL_EXPORTER_OTLP_ENDPOINT)"
        ),
    }
}

/// The exporter's HTTP client: the daemon's reqwest, on the daemon's runtime.
///
/// The SDK's batch processor exports from a thread of its own, outside any
/// tokio runtime; each request is spawned onto the daemon's runtime and
/// awaited from there. This also spares a second reqwest (the exporter's own
/// client is built on another major version).
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeClient {
    fn new(runtime: tokio::runtime::Handle) -> Self {
        let client = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build().unwrap_or_default();
        Self { client, runtime }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let exchange = async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut answer = http::Response::new(body);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok::<_, reqwest::Error>(answer)
        };
        Ok(self.runtime.spawn(exchange).await??)
    }
}

/// `params._meta`, read as a trace context carrier.
struct MetaReader<'a>(Option<&'a Map<String, Value>>);

impl Extractor for MetaReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0?.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.map(|meta| meta.keys().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// `params._meta`, written as a trace context carrier.
struct MetaWriter<'a>(&'a mut Map<String, Value>);

impl Injector for MetaWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes an empty `tracestate` for a trace without one.
        if value.is_empty() {
            return;
        }
        self.0.insert(key.to_string(), Value::String(value));
    }
}

fn meta(params: &Value) -> Option<&Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

/// The name a span of `method` gets: `{method} {tool or prompt}` where there is one.
fn target_of<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    matches!(method, "tools/call" | "prompts/get").then(|| params.get("name").and_then(Value::as_str)).flatten()
}

fn span_name(method: &str, target: Option<&str>) -> String {
    match target {
        Some(target) => format!("{method} {target}"),
        None => method.to_string(),
    }
}

/// The span of one client request: a child of the client's span when its
/// `params._meta` carries a valid `traceparent`, else a new trace; linked to
/// the session's span (the current one). The log shows its name; the rest
/// are attributes of the exported span only.
pub fn call_span(method: &str, params: &Value, session: u64, request_id: &Value) -> Span {
    if !exporting() {
        return Span::none();
    }
    let target = target_of(method, params);
    let session_span = Span::current().context().span().span_context().clone();
    let span = tracing::info_span!(target: TARGET, "call", otel.name = span_name(method, target), otel.kind = "server");
    // From an empty context, not the current one (`extract` would keep the
    // session's span when there is nothing valid to extract); always set, as
    // without it the call would be the session span's child.
    let empty = opentelemetry::Context::new();
    let _ = span.set_parent(TraceContextPropagator::new().extract_with_context(&empty, &MetaReader(meta(params))));
    if session_span.is_valid() {
        span.add_link(session_span);
    }
    describe(&span, method, params);
    span.set_attribute("mcp.session.id", session.to_string());
    span.set_attribute("jsonrpc.request.id", request_id.to_string());
    span
}

/// The span of one session, for its calls to link to: the `session` span
/// every log line of the session is in, exported too.
pub fn session_span(session: u64, client_pid: Option<u32>) -> Span {
    let span = tracing::info_span!(target: TARGET, "session", id = session, client_pid);
    span.set_attribute("mcp.session.id", session.to_string());
    span
}

/// The span of one request to a backend, a child of the current (call) span.
pub fn backend_span(server: &str, method: &str, params: &Value) -> Span {
    if !exporting() {
        return Span::none();
    }
    let target = target_of(method, params);
    let name = span_name(method, target);
    let span = tracing::info_span!(target: TARGET, "request", otel.name = name, otel.kind = "client", server);
    describe(&span, method, params);
    span.set_attribute("mcp_gateway.server", server.to_string());
    span
}

/// The attributes of a request span: the method, and the tool or prompt.
fn describe(span: &Span, method: &str, params: &Value) {
    span.set_attribute("mcp.method.name", method.to_string());
    match (method, target_of(method, params)) {
        ("tools/call", Some(tool)) => span.set_attribute("gen_ai.tool.name", tool.to_string()),
        ("prompts/get", Some(prompt)) => span.set_attribute("gen_ai.prompt.name", prompt.to_string()),
        _ => {}
    }
}

/// Marks `span` failed: with a JSON-RPC error's `code`, or `None` when no
/// answer came (the backend failed, or the request timed out). Never the
/// error's message: a server may echo arguments there.
pub fn failed(span: &Span, code: Option<i64>) {
    let description = match code {
        Some(code) => {
            span.set_attribute("rpc.response.status_code", code.to_string());
            span.set_attribute("error.type", code.to_string());
            format!("JSON-RPC error {code}")
        }
        None => {
            span.set_attribute("error.type", "no_answer");
            "no answer".to_string()
        }
    };
    span.set_status(opentelemetry::trace::Status::error(description));
}

/// Marks `span` failed when `response` is a JSON-RPC error.
pub fn failed_if_error(span: &Span, response: &Value) {
    if let Some(error) = response.get("error") {
        failed(span, Some(error.get("code").and_then(Value::as_i64).unwrap_or_default()));
    }
}

/// Writes `span`'s trace context into `params._meta` (`traceparent`, and
/// `tracestate` when the trace has one), replacing what the client had there;
/// every other field stays as it was. Params that are not an object (or
/// absent) are left alone unless absent, which becomes `{"_meta": …}`.
///
/// With export off there is no span: a valid client context goes on as it
/// is, and a request without one (or with a malformed one) gets a new trace.
pub fn stamp(params: &mut Value, span: &Span) {
    /// What goes into `_meta`: the recorded span's context, or a new trace.
    enum Stamp {
        Span(opentelemetry::Context),
        Started(String),
    }
    let stamp = if exporting() {
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return;
        }
        Stamp::Span(context)
    } else {
        match unrecorded_traceparent(params) {
            Some(started) => Stamp::Started(started),
            None => return,
        }
    };
    if params.is_null() {
        *params = Value::Object(Map::new());
    }
    let Some(params) = params.as_object_mut() else { return };
    let meta = params.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    meta.remove(TRACEPARENT);
    meta.remove(TRACESTATE);
    match stamp {
        Stamp::Span(context) => TraceContextPropagator::new().inject_context(&context, &mut MetaWriter(meta)),
        Stamp::Started(traceparent) => {
            meta.insert(TRACEPARENT.to_string(), Value::String(traceparent));
        }
    }
}

/// The `traceparent` a request gets when no span is recorded: `None` when its
/// own `_meta` carries a valid one already (left as it is), else a new trace,
/// sampled so that a backend that traces records it. Most requests carry none,
/// so this is on the path of nearly every call: no context is built for them.
fn unrecorded_traceparent(params: &Value) -> Option<String> {
    if meta(params).is_some_and(|meta| meta.contains_key(TRACEPARENT)) {
        let theirs = TraceContextPropagator::new().extract(&MetaReader(meta(params)));
        if theirs.span().span_context().is_valid() {
            return None;
        }
    }
    let trace_id = rand::random::<u128>().max(1);
    let span_id = rand::random::<u64>().max(1);
    Some(format_traceparent(trace_id, span_id))
}

/// `00-{trace id}-{span id}-01` in lowercase hex, written digit by digit:
/// through `format!` and the ids' `Display` it was a third of what
/// starting a trace cost, and that runs for nearly every call.
fn format_traceparent(trace_id: u128, span_id: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    out.extend((0..32).rev().map(|i| HEX[((trace_id >> (i * 4)) & 0xf) as usize] as char));
    out.push('-');
    out.extend((0..16).rev().map(|i| HEX[((span_id >> (i * 4)) & 0xf) as usize] as char));
    out.push_str("-01");
    out
}

/// For a request that came over HTTP (the front door): the `traceparent` and
/// `tracestate` headers, moved into its `params._meta` unless that has a
/// `traceparent` of its own, so that a client tracing HTTP rather than MCP is
/// the call's parent too. Nothing is checked here: a malformed one is ignored
/// where calls read it ([`call_span`]). Says whether `message` changed.
pub fn adopt_headers(message: &mut Value, headers: &http::HeaderMap) -> bool {
    let Some(traceparent) = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()) else { return false };
    if message.get("method").is_none() || message.get("id").is_none() {
        return false;
    }
    let Some(object) = message.as_object_mut() else { return false };
    let params = object.entry("params").or_insert_with(|| Value::Object(Map::new()));
    let Some(params) = params.as_object_mut() else { return false };
    let meta = params.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return false };
    if meta.contains_key(TRACEPARENT) {
        return false;
    }
    meta.insert(TRACEPARENT.to_string(), Value::from(traceparent));
    if let Some(tracestate) = headers.get(TRACESTATE).and_then(|v| v.to_str().ok()) {
        meta.insert(TRACESTATE.to_string(), Value::from(tracestate));
    }
    true
}

/// The trace context headers for an HTTP request carrying `message`: the ones
/// in its `params._meta` (written by [`stamp`]).
pub fn headers_of(message: &Value) -> impl Iterator<Item = (&'static str, &str)> {
    let meta = message.get("params").and_then(meta);
    [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(move |key| meta.and_then(|m| m.get(key)).and_then(Value::as_str).map(|v| (key, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tracing_subscriber::layer::SubscriberExt;

    /// Whether spans are exported is one flag for the process, and `cargo
    /// test` runs these tests on threads of one process: each test that
    /// depends on it holds this while it runs.
    static EXPORT_FLAG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn export_flag() -> std::sync::MutexGuard<'static, ()> {
        EXPORT_FLAG.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spans as when exporting; export is off again afterwards.
    fn with_layer(test: impl FnOnce()) {
        let _flag = export_flag();
        let provider = SdkTracerProvider::builder().build();
        let layer = spans_layer(&provider);
        EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, test);
        EXPORTING.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    fn traceparent(params: &Value) -> Vec<String> {
        params["_meta"]["traceparent"].as_str().expect("a traceparent").split('-').map(String::from).collect()
    }

    #[test]
    fn a_started_traceparent_is_written_as_the_ids_display_them() {
        use opentelemetry::trace::{SpanId, TraceId};
        for (trace, span) in
            [(1u128, 1u64), (0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7), (u128::MAX, u64::MAX)]
        {
            let expected = format!("00-{}-{}-01", TraceId::from(trace), SpanId::from(span));
            assert_eq!(format_traceparent(trace, span), expected);
        }
    }

    #[test]
    fn with_export_off_a_clients_context_goes_on_unchanged_and_a_missing_one_is_started() {
        let _flag = export_flag();
        let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut params = json!({"name": "echo", "_meta": {"traceparent": client, "tracestate": "vendor=x"}});
        let before = params.clone();
        stamp(&mut params, &Span::none());
        assert_eq!(params, before, "passed on as it came");

        let mut params = json!({"name": "echo"});
        stamp(&mut params, &Span::none());
        let started = traceparent(&params);
        assert_eq!((started[0].as_str(), started[3].as_str()), ("00", "01"), "{params}");
        assert!(started[1].len() == 32 && started[1] != "0".repeat(32), "{params}");

        let mut params = json!({"_meta": {"traceparent": "00-nonsense", "tracestate": "stale=1", "progressToken": 1}});
        stamp(&mut params, &Span::none());
        assert_eq!(traceparent(&params).len(), 4, "a malformed one is replaced: {params}");
        assert!(params["_meta"].get("tracestate").is_none() && params["_meta"]["progressToken"] == 1, "{params}");
        assert!(call_span("tools/call", &params, 1, &json!(1)).is_none(), "no span is made");
    }

    #[test]
    fn a_call_continues_the_clients_trace_and_keeps_its_other_meta_fields() {
        with_layer(|| {
            let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let params =
                json!({"name": "echo", "_meta": {"traceparent": client, "tracestate": "vendor=x", "progressToken": 7}});
            let call = call_span("tools/call", &params, 1, &json!(3));
            let backend = call.in_scope(|| backend_span("srv", "tools/call", &params));
            let mut sent = params.clone();
            stamp(&mut sent, &backend);
            let parts = traceparent(&sent);
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
            assert_ne!(parts[2], "00f067aa0ba902b7", "a span of our own");
            assert_eq!(parts[3], "01");
            assert_eq!(sent["_meta"]["tracestate"], "vendor=x");
            assert_eq!(sent["_meta"]["progressToken"], 7);
            assert_eq!(sent["name"], "echo");
        });
    }

    #[test]
    fn a_malformed_or_missing_traceparent_starts_a_new_trace() {
        with_layer(|| {
            for meta in [json!({"traceparent": "garbage", "tracestate": "vendor=x"}), json!({}), json!("not an object")]
            {
                let params = json!({"name": "echo", "_meta": meta});
                let call = call_span("tools/call", &params, 1, &json!(1));
                let backend = call.in_scope(|| backend_span("srv", "tools/call", &params));
                let mut sent = json!({"name": "echo", "_meta": {"traceparent": "garbage", "tracestate": "vendor=x"}});
                stamp(&mut sent, &backend);
                let parts = traceparent(&sent);
                assert_eq!(parts[1].len(), 32);
                assert_ne!(parts[1], "0".repeat(32));
                assert!(sent["_meta"].get("tracestate").is_none(), "a stale tracestate goes with its traceparent");
            }
            let mut absent = Value::Null;
            stamp(&mut absent, &backend_span("srv", "ping", &Value::Null));
            assert_eq!(traceparent(&absent).len(), 4);
        });
    }

    #[test]
    fn a_call_without_a_traceparent_is_a_root_not_the_sessions_child() {
        with_layer(|| {
            let session = session_span(1, None);
            let session_trace = session.context().span().span_context().trace_id();
            let call = session.in_scope(|| call_span("tools/call", &json!({"name": "echo"}), 1, &json!(1)));
            let backend = call.in_scope(|| backend_span("srv", "tools/call", &Value::Null));
            let mut sent = Value::Null;
            stamp(&mut sent, &backend);
            assert_ne!(traceparent(&sent)[1], session_trace.to_string());
        });
    }

    #[test]
    fn a_request_over_http_takes_the_headers_unless_its_meta_has_a_traceparent() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static("00-a-b-01"));
        headers.insert("tracestate", http::HeaderValue::from_static("v=1"));
        let mut bare = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}});
        assert!(adopt_headers(&mut bare, &headers));
        assert_eq!(bare["params"]["_meta"], json!({"traceparent": "00-a-b-01", "tracestate": "v=1"}));
        assert_eq!(bare["params"]["name"], "x");
        let mut own = json!({"id": 1, "method": "ping", "params": {"_meta": {"traceparent": "mine"}}});
        assert!(!adopt_headers(&mut own, &headers));
        assert_eq!(own["params"]["_meta"], json!({"traceparent": "mine"}));
        let mut notification = json!({"method": "notifications/initialized"});
        assert!(!adopt_headers(&mut notification, &headers));
        assert!(notification.get("params").is_none());
    }

    #[test]
    fn the_http_headers_are_the_ones_in_meta() {
        let message = json!({"params": {"_meta": {"traceparent": "00-a-b-01", "other": "x"}}});
        assert_eq!(headers_of(&message).collect::<Vec<_>>(), vec![("traceparent", "00-a-b-01")]);
        assert_eq!(headers_of(&json!({"method": "x"})).count(), 0);
    }
}
