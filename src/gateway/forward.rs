//! From a session's call to its backend: the live instance (started on first
//! use, with the sessions that listen for its log messages attached), the
//! modern envelope for a modern server, the `serialize: true` turn (or the
//! instance of its own that a call asking a client gets), and the request
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

use super::{Gateway, SessionInfo};
use crate::backend::{Answer, Backend, BackendError};
use crate::config::ServerConfig;

impl Gateway {
    /// The live backend of `server` for a session, started if needed.
    pub async fn backend(self: &Arc<Self>, server: &str, session: &SessionInfo) -> Result<Arc<Backend>, BackendError> {
        self.backend_of(server, &*self.configured(server, session)?, session, 0).await
    }

    /// The definition of `server` this session sees.
    fn configured(&self, server: &str, session: &SessionInfo) -> Result<super::resolve::Definition, BackendError> {
        self.definition_for(session, server).ok_or_else(|| BackendError::Config {
            server: server.to_string(),
            message: "no such server is configured for this session (or it is disabled)".into(),
        })
    }

    /// The live backend of an already looked-up definition: the instance the
    /// session's sharing key shares (lane 0), or one of the extra ones that
    /// calls asking a client run on (see `asking`).
    pub(super) async fn backend_of(
        self: &Arc<Self>,
        server: &str,
        config: &ServerConfig,
        session: &SessionInfo,
        lane: u32,
    ) -> Result<Arc<Backend>, BackendError> {
        let resolution = self.resolve_remembered(server, config, session)?;
        let extra_lane;
        let identity = match lane {
            0 => &resolution.0,
            lane => {
                extra_lane = crate::backend::Identity { lane, ..resolution.0.clone() };
                &extra_lane
            }
        };
        let backend = match self.pool.running(identity) {
            Some(backend) => backend,
            // A start runs on a task of its own, so that it goes on when the
            // caller that triggered it gives up (it cancels, or its client
            // leaves): others may be waiting for the same instance, and a
            // killed start made each of them pay for a second one (a short
            // `codex exec` went ahead with no gateway tools meanwhile).
            None => {
                let gateway = self.clone();
                let (identity, resolved) = (identity.clone(), resolution.1.clone());
                let config = config.clone();
                let era = self.listed_era(server, &config);
                let start = async move { gateway.pool.get(&identity, &config, &resolved, era).await };
                tokio::spawn(tracing::Instrument::in_current_span(start)).await.map_err(|e| BackendError::Spawn {
                    server: server.to_string(),
                    reason: format!("the start did not finish: {e}"),
                })??
            }
        };
        if backend.first_use() {
            self.attach_listeners(&backend);
        }
        self.refresh_if_stale(&backend);
        self.sync_log_level(&backend);
        Ok(backend)
    }

    /// Forwards a request to `server` and returns the backend's response object.
    /// On a `serialize: true` server it waits for its turn first; a call of a
    /// tool that asks clients waits for an instance of its own (`asking`). A request that
    /// takes longer than the request timeout fails, and the backend is told it was
    /// cancelled (dropping the request future does that).
    pub async fn forward(
        self: &Arc<Self>,
        server: &str,
        method: &str,
        params: Value,
        session: &SessionInfo,
    ) -> Result<Value, BackendError> {
        self.forward_answer(server, method, params, session).await.map(Answer::into_value)
    }

    /// [`Gateway::forward`], the answer as it came (a stdio backend's line,
    /// unparsed), for a session that may relay it as it is.
    pub async fn forward_answer(
        self: &Arc<Self>,
        server: &str,
        method: &str,
        params: Value,
        session: &SessionInfo,
    ) -> Result<Answer, BackendError> {
        self.forward_answer_keeping(server, method, params, session, false).await.0
    }

    /// [`Gateway::forward_answer`], and, when `keep` and the backend is of the
    /// modern era, a copy of `params` as given: only such a backend's answer
    /// may be an `input_required` round, whose retry sends them again. A copy
    /// on every call of a handshake-era client was about 2,500 instructions of
    /// its hop (the copy and dropping it).
    pub async fn forward_answer_keeping(
        self: &Arc<Self>,
        server: &str,
        method: &str,
        params: Value,
        session: &SessionInfo,
        keep: bool,
    ) -> (Result<Answer, BackendError>, Option<Value>) {
        let config = match self.configured(server, session) {
            Ok(config) => config,
            Err(e) => return (Err(e), None),
        };
        let secs = config.request_timeout_secs.unwrap_or_else(|| self.config().request_timeout_secs);
        let span = crate::trace::backend_span(server, method, &params);
        let mut kept = None;
        let call = async {
            let (backend, _claim) = self.instance_for(server, &config, method, &params, session).await?;
            let mut params = params;
            if keep && backend.is_modern() {
                kept = Some(params.clone());
            }
            crate::trace::stamp(&mut params, &span);
            if backend.is_modern() {
                // Each request speaks for its own client: that client's
                // capabilities, info and log level (as it declared them last).
                let current = self.session(session.id);
                let current = current.as_ref().unwrap_or(session);
                let level = current.log_level.map(|l| l.as_str());
                let envelope = crate::era::envelope(&current.capabilities, current.client_name.as_deref(), level);
                crate::era::stamp(&mut params, &envelope);
            }
            let _turn = backend.turn().await;
            backend.request_answer(method, params, Some(&session.sink)).await
        };
        let result = match tokio::time::timeout(Duration::from_secs(secs), call.instrument(span.clone())).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout { server: server.to_string(), secs }),
        };
        match &result {
            Ok(Answer::Value(response)) => crate::trace::failed_if_error(&span, response),
            // A relayed line is read only when it is an error, to mark the span.
            Ok(Answer::Raw(raw)) if !raw.has_result() => {
                if let Ok(response) = raw.to_value() {
                    crate::trace::failed_if_error(&span, &response);
                }
            }
            Ok(Answer::Raw(_)) => {}
            Err(_) => crate::trace::failed(&span, None),
        }
        (result, kept)
    }

    /// Sessions that asked for log messages and would be served by a new backend
    /// count as its users from the start, before they call it themselves.
    fn attach_listeners(&self, backend: &Backend) {
        let listening: Vec<SessionInfo> =
            super::lock(&self.sessions).values().filter(|s| s.log_level.is_some()).cloned().collect();
        for session in listening {
            if self.resolves_to(&session, backend) {
                backend.attach(session.id);
            }
        }
    }
}
