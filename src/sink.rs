//! A session's outbound queue: where everything for one client goes on its
//! way to that client's connection writer, whoever produced it (a backend's
//! reader, the gateway, the session itself).
//!
//! It sits below everything that sends to a session (backends, the gateway,
//! sessions, the HTTP front door), so none of them has to reach into another
//! for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::jsonrpc;

/// Identifies a client session inside the daemon.
pub type SessionId = u64;

/// A message on its way to a session's client.
///
/// Answers (the bulk of the bytes: tool results) are serialized when they are
/// queued, so the backlog knows its size in bytes at no extra cost: the writer
/// writes the line as it is instead of serializing it itself. Requests and
/// notifications stay JSON until written, because a modern client's front
/// rewrites or holds some of them (see `session::modern`); they are small, and
/// their size is counted without building a copy.
#[derive(Debug)]
pub enum Outbound {
    /// A serialized message, newline included.
    Line(Vec<u8>),
    /// A message the writer may still change, and its size when serialized.
    Message { message: Value, bytes: usize },
}

impl Outbound {
    fn new(message: Value) -> Self {
        match jsonrpc::kind(&message) {
            jsonrpc::Kind::Request | jsonrpc::Kind::Notification => {
                let bytes = serialized_len(&message);
                Outbound::Message { message, bytes }
            }
            _ => Outbound::Line(jsonrpc::to_line(&message)),
        }
    }

    /// What it holds the daemon to, in serialized bytes (the `Value` form takes
    /// more; the bound is on the client-visible size, which is what a limit can name).
    pub fn bytes(&self) -> usize {
        match self {
            Outbound::Line(line) => line.len(),
            Outbound::Message { bytes, .. } => *bytes,
        }
    }
}

/// The length of a message's JSON text and its newline, counted by a writer that keeps nothing.
fn serialized_len(message: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(1);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, message);
    count.0
}

/// Which bound a session's backlog went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// `limits.backlog_per_session`: this many messages were waiting.
    Messages(usize),
    /// `limits.backlog_bytes_per_session`: this many bytes were waiting.
    Bytes(usize),
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Overflow::Messages(limit) => write!(f, "{limit} messages behind, limits.backlog_per_session"),
            Overflow::Bytes(limit) => write!(f, "{limit} bytes behind, limits.backlog_bytes_per_session"),
        }
    }
}

/// Where messages for one session go (its connection's writer), and how far
/// behind its client is. Senders must never wait (a backend's reader feeds
/// many sessions), so the queue is unbounded but counted, in messages and in
/// bytes: past either limit the session is cut off, and a client that stops
/// reading cannot grow the daemon (a thousand unread 100 kB answers are well
/// under any message count, and 100 MB of memory).
#[derive(Debug, Clone)]
pub struct SessionSink {
    pub id: SessionId,
    tx: mpsc::UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
}

/// How far behind a session's client is, shared by its sink and its writer
/// (which must not hold a sender: the queue ends when the senders are gone).
#[derive(Debug)]
pub struct Backlog {
    /// Messages queued and not yet written.
    queued: AtomicUsize,
    /// Their serialized size.
    queued_bytes: AtomicUsize,
    limit: usize,
    limit_bytes: usize,
    /// Which limit was passed, set once, before `overflowed` is cancelled.
    reason: std::sync::OnceLock<Overflow>,
    overflowed: CancellationToken,
}

impl Backlog {
    /// The writer has taken a message off the queue.
    pub fn written(&self, message: &Outbound) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.queued_bytes.fetch_sub(message.bytes(), Ordering::Relaxed);
    }

    /// Cancelled when the session fell too far behind (see [`Backlog::overflow`]).
    pub fn overflowed(&self) -> &CancellationToken {
        &self.overflowed
    }

    /// Which limit the session went past, once it has.
    pub fn overflow(&self) -> Option<Overflow> {
        self.reason.get().copied()
    }

    fn cut_off(&self, reason: Overflow) {
        let _ = self.reason.set(reason);
        self.overflowed.cancel();
    }
}

