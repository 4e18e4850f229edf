//! The routing rules through the gateway's own [`BackendHandler`] (`Hooks`),
//! in-process: the backend is a fake (a [`Backend`] whose stdin is a channel
//! the test reads, and whose "stdout" is the test calling the handler), the
//! sessions are sinks the test reads. What the end-to-end tests show with real
//! servers and clients, these pin down one rule at a time, in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Gateway, Hooks, LogLevel, SessionInfo};
use crate::backend::{Backend, BackendHandler, Identity, SharingKey};
use crate::sink::{Outbound, SessionSink};

/// A gateway with one server `s`, a fake running instance of it, and its stdin.
struct Fixture {
    gateway: Arc<Gateway>,
    hooks: Hooks,
    backend: Arc<Backend>,
    stdin: mpsc::UnboundedReceiver<Vec<u8>>,
    _home: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let home = tempfile::tempdir().expect("temp dir");
        let yaml = "servers:\n  s:\n    command: \"true\"\n".to_string();
        let config_path = home.path().join("config.yaml");
        std::fs::write(&config_path, &yaml).expect("write config");
        let config = crate::config::Config::parse(&config_path, &yaml).expect("config");
        let cache = crate::catalog::ListingCache::load(&home.path().join("catalog.json"));
        let gateway = Gateway::new(config, &config_path, Some(config_path.clone()), cache);
        let identity = Identity { server: "s".into(), key: SharingKey("global".into()), instance: "0".into(), lane: 0 };
        let (writer, stdin) = mpsc::unbounded_channel();
        let backend = Arc::new(Backend::new(identity, gateway.config().servers["s"].clone(), None, writer));
        let hooks = Hooks { gateway: Arc::downgrade(&gateway) };
        Fixture { gateway, hooks, backend, stdin, _home: home }
    }

    /// A connected session that declared `capabilities`, and what reaches its client.
    fn session(&self, capabilities: Value) -> (SessionInfo, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = SessionSink::new(self.gateway.next_session_id(), tx);
        let context = self.gateway.session_context(Some(self._home.path()), None).expect("context");
        let info = SessionInfo::new(sink, context, None, Default::default());
        self.gateway.register_session(info.clone());
        self.gateway.set_client_info(info.id, Some("test".into()), "2025-11-25", capabilities);
        (info, rx)
    }

    /// Starts a call of `session` on the backend and waits until the backend has it.
    async fn call(&mut self, session: &SessionInfo) -> tokio::task::JoinHandle<()> {
        let (backend, sink) = (self.backend.clone(), session.sink.clone());
        let call = tokio::spawn(async move {
            let _ = backend.request("tools/call", json!({"name": "t"}), Some(&sink)).await;
        });
        let line = self.written().await.expect("the call reaches the backend");
        assert_eq!(line["method"], "tools/call");
        call
    }

    /// The next line the gateway wrote to the backend.
    async fn written(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(Duration::from_secs(5), self.stdin.recv()).await.ok()??;
        serde_json::from_slice(&line).ok()
    }
}

/// What has reached a session's client so far.
fn received(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> Vec<Value> {
    let mut messages = Vec::new();
    while let Ok(outbound) = rx.try_recv() {
        messages.push(match outbound {
            Outbound::Line(line) => serde_json::from_slice(&line).expect("json line"),
            Outbound::Message { message, .. } => message,
        });
    }
    messages
}

fn sampling(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "sampling/createMessage",
           "params": {"messages": [], "maxTokens": 10}})
}

#[tokio::test]
async fn a_server_request_reaches_its_one_caller_and_the_answer_goes_back_under_the_backends_id() {
    let mut fixture = Fixture::new();
    let (caller, mut caller_rx) = fixture.session(json!({"sampling": {}}));
    let (_idle, mut idle_rx) = fixture.session(json!({"sampling": {}}));
    let call = fixture.call(&caller).await;
    fixture.hooks.on_request(&fixture.backend, sampling(0), None);
    let asked = received(&mut caller_rx);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["method"], "sampling/createMessage");
    assert_ne!(asked[0]["id"], json!(0), "the session sees the gateway's id, not the backend's");
    assert!(received(&mut idle_rx).is_empty(), "a session with no call in flight is never asked");
    let answer = json!({"jsonrpc": "2.0", "id": asked[0]["id"], "result": {"role": "assistant"}});
    fixture.gateway.on_client_response(caller.id, answer.clone());
    let relayed = fixture.written().await.expect("the answer reaches the backend");
    assert_eq!(relayed["id"], json!(0));
    assert_eq!(relayed["result"]["role"], "assistant");
    // A second answer to the same request, or one from another session, goes nowhere.
    fixture.gateway.on_client_response(caller.id, answer);
    assert!(fixture.stdin.try_recv().is_err());
    call.abort();
}

