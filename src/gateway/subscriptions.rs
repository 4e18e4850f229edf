//! `resources/subscribe` over shared backends: reference-counted per
//! (backend, URI). The backend sees one subscribe when the first session
//! subscribes and one unsubscribe when the last one leaves; its
//! `notifications/resources/updated` reach the subscribers only.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tracing::{debug, warn};

use super::{Gateway, SessionInfo, lock};
use crate::backend::{Backend, BackendError, Identity};
use crate::jsonrpc;
use crate::sink::SessionId;

/// The backend instance and the URI.
type Key = (Identity, String);

#[derive(Default)]
pub(super) struct Subscriptions {
    subscribers: Mutex<HashMap<Key, HashSet<SessionId>>>,
    /// Serialises subscribe/unsubscribe so the first and last are decided once.
    changes: tokio::sync::Mutex<()>,
}

/// What removing a subscriber left behind.
#[derive(Debug, PartialEq, Eq)]
enum Left {
    /// The session was not subscribed: nothing changed.
    NotSubscribed,
    /// Other sessions still are.
    Others,
    /// It was the last: the backend is to be told.
    Last,
}

impl Subscriptions {
    /// Subscribed (backend, URI) pairs.
    pub(super) fn len(&self) -> usize {
        lock(&self.subscribers).len()
    }

