//! The id and progress-token rewriting of one backend connection
//! (`backend::pending::PendingTable`), driven by an arbitrary sequence of
//! registrations, answers, cancellations, progress notifications and backend
//! deaths, checked against a model of what must happen:
//! - every request gets a fresh backend id, and its answer reaches its own
//!   receiver exactly once (never another's, never twice);
//! - a session's progress token is replaced by a gateway-unique one, and a
//!   progress notification carrying that token goes back to its owner only,
//!   with the owner's original token restored;
//! - nothing outlives its request: once everything is answered or forgotten
//!   the table is empty, progress routes included.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_gateway::backend::BackendError;
use mcp_gateway::backend::pending::{PendingTable, Reply};
use mcp_gateway::sink::{Outbound, SessionSink};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// A message as its session's writer would see it.
fn decoded(message: Outbound) -> Value {
    match message {
        Outbound::Line(line) => serde_json::from_slice(&line).expect("a queued line is JSON"),
        Outbound::Message { message, .. } => message,
    }
}

const SESSIONS: usize = 4;

#[derive(Arbitrary, Debug)]
enum Token {
    Int(i64),
    Str(String),
    Null,
    Float(f64),
    Object,
}

impl Token {
    fn value(&self) -> Value {
        match self {
            Token::Int(n) => json!(n),
            Token::Str(s) => json!(s),
            Token::Null => Value::Null,
            // NaN and infinities become null, as serde_json does.
            Token::Float(f) => json!(f),
            Token::Object => json!({"nested": [1, "x"]}),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Params {
    Empty,
    Null,
    NoToken,
    WithToken(Token),
    /// `_meta` that is not an object.
    OddMeta(Token),
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// The n-th request registered so far (mod their number).
    Known(u8),
    /// An id the table never gave out (or gave out and retired).
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum IdShape {
    Number,
    String,
    Float,
    Missing,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Register {
        session: Option<u8>,
        params: Params,
    },
    Complete {
        target: Target,
        shape: IdShape,
    },
    Forget(Target),
    Progress {
        target: Target,
        raw_token: Option<String>,
    },
    /// The caller gives up without telling the table (its receiver is dropped).
    DropReceiver(Target),
    FailAll,
}

struct Request {
    id: u64,
    session: Option<usize>,
    /// The token the session sent, when the table took it over.
    original_token: Option<Value>,
    /// The token the backend saw.
    backend_token: Option<Value>,
    rx: Option<oneshot::Receiver<Reply>>,
    in_flight: bool,
    answered: bool,
}

struct Harness {
    table: PendingTable,
    sinks: Vec<SessionSink>,
    inboxes: Vec<mpsc::UnboundedReceiver<Outbound>>,
    requests: Vec<Request>,
    by_id: HashMap<u64, usize>,
}

impl Harness {
    fn new() -> Self {
        let (sinks, inboxes) = (0..SESSIONS)
            .map(|i| {
                let (tx, rx) = mpsc::unbounded_channel();
                (SessionSink::new(i as u64 + 100, tx), rx)
            })
            .unzip();
        Self { table: PendingTable::default(), sinks, inboxes, requests: Vec::new(), by_id: HashMap::new() }
    }

    fn pick(&self, target: &Target) -> Option<u64> {
        match target {
            Target::Known(n) if !self.requests.is_empty() => {
                Some(self.requests[usize::from(*n) % self.requests.len()].id)
            }
            Target::Known(_) => None,
            Target::Raw(id) => Some(*id),
        }
    }

    fn in_flight(&self, id: u64) -> Option<usize> {
        self.by_id.get(&id).copied().filter(|&i| self.requests[i].in_flight)
    }

    fn register(&mut self, session: Option<u8>, params: &Params) {
        let session = session.map(|s| usize::from(s) % SESSIONS);
        let mut value = match params {
            Params::Empty => json!({}),
            Params::Null => Value::Null,
            Params::NoToken => json!({"name": "t", "_meta": {"other": 1}}),
            Params::WithToken(t) => json!({"name": "t", "_meta": {"progressToken": t.value(), "other": 1}}),
            Params::OddMeta(t) => json!({"_meta": t.value()}),
        };
        let before = value.clone();
        let (id, rx) = self.table.register(session.map(|s| &self.sinks[s]), &mut value, None);
        assert!(!self.by_id.contains_key(&id), "backend id {id} given out twice");
        assert!(self.table.is_in_flight(id));
        assert_eq!(self.table.session_of(id), session.map(|s| self.sinks[s].id));

        let token = before.get("_meta").and_then(|m| m.get("progressToken")).cloned();
        let (original_token, backend_token) = match (session, token) {
            (Some(_), Some(original)) => {
                let now = value["_meta"]["progressToken"].clone();
                assert!(now.is_string(), "the backend's token is a string: {now}");
                // The backend sees the gateway's token for this request. A client
                // may have picked that very string for its own; then the two are
                // equal and it is still the gateway's (routed by the table, and
                // the client gets its own back), so equality alone is no leak.
                let minted = json!(format!("mcp-gateway-{id}"));
                assert_eq!(now, minted, "the backend's token is the gateway's own for request {id}");
                assert!(
                    self.requests.iter().all(|r| r.backend_token.as_ref() != Some(&now)),
                    "progress token {now} given out twice"
                );
                // Only the token changed.
                let mut restored = value.clone();
                restored["_meta"]["progressToken"] = original.clone();
                assert_eq!(restored, before);
                (Some(original), Some(now))
            }
            _ => {
                assert_eq!(value, before, "params changed without a token to take over");
                (None, None)
            }
        };
        self.by_id.insert(id, self.requests.len());
        self.requests.push(Request {
            id,
            session,
            original_token,
            backend_token,
            rx: Some(rx),
            in_flight: true,
            answered: false,
        });
    }

    fn retire(&mut self, i: usize) {
        self.requests[i].in_flight = false;
    }

    fn complete(&mut self, id: u64, shape: &IdShape) {
        let response = match shape {
            IdShape::Number => json!({"jsonrpc": "2.0", "id": id, "result": {"for": id}}),
            IdShape::String => json!({"jsonrpc": "2.0", "id": id.to_string(), "result": {}}),
            IdShape::Float => json!({"jsonrpc": "2.0", "id": id as f64 + 0.5, "result": {}}),
            IdShape::Missing => json!({"jsonrpc": "2.0", "result": {}}),
        };
        let owner = matches!(shape, IdShape::Number).then(|| self.in_flight(id)).flatten();
        let delivered = self.table.complete(response.clone());
        assert_eq!(delivered, owner.is_some(), "complete({response}) with owner {owner:?}");
        if let Some(i) = owner {
            assert!(!self.requests[i].answered, "request {id} answered twice");
            self.retire(i);
            let request = &mut self.requests[i];
            if let Some(rx) = &mut request.rx {
                let reply = rx.try_recv().expect("the answer reached its caller");
                assert_eq!(reply.expect("an answer, not an error").into_value(), response);
                request.answered = true;
            }
        }
        self.check_no_stray_replies();
    }

    fn forget(&mut self, id: u64) {
        let owner = self.in_flight(id);
        assert_eq!(self.table.forget(id), owner.is_some());
        if let Some(i) = owner {
            self.retire(i);
        }
        assert!(!self.table.is_in_flight(id));
    }

    fn progress(&mut self, target: &Target, raw_token: Option<String>) {
        // The backend names a token it was given, or one of its own making.
        let (token, owner) = match raw_token {
            Some(raw) => {
                let owner = self.requests.iter().position(|r| {
                    r.in_flight && r.backend_token.as_ref().and_then(Value::as_str) == Some(raw.as_str())
                });
                (Value::String(raw), owner)
            }
            None => {
                let Some(id) = self.pick(target) else { return };
                let Some(&i) = self.by_id.get(&id) else { return };
                let Some(token) = self.requests[i].backend_token.clone() else { return };
                (token, self.requests[i].in_flight.then_some(i))
            }
        };
        let mut params = json!({"progressToken": token, "progress": 1, "total": 2});
        let sink = self.table.route_progress(&mut params);
        match owner {
            Some(i) => {
                let request = &self.requests[i];
                let sink = sink.expect("progress for a request in flight is routed");
                let session = request.session.expect("only session requests have routes");
                assert_eq!(sink.id, self.sinks[session].id, "progress went to another session");
                assert_eq!(Some(&params["progressToken"]), request.original_token.as_ref(), "token not restored");
                assert_eq!(params["progress"], 1);
                // The sink is the owner's connection.
                assert!(sink.send(json!({"marker": request.id})));
                let got = decoded(self.inboxes[session].try_recv().expect("the owner's inbox"));
                assert_eq!(got["marker"], request.id);
            }
            None => {
                assert!(sink.is_none(), "progress for {token} routed with no request in flight");
                assert_eq!(params["progressToken"], token, "params changed for an unknown token");
            }
        }
    }

    fn drop_receiver(&mut self, id: u64) {
        if let Some(&i) = self.by_id.get(&id) {
            self.requests[i].rx = None;
        }
    }

    fn fail_all(&mut self) {
        self.table.fail_all(&BackendError::Closed { server: "fuzz".into() });
        for request in &mut self.requests {
            if std::mem::replace(&mut request.in_flight, false)
                && let Some(rx) = &mut request.rx
            {
                assert!(rx.try_recv().expect("every caller hears of the failure").is_err());
                request.answered = true;
            }
        }
        assert_eq!(self.table.len(), (0, 0));
        self.check_no_stray_replies();
    }

    /// No receiver holds an answer it was not given by the checks above.
    fn check_no_stray_replies(&mut self) {
        for request in &mut self.requests {
            if let Some(rx) = &mut request.rx {
                match rx.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => assert!(request.in_flight, "retired but not closed"),
                    Err(oneshot::error::TryRecvError::Closed) => assert!(!request.in_flight, "closed in flight"),
                    Ok(reply) => panic!("request {} got a reply nobody sent it: {reply:?}", request.id),
                }
            }
        }
    }

    fn check_counts(&self) {
        let calls = self.requests.iter().filter(|r| r.in_flight).count();
        let routes = self.requests.iter().filter(|r| r.in_flight && r.backend_token.is_some()).count();
        assert_eq!(self.table.len(), (calls, routes));
        let mut sessions: Vec<u64> = self.table.sessions_in_flight().into_iter().collect();
        sessions.sort_unstable();
        let mut want: Vec<u64> =
            self.requests.iter().filter(|r| r.in_flight).filter_map(|r| r.session.map(|s| self.sinks[s].id)).collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(sessions, want);
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut h = Harness::new();
    for op in ops.iter().take(256) {
        match op {
            Op::Register { session, params } => h.register(*session, params),
            Op::Complete { target, shape } => {
                if let Some(id) = h.pick(target) {
                    h.complete(id, shape);
                }
            }
            Op::Forget(target) => {
                if let Some(id) = h.pick(target) {
                    h.forget(id);
                }
            }
            Op::Progress { target, raw_token } => h.progress(target, raw_token.clone()),
            Op::DropReceiver(target) => {
                if let Some(id) = h.pick(target) {
                    h.drop_receiver(id);
                }
            }
            Op::FailAll => h.fail_all(),
        }
        h.check_counts();
    }

    // Answer or forget whatever is left: the table must end empty.
    let left: Vec<(u64, bool)> =
        h.requests.iter().enumerate().filter(|(_, r)| r.in_flight).map(|(i, r)| (r.id, i % 2 == 0)).collect();
    for (id, answer) in left {
        if answer { h.complete(id, &IdShape::Number) } else { h.forget(id) }
    }
    assert_eq!(h.table.len(), (0, 0), "entries outlived their requests");
    assert!(h.table.is_empty());
    assert!(h.table.sessions_in_flight().is_empty());
    h.check_no_stray_replies();
    for inbox in &mut h.inboxes {
        assert!(inbox.try_recv().is_err(), "a session got a message nobody routed to it");
    }
});
