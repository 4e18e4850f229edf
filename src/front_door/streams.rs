//! One HTTP session's outgoing side: which stream each message of its gateway
//! session goes out on, and streams a client can resume.
//!
//! A request's answer and its progress go back on the POST that sent it;
//! anything else on the session's GET stream. Each event of a request's stream
//! carries an id (`<stream>-<n>`) and is kept until the answer has gone out, so
//! a client whose connection dropped mid-call (disconnecting is not cancelling)
//! GETs with `Last-Event-ID` and receives the rest, answer included.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::credentials::CredentialId;
use crate::jsonrpc::{self, Kind};
use crate::lock;

/// Messages kept for a session that has no GET stream open.
const BACKLOG: usize = 256;
/// Messages one stream holds for a client that is slow to read it or has not
/// come back yet; a client that falls this far behind has its session closed,
/// so it cannot grow the daemon.
pub(super) const STREAM_QUEUE: usize = 1024;
/// Answered streams kept for a client that may still resume them.
const UNCLAIMED: usize = 64;

/// What a stream's connection receives: the event id (none on the GET
/// stream), the message, and whether it is the answer that ends the stream.
pub(super) type Outgoing = (Option<String>, Value, bool);

/// One request's stream.
pub(super) struct RequestStream {
    pub number: u64,
    inner: Mutex<StreamInner>,
}

#[derive(Default)]
struct StreamInner {
    /// Every message so far, numbered from 1, for resumption.
    log: Vec<Value>,
    /// The connection reading the stream now, if one is.
    live: Option<mpsc::Sender<Outgoing>>,
    answered: bool,
}

/// What became of a message put on a request's stream.
enum Pushed {
    Sent,
    /// Kept for a client that is not connected now.
    Kept,
    /// The client is [`STREAM_QUEUE`] messages behind.
    Overflow,
}

impl RequestStream {
    fn push(&self, message: Value, answer: bool) -> Pushed {
        let mut inner = lock(&self.inner);
        if inner.log.len() == STREAM_QUEUE {
            return Pushed::Overflow;
        }
        inner.log.push(message.clone());
        inner.answered |= answer;
        let id = format!("{}-{}", self.number, inner.log.len());
        // After the answer nothing more comes: dropping the sender ends the stream.
        let live = if answer { inner.live.take() } else { inner.live.clone() };
        let Some(live) = live else { return Pushed::Kept };
        match live.try_send((Some(id), message, answer)) {
            Ok(()) => Pushed::Sent,
            Err(TrySendError::Full(_)) => Pushed::Overflow,
            Err(TrySendError::Closed(_)) => {
                inner.live = None;
                Pushed::Kept
            }
        }
    }

    /// A connection to read the stream from message `after + 1` on: what is
    /// kept is replayed at once, the rest follows as it comes.
    fn attach(&self, after: usize) -> mpsc::Receiver<Outgoing> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let mut inner = lock(&self.inner);
        let last = inner.log.len();
        for (n, message) in inner.log.iter().enumerate().skip(after) {
            let answer = inner.answered && n + 1 == last;
            let _ = tx.try_send((Some(format!("{}-{}", self.number, n + 1)), message.clone(), answer));
        }
        if !inner.answered {
            inner.live = Some(tx);
        }
        rx
    }

    fn is_live(&self) -> bool {
        lock(&self.inner).live.as_ref().is_some_and(|l| !l.is_closed())
    }
}

/// One HTTP session: the pipe into its gateway session and the open streams.
pub(super) struct HttpSession {
    pub id: String,
    /// The credential that opened the session: the only one it answers to.
    pub owner: CredentialId,
    pub to_gateway: mpsc::UnboundedSender<Vec<u8>>,
    /// Request id (as JSON text) → its stream, until the answer arrives.
    waiting: Mutex<HashMap<String, Arc<RequestStream>>>,
    /// Streams a client may still read or resume: waiting ones, and answered
    /// ones whose answer no connection has taken yet.
    streams: Mutex<BTreeMap<u64, Arc<RequestStream>>>,
    next_stream: AtomicU64,
    /// Progress token (as JSON text) → request id (as JSON text).
    tokens: Mutex<HashMap<String, String>>,
    get_stream: Mutex<Option<mpsc::Sender<Outgoing>>>,
    backlog: Mutex<VecDeque<Value>>,
    /// When the client last sent a request or a stream of its ended.
    last_active: Mutex<Instant>,
    /// The protocol version `initialize` settled on.
    pub protocol_version: std::sync::OnceLock<String>,
    pub closed: CancellationToken,
}

