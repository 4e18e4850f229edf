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

impl Subscriptions {
    pub(super) fn len(&self) -> usize {
        lock(&self.subscribers).len()
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
        let held = lock(&self.subscriptions.subscribers).values().filter(|s| s.contains(&session.id)).count();
        if held >= limit {
            return Err((
                jsonrpc::INVALID_REQUEST,
                format!("this session already holds {limit} subscriptions (limits.subscriptions_per_session)"),
            ));
        }
        let (backend, key) = self.subscription_target(session, uri).await?;
        let _one_change_at_a_time = self.subscriptions.changes.lock().await;
        let first = lock(&self.subscriptions.subscribers).get(&key).is_none_or(HashSet::is_empty);
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
            lock(&self.subscriptions.subscribers).entry(key).or_default().insert(session.id);
        }
        Ok(())
    }

    /// A session unsubscribes; the backend is told only when the last one leaves.
    pub async fn unsubscribe(self: &Arc<Self>, session: &SessionInfo, uri: &str) -> Result<(), SubscriptionError> {
        let (backend, key) = self.subscription_target(session, uri).await?;
        let _one_change_at_a_time = self.subscriptions.changes.lock().await;
        self.leave(&backend, &key, session.id).await;
        Ok(())
    }

    /// Removes one subscriber; sends `resources/unsubscribe` if it was the last.
    async fn leave(&self, backend: &Backend, key: &Key, session: SessionId) {
        let last = {
            let mut subscribers = lock(&self.subscriptions.subscribers);
            let Some(set) = subscribers.get_mut(key) else { return };
            if !set.remove(&session) {
                return;
            }
            let last = set.is_empty();
            if last {
                subscribers.remove(key);
            }
            last
        };
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
        let _one_change_at_a_time = self.subscriptions.changes.lock().await;
        let keys: Vec<Key> = lock(&self.subscriptions.subscribers)
            .iter()
            .filter(|(_, set)| set.contains(&session))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            match self.pool.running(&key.0) {
                Some(backend) => self.leave(&backend, &key, session).await,
                None => {
                    lock(&self.subscriptions.subscribers).remove(&key);
                }
            }
        }
    }

    /// Whether any session is subscribed to something on this backend.
    pub(super) fn has_subscribers(&self, backend: &Backend) -> bool {
        lock(&self.subscriptions.subscribers).keys().any(|(identity, _)| *identity == backend.identity)
    }

    /// `notifications/resources/updated`: to the URI's subscribers only.
    pub(super) fn route_resource_update(&self, backend: &Arc<Backend>, message: Value) {
        let Some(uri) = jsonrpc::params(&message).get("uri").and_then(Value::as_str) else { return };
        let key = (backend.identity.clone(), uri.to_string());
        let subscribers: Vec<SessionId> =
            lock(&self.subscriptions.subscribers).get(&key).map(|s| s.iter().copied().collect()).unwrap_or_default();
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