    /// Held while a subscription is added or removed, across the backend's
    /// answer, so the first subscriber and the last are each decided once.
    async fn one_change_at_a_time(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// How many subscriptions `session` holds (`limits.subscriptions_per_session`).
    fn held_by(&self, session: SessionId) -> usize {
        lock(&self.subscribers).values().filter(|s| s.contains(&session)).count()
    }

    /// Whether nobody is subscribed to `key` yet: the backend must be asked.
    fn is_new(&self, key: &Key) -> bool {
        lock(&self.subscribers).get(key).is_none_or(HashSet::is_empty)
    }

    fn add(&self, key: Key, session: SessionId) {
        lock(&self.subscribers).entry(key).or_default().insert(session);
    }

    fn remove(&self, key: &Key, session: SessionId) -> Left {
        let mut subscribers = lock(&self.subscribers);
        let Some(set) = subscribers.get_mut(key) else { return Left::NotSubscribed };
        if !set.remove(&session) {
            return Left::NotSubscribed;
        }
        if set.is_empty() {
            subscribers.remove(key);
            Left::Last
        } else {
            Left::Others
        }
    }

    /// Drops every subscriber of `key` (its backend is gone).
    fn forget(&self, key: &Key) {
        lock(&self.subscribers).remove(key);
    }

    fn keys_of(&self, session: SessionId) -> Vec<Key> {
        lock(&self.subscribers).iter().filter(|(_, set)| set.contains(&session)).map(|(k, _)| k.clone()).collect()
    }

    fn subscribers(&self, key: &Key) -> Vec<SessionId> {
        lock(&self.subscribers).get(key).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    fn on_backend(&self, identity: &Identity) -> bool {
        lock(&self.subscribers).keys().any(|(i, _)| i == identity)
    }
}

/// Why a subscription change failed: a JSON-RPC error code and message.
pub type SubscriptionError = (i64, String);

fn backend_failure(error: BackendError) -> SubscriptionError {
    (jsonrpc::INTERNAL_ERROR, error.to_string())
}

fn refused(response: &Value) -> Option<SubscriptionError> {
    let error = response.get("error")?;
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(jsonrpc::INTERNAL_ERROR);
    let message = error.get("message").and_then(Value::as_str).unwrap_or("the server refused").to_string();
    Some((code, message))
}

impl Gateway {
    async fn subscription_target(
        self: &Arc<Self>,
        session: &SessionInfo,
        uri: &str,
    ) -> Result<(Arc<Backend>, Key), SubscriptionError> {
        let catalog = self.catalog_for_uri(session, uri).await;
        let server = catalog.resource_server(uri).ok_or_else(|| {
            (jsonrpc::RESOURCE_NOT_FOUND, format!("Resource not found: no configured server lists `{uri}`"))
        })?;
        let backend = self.backend(server, session).await.map_err(backend_failure)?;
        if backend.initialize_result().pointer("/capabilities/resources/subscribe") != Some(&Value::Bool(true)) {
            return Err((
                jsonrpc::METHOD_NOT_FOUND,
                format!("server `{server}` does not support resource subscriptions"),
            ));
        }
        let key = (backend.identity.clone(), uri.to_string());
        Ok((backend, key))
    }

    /// A session subscribes to `uri`; the backend is asked only for the first subscriber.
    pub async fn subscribe(self: &Arc<Self>, session: &SessionInfo, uri: &str) -> Result<(), SubscriptionError> {
        let limit = self.config().limits.subscriptions_per_session;
        if self.subscriptions.held_by(session.id) >= limit {
            return Err((
                jsonrpc::INVALID_REQUEST,
                format!("this session already holds {limit} subscriptions (limits.subscriptions_per_session)"),
            ));
        }
        let (backend, key) = self.subscription_target(session, uri).await?;
        let _one_change_at_a_time = self.subscriptions.one_change_at_a_time().await;
        let first = self.subscriptions.is_new(&key);
        if first && backend.is_modern() {
            backend.listen(Some((uri, true)));
        } else if first {
            let response =
                backend.request("resources/subscribe", json!({ "uri": uri }), None).await.map_err(backend_failure)?;
            if let Some(error) = refused(&response) {
                return Err(error);
            }
        }
        // The session may have left while the backend was answering.
        if self.session(session.id).is_some() {
            self.subscriptions.add(key, session.id);
        }
        Ok(())
    }

    /// A session unsubscribes; the backend is told only when the last one leaves.
    pub async fn unsubscribe(self: &Arc<Self>, session: &SessionInfo, uri: &str) -> Result<(), SubscriptionError> {
        let (backend, key) = self.subscription_target(session, uri).await?;
        let _one_change_at_a_time = self.subscriptions.one_change_at_a_time().await;
        self.leave(&backend, &key, session.id).await;
        Ok(())
    }

    /// Removes one subscriber; sends `resources/unsubscribe` if it was the last.
    async fn leave(&self, backend: &Backend, key: &Key, session: SessionId) {
        let last = self.subscriptions.remove(key, session) == Left::Last;
        if last && backend.is_alive() && backend.is_modern() {
            backend.listen(Some((&key.1, false)));
        } else if last && backend.is_alive() {
            let uri = &key.1;
            if let Err(e) = backend.request("resources/unsubscribe", json!({ "uri": uri }), None).await {
                warn!(server = %backend.server, uri, error = %e, "unsubscribe failed");
            }
        }
    }

    /// A session left: drop each of its subscriptions as if it had unsubscribed.
    pub(super) async fn drop_subscriptions_of_session(&self, session: SessionId) {
        let _one_change_at_a_time = self.subscriptions.one_change_at_a_time().await;
        let keys = self.subscriptions.keys_of(session);
        for key in keys {
            match self.pool.running(&key.0) {
                Some(backend) => self.leave(&backend, &key, session).await,
                None => self.subscriptions.forget(&key),
            }
        }
    }

    /// Whether any session is subscribed to something on this backend.
    pub(super) fn has_subscribers(&self, backend: &Backend) -> bool {
        self.subscriptions.on_backend(&backend.identity)
    }

    /// `notifications/resources/updated`: to the URI's subscribers only.
    pub(super) fn route_resource_update(&self, backend: &Arc<Backend>, message: Value) {
        let Some(uri) = jsonrpc::params(&message).get("uri").and_then(Value::as_str) else { return };
        let key = (backend.identity.clone(), uri.to_string());
        let subscribers = self.subscriptions.subscribers(&key);
        if subscribers.is_empty() {
            debug!(server = %backend.server, uri, "dropped a resource update nobody subscribed to");
        }
        for id in subscribers {
            if let Some(session) = self.session(id) {
                session.sink.send(message.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SharingKey;

    fn key(server: &str, uri: &str) -> Key {
        let identity =
            Identity { server: server.into(), key: SharingKey("global".into()), instance: "0".into(), lane: 0 };
        (identity, uri.into())
    }

    #[test]
    fn the_backend_hears_of_the_first_subscriber_and_the_last_only() {
        let subscriptions = Subscriptions::default();
        let (a, b) = (key("s", "file:///a"), key("s", "file:///b"));
        assert!(subscriptions.is_new(&a));
        subscriptions.add(a.clone(), 1);
        assert!(!subscriptions.is_new(&a), "a second subscriber must not subscribe the backend again");
        subscriptions.add(a.clone(), 2);
        subscriptions.add(b.clone(), 2);
        assert_eq!(subscriptions.held_by(2), 2);
        assert_eq!(subscriptions.remove(&a, 3), Left::NotSubscribed);
        assert_eq!(subscriptions.remove(&a, 1), Left::Others);
        assert_eq!(subscriptions.remove(&a, 1), Left::NotSubscribed, "one leave per join");
        assert_eq!(subscriptions.remove(&a, 2), Left::Last);
        assert!(subscriptions.is_new(&a));
        assert_eq!(subscriptions.keys_of(2), vec![b.clone()]);
        assert!(subscriptions.on_backend(&b.0));
        assert_eq!(subscriptions.len(), 1);
        subscriptions.forget(&b);
        assert_eq!(subscriptions.len(), 0, "no entry outlives its subscribers");
    }

    #[test]
    fn updates_go_to_the_uri_subscribers_only() {
        let subscriptions = Subscriptions::default();
        let (a, other_instance) = (key("s", "file:///a"), key("t", "file:///a"));
        subscriptions.add(a.clone(), 1);
        subscriptions.add(other_instance.clone(), 2);
        assert_eq!(subscriptions.subscribers(&a), vec![1]);
        assert_eq!(subscriptions.subscribers(&other_instance), vec![2]);
        assert!(subscriptions.subscribers(&key("s", "file:///b")).is_empty());
    }
}