impl HttpSession {
    pub fn new(id: String, owner: CredentialId, to_gateway: mpsc::UnboundedSender<Vec<u8>>) -> Self {
        HttpSession {
            id,
            owner,
            to_gateway,
            waiting: Mutex::default(),
            streams: Mutex::default(),
            next_stream: AtomicU64::new(1),
            tokens: Mutex::default(),
            get_stream: Mutex::default(),
            backlog: Mutex::default(),
            last_active: Mutex::new(Instant::now()),
            protocol_version: std::sync::OnceLock::new(),
            closed: CancellationToken::new(),
        }
    }

    pub fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    /// Unused for `timeout`: nothing in flight, no stream open.
    pub fn idle_for(&self, timeout: Duration) -> bool {
        lock(&self.waiting).is_empty()
            && lock(&self.get_stream).as_ref().is_none_or(mpsc::Sender::is_closed)
            && lock(&self.last_active).elapsed() >= timeout
    }

    /// Ends the session: its gateway session ends with the pipe, and dropping
    /// the streams' senders ends the streams.
    pub fn close(&self) {
        self.closed.cancel();
        lock(&self.waiting).clear();
        lock(&self.streams).clear();
        lock(&self.tokens).clear();
        *lock(&self.get_stream) = None;
        lock(&self.backlog).clear();
    }

    fn overflow(&self) {
        warn!(
            session = self.id,
            "the HTTP client is {STREAM_QUEUE} messages behind on an event stream; closing its session"
        );
        self.close();
    }

    /// A stream for the request `key` (its id as JSON text), read by the
    /// returned receiver until its answer.
    pub fn open_request(
        &self,
        key: &str,
        progress_token: Option<&Value>,
    ) -> (Arc<RequestStream>, mpsc::Receiver<Outgoing>) {
        let number = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let stream = Arc::new(RequestStream { number, inner: Mutex::default() });
        let rx = stream.attach(0);
        lock(&self.waiting).insert(key.to_string(), stream.clone());
        lock(&self.streams).insert(number, stream.clone());
        if let Some(token) = progress_token {
            lock(&self.tokens).insert(token.to_string(), key.to_string());
        }
        (stream, rx)
    }

    /// Takes up a request stream again after `last_event_id` (`<stream>-<n>`).
    pub fn resume(&self, last_event_id: &str) -> Option<(Arc<RequestStream>, mpsc::Receiver<Outgoing>)> {
        let (number, after) = last_event_id.split_once('-')?;
        let (number, after) = (number.parse::<u64>().ok()?, after.parse::<usize>().ok()?);
        let stream = lock(&self.streams).get(&number).cloned()?;
        let rx = stream.attach(after);
        Some((stream, rx))
    }

    /// A connection stopped reading `stream`: forgotten once its answer went
    /// out; otherwise kept for a resumption (a few answered ones at most).
    pub fn detach(&self, stream: &RequestStream, answer_sent: bool) {
        self.touch();
        let mut streams = lock(&self.streams);
        if answer_sent {
            streams.remove(&stream.number);
            return;
        }
        let waiting: Vec<u64> = lock(&self.waiting).values().map(|s| s.number).collect();
        let unclaimed: Vec<u64> = streams.keys().filter(|n| !waiting.contains(n)).copied().collect();
        for number in unclaimed.iter().take(unclaimed.len().saturating_sub(UNCLAIMED)) {
            streams.remove(number);
        }
    }

    /// Forgets a request that never reached the gateway.
    pub fn abandon(&self, key: &str, stream: &RequestStream) {
        lock(&self.waiting).remove(key);
        lock(&self.streams).remove(&stream.number);
        lock(&self.tokens).retain(|_, r| r != key);
    }