#[tokio::test]
async fn two_sessions_in_flight_make_a_server_request_ambiguous_and_it_is_refused() {
    let mut fixture = Fixture::new();
    let (first, mut first_rx) = fixture.session(json!({"sampling": {}}));
    let (second, mut second_rx) = fixture.session(json!({"sampling": {}}));
    let calls = [fixture.call(&first).await, fixture.call(&second).await];
    fixture.hooks.on_request(&fixture.backend, sampling(7), None);
    let refusal = fixture.written().await.expect("the backend gets an answer");
    assert_eq!(refusal["id"], json!(7));
    assert_eq!(refusal["error"]["code"], crate::jsonrpc::INVALID_REQUEST);
    let reason = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(reason.contains("2 clients") && reason.contains("serialize: true"), "{reason}");
    assert!(received(&mut first_rx).is_empty() && received(&mut second_rx).is_empty(), "nobody is guessed at");
    // Said on which request's stream it asked (HTTP), the request is exact again.
    fixture.hooks.on_request(&fixture.backend, sampling(8), Some(second.id));
    assert_eq!(received(&mut second_rx).len(), 1);
    assert!(received(&mut first_rx).is_empty());
    calls.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_caller_that_did_not_declare_sampling_is_not_asked() {
    let mut fixture = Fixture::new();
    let (caller, mut caller_rx) = fixture.session(json!({}));
    let call = fixture.call(&caller).await;
    fixture.hooks.on_request(&fixture.backend, sampling(3), None);
    let refusal = fixture.written().await.expect("the backend gets an answer");
    assert!(refusal["error"]["message"].as_str().is_some_and(|m| m.contains("did not declare sampling")));
    assert!(received(&mut caller_rx).is_empty());
    call.abort();
}

#[tokio::test]
async fn log_messages_reach_only_the_sessions_whose_level_admits_them() {
    let mut fixture = Fixture::new();
    let (verbose, mut verbose_rx) = fixture.session(json!({}));
    let (terse, mut terse_rx) = fixture.session(json!({}));
    let (silent, mut silent_rx) = fixture.session(json!({}));
    let calls = [fixture.call(&verbose).await, fixture.call(&terse).await, fixture.call(&silent).await];
    fixture.gateway.set_log_level(verbose.id, LogLevel::Debug);
    fixture.gateway.set_log_level(terse.id, LogLevel::Error);
    let log = |level: &str| json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": level, "data": "x"}});
    fixture.hooks.on_notification(&fixture.backend, log("info"));
    fixture.hooks.on_notification(&fixture.backend, log("critical"));
    let levels = |rx: &mut mpsc::UnboundedReceiver<Outbound>| -> Vec<String> {
        received(rx).iter().map(|m| m["params"]["level"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(levels(&mut verbose_rx), ["info", "critical"]);
    assert_eq!(levels(&mut terse_rx), ["critical"]);
    assert!(levels(&mut silent_rx).is_empty(), "a session that set no level gets no log messages");
    calls.iter().for_each(tokio::task::JoinHandle::abort);
}

/// The idle reaper's race: a backend the reaper found idle, which a call takes
/// before the reaper gets to stop it, is not stopped under that call (its
/// idleness is checked again under the lock the call takes it with). A real
/// process, since stopping one is what is at stake.
#[tokio::test]
async fn an_idle_backend_a_call_has_just_taken_is_not_stopped_under_it() {
    let home = tempfile::tempdir().expect("temp dir");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fixture_server.py");
    let yaml = format!("servers:\n  s:\n    command: python3\n    args: [\"{fixture}\", \"reaper\"]\n");
    let config_path = home.path().join("config.yaml");
    std::fs::write(&config_path, &yaml).expect("write config");
    let config = crate::config::Config::parse(&config_path, &yaml).expect("config");
    let cache = crate::catalog::ListingCache::load(&home.path().join("catalog.json"));
    let gateway = Gateway::new(config, &config_path, Some(config_path.clone()), cache);
    let (tx, _rx) = mpsc::unbounded_channel();
    let sink = SessionSink::new(gateway.next_session_id(), tx);
    let context = gateway.session_context(Some(home.path()), None).expect("context");
    let session = SessionInfo::new(sink, context, None, Default::default());
    gateway.register_session(session.clone());
    let server = gateway.config().servers["s"].clone();
    let backend = gateway.backend_of("s", &server, &session, 0).await.expect("the fixture starts");
    let (limit, grace) = (Duration::from_millis(100), Duration::from_secs(2));
    let idle_past_limit = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while backend.idle_for() < limit {
            assert!(tokio::time::Instant::now() < deadline, "idle for {:?}", backend.idle_for());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // The reaper finds it idle; a call takes it before the reaper stops it.
    idle_past_limit().await;
    let taken = gateway.backend_of("s", &server, &session, 0).await.expect("running");
    assert!(Arc::ptr_eq(&taken, &backend), "the call got the running instance");
    assert!(!gateway.pool.stop_idle(&backend.identity, limit, grace, |_| false).await, "stopped under a call");
    assert!(backend.is_alive());
    // Left alone past the limit, it is stopped.
    idle_past_limit().await;
    assert!(gateway.pool.stop_idle(&backend.identity, limit, grace, |_| false).await);
    assert!(!backend.is_alive(), "stopped");
    assert!(gateway.pool.running(&backend.identity).is_none());
    gateway.pool.shutdown(grace).await;
}

/// The sessions map gives back the room a crowd of sessions needed once they
/// have left: no entry outlives its session, and the capacity shrinks with
/// the map (1,000 sessions' map held 0.6 MB after all had left).
#[tokio::test]
async fn the_sessions_map_empties_and_shrinks_when_a_crowd_leaves() {
    let fixture = Fixture::new();
    let sessions: Vec<_> = (0..500).map(|_| fixture.session(json!({})).0).collect();
    let full = super::lock(&fixture.gateway.sessions).capacity();
    assert!(full >= 500, "capacity {full}");
    for session in &sessions {
        fixture.gateway.unregister_session(session.id);
    }
    assert_eq!(fixture.gateway.session_count(), 0);
    let left = super::lock(&fixture.gateway.sessions).capacity();
    assert!(left <= 8, "the emptied map kept room for {left} sessions (it had {full})");
}