impl SessionSink {
    pub fn new(id: SessionId, tx: mpsc::UnboundedSender<Outbound>) -> Self {
        Self::with_limits(id, tx, usize::MAX, usize::MAX)
    }

    /// A sink whose session is cut off once `limit` messages, or more than
    /// `limit_bytes` bytes, wait unwritten. One message larger than
    /// `limit_bytes` still goes to a client that has read everything before it
    /// (`max_message_bytes` bounds that one).
    pub fn with_limits(id: SessionId, tx: mpsc::UnboundedSender<Outbound>, limit: usize, limit_bytes: usize) -> Self {
        let backlog = Backlog {
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            limit,
            limit_bytes,
            reason: std::sync::OnceLock::new(),
            overflowed: CancellationToken::new(),
        };
        Self { id, tx, backlog: Arc::new(backlog) }
    }

    /// Queues a message for the session; false when the session is gone or
    /// too far behind.
    pub fn send(&self, message: Value) -> bool {
        if self.backlog.overflowed.is_cancelled() {
            return false;
        }
        self.queue(Outbound::new(message))
    }

    /// Queues an answer already serialized (newline included), as [`SessionSink::send`].
    pub fn send_line(&self, line: Vec<u8>) -> bool {
        if self.backlog.overflowed.is_cancelled() {
            return false;
        }
        self.queue(Outbound::Line(line))
    }

    fn queue(&self, message: Outbound) -> bool {
        let bytes = message.bytes();
        if self.backlog.queued.fetch_add(1, Ordering::Relaxed) >= self.backlog.limit {
            self.backlog.cut_off(Overflow::Messages(self.backlog.limit));
            return false;
        }
        let before = self.backlog.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before > 0 && before.saturating_add(bytes) > self.backlog.limit_bytes {
            self.backlog.cut_off(Overflow::Bytes(self.backlog.limit_bytes));
            return false;
        }
        self.tx.send(message).is_ok()
    }

    /// How far behind the session's client is.
    pub fn backlog(&self) -> Arc<Backlog> {
        self.backlog.clone()
    }

    /// Cancelled when the session fell too far behind.
    pub fn overflowed(&self) -> &CancellationToken {
        &self.backlog.overflowed
    }

    /// Which limit the session went past, once it has.
    pub fn overflow_reason(&self) -> Option<Overflow> {
        self.backlog.overflow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_backlog_is_bounded_in_bytes_as_well_as_messages() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = SessionSink::with_limits(1, tx, 100, 1100);
        let answer = |n: usize| json!({"jsonrpc": "2.0", "id": n, "result": {"text": "x".repeat(300)}});
        // Alone in the queue, even a message over the byte limit goes out.
        assert!(sink.send(json!({"jsonrpc": "2.0", "id": 0, "result": {"text": "y".repeat(5000)}})));
        let written = rx.try_recv().unwrap();
        assert!(matches!(&written, Outbound::Line(line) if line.len() > 5000 && line.ends_with(b"\n")));
        sink.backlog().written(&written);
        // Three answers of ~350 bytes fit under 1100; the fourth does not.
        for n in 1..=3 {
            assert!(sink.send(answer(n)), "answer {n}");
        }
        assert!(sink.overflow_reason().is_none());
        assert!(!sink.send(answer(4)));
        assert!(sink.overflowed().is_cancelled());
        assert_eq!(sink.overflow_reason(), Some(Overflow::Bytes(1100)));
        assert!(!sink.send(json!({"jsonrpc": "2.0", "method": "notifications/message"})), "cut off for good");
    }

    #[test]
    fn notifications_are_counted_without_being_serialized_for_the_queue() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = SessionSink::with_limits(1, tx, 2, usize::MAX);
        let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        assert!(sink.send(note.clone()));
        match rx.try_recv().unwrap() {
            Outbound::Message { message, bytes } => {
                assert_eq!(message, note);
                assert_eq!(bytes, jsonrpc::to_line(&note).len());
            }
            other => panic!("kept as JSON for the writer, got {other:?}"),
        }
        assert!(sink.send(note.clone()));
        assert!(!sink.send(note), "the message bound still holds");
        assert_eq!(sink.overflow_reason(), Some(Overflow::Messages(2)));
    }
}