    /// Opens the standalone GET stream (replacing an earlier one), starting
    /// with what was kept while none was open.
    pub fn open_get_stream(&self) -> mpsc::Receiver<Outgoing> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        for message in lock(&self.backlog).drain(..) {
            let _ = tx.try_send((None, message, false));
        }
        *lock(&self.get_stream) = Some(tx);
        rx
    }

    /// Sorts one message from the gateway session onto a stream.
    pub fn dispatch(&self, message: Value) {
        let key = message.get("id").map(Value::to_string);
        let (target, answer) = match jsonrpc::kind(&message) {
            Kind::Response => {
                let stream = key.as_ref().and_then(|k| lock(&self.waiting).remove(k));
                if let Some(key) = &key {
                    lock(&self.tokens).retain(|_, r| r != key);
                }
                (stream, true)
            }
            Kind::Notification if jsonrpc::method(&message) == "notifications/progress" => {
                let token = jsonrpc::params(&message).get("progressToken").map(Value::to_string);
                let request = token.and_then(|t| lock(&self.tokens).get(&t).cloned());
                (request.and_then(|r| lock(&self.waiting).get(&r).cloned()), false)
            }
            // A server request goes out on a POST stream still waiting for its
            // answer and read by a connection now (the call that caused it);
            // else on the GET stream, as it needs an answer soon.
            Kind::Request => (lock(&self.waiting).values().find(|s| s.is_live()).cloned(), false),
            // A modern listen stream's frames: on that request's stream.
            Kind::Notification if Self::subscription_of(&message).is_some() => {
                let listen = Self::subscription_of(&message).map(|id| id.to_string());
                (listen.and_then(|l| lock(&self.waiting).get(&l).cloned()), false)
            }
            _ => (None, false),
        };
        match target {
            Some(stream) => match stream.push(message, answer) {
                Pushed::Sent | Pushed::Kept => {}
                Pushed::Overflow => self.overflow(),
            },
            None => self.to_get_stream(message),
        }
    }

    fn subscription_of(message: &Value) -> Option<&Value> {
        jsonrpc::params(message).get("_meta")?.get(crate::era::SUBSCRIPTION_ID_KEY)
    }

    fn to_get_stream(&self, message: Value) {
        let Some(stream) = lock(&self.get_stream).clone() else { return self.keep(message) };
        match stream.try_send((None, message, false)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.overflow(),
            Err(TrySendError::Closed((_, message, _))) => self.keep(message),
        }
    }

    /// Keeps a message for the next GET stream (the newest [`BACKLOG`]).
    fn keep(&self, message: Value) {
        if self.closed.is_cancelled() {
            return;
        }
        let mut backlog = lock(&self.backlog);
        if backlog.len() == BACKLOG {
            backlog.pop_front();
        }
        backlog.push_back(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session() -> HttpSession {
        HttpSession::new("s".into(), CredentialId::new("digest".into(), "test"), mpsc::unbounded_channel().0)
    }

    #[test]
    fn a_dropped_connection_resumes_after_the_last_event_it_saw() {
        let session = session();
        let (stream, mut first) = session.open_request("7", Some(&json!("tok")));
        session.dispatch(
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","progress":1}}),
        );
        let (id, _, _) = first.try_recv().unwrap();
        assert_eq!(id.as_deref(), Some(&*format!("{}-1", stream.number)));
        drop(first);
        session.detach(&stream, false);
        session.dispatch(
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","progress":2}}),
        );
        session.dispatch(json!({"jsonrpc":"2.0","id":7,"result":{}}));
        let (_, mut resumed) = session.resume(id.as_deref().unwrap()).unwrap();
        let (_, progress, answer) = resumed.try_recv().unwrap();
        assert_eq!(progress["params"]["progress"], 2);
        assert!(!answer);
        let (_, result, answer) = resumed.try_recv().unwrap();
        assert_eq!(result["id"], 7);
        assert!(answer, "the answer ends the resumed stream");
        session.detach(&stream, true);
        assert!(session.resume(&format!("{}-0", stream.number)).is_none(), "a delivered stream is forgotten");
        assert!(lock(&session.waiting).is_empty() && lock(&session.tokens).is_empty());
    }

    #[test]
    fn a_client_that_stops_reading_a_stream_has_its_session_closed() {
        let session = session();
        // A request stream whose connection reads nothing.
        let (_stream, _unread) = session.open_request("1", Some(&json!("t")));
        for n in 0..STREAM_QUEUE {
            session.dispatch(
                json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":n}}),
            );
        }
        assert!(!session.closed.is_cancelled(), "a full queue is not yet too far behind");
        session.dispatch(
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":-1}}),
        );
        assert!(session.closed.is_cancelled(), "one more is: the session is closed");
        assert!(lock(&session.waiting).is_empty() && lock(&session.streams).is_empty(), "and lets go of everything");
    }

    #[test]
    fn a_server_request_goes_to_a_live_stream_else_the_get_stream() {
        let session = session();
        let (stream, rx) = session.open_request("1", None);
        drop(rx);
        session.detach(&stream, false);
        let mut get = session.open_get_stream();
        session.dispatch(json!({"jsonrpc":"2.0","id":"g1","method":"sampling/createMessage","params":{}}));
        assert_eq!(get.try_recv().unwrap().1["method"], "sampling/createMessage");
    }
}
