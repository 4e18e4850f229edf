//! The loopback callback of one login: an HTTP listener on 127.0.0.1 that
//! waits for the authorization server's redirect with this attempt's `state`.
//! A request with another `state` (a stale tab, a forged link) is refused and
//! the wait goes on; the first one that matches ends it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::oneshot;
use url::form_urlencoded;

use super::OAuthError;
use crate::lock;

/// What the redirect brought.
#[derive(Debug)]
pub struct Redirect {
    pub code: String,
    pub iss: Option<String>,
}

/// A bound listener, waiting for `state`.
pub struct Callback {
    pub redirect_uri: String,
    answer: oneshot::Receiver<Result<Redirect, OAuthError>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Callback {
    /// Binds `127.0.0.1` on a free port and serves `/callback`.
    pub async fn bind(state: String) -> Result<Callback, OAuthError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| OAuthError::Callback(format!("cannot listen on loopback for the login's callback: {e}")))?;
        let port = listener.local_addr().map_err(|e| OAuthError::Callback(e.to_string()))?.port();
        let (send, answer) = oneshot::channel();
        let send = Arc::new(Mutex::new(Some(send)));
        let stop = tokio_util::sync::CancellationToken::new();
        let router = axum::Router::new().route(
            "/callback",
            get(move |RawQuery(query): RawQuery| {
                let (send, state) = (send.clone(), state.clone());
                async move { answer_callback(query.unwrap_or_default(), &state, &send) }
            }),
        );
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).with_graceful_shutdown(stopped.cancelled_owned()).await;
        });
        Ok(Callback { redirect_uri: format!("http://127.0.0.1:{port}/callback"), answer, stop })
    }

    /// The redirect, once one with the right `state` arrives.
    pub async fn wait(mut self) -> Result<Redirect, OAuthError> {
        let answer = (&mut self.answer).await;
        answer.unwrap_or_else(|_| Err(OAuthError::Callback("the callback listener stopped".into())))
    }
}

/// The listener stops with its login, however that ends (answered, timed
/// out, failed before the browser was opened).
impl Drop for Callback {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Sender = Arc<Mutex<Option<oneshot::Sender<Result<Redirect, OAuthError>>>>>;

fn answer_callback(query: String, state: &str, send: &Sender) -> (StatusCode, &'static str) {
    let mut code = None;
    let mut got_state = None;
    let mut iss = None;
    let mut error = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "code" => code = Some(v.into_owned()),
            "state" => got_state = Some(v.into_owned()),
            "iss" => iss = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            _ => {}
        }
    }
    if got_state.as_deref() != Some(state) {
        return (StatusCode::BAD_REQUEST, "This link is not the login mcp-gateway is waiting for (wrong state).\n");
    }
    let result = match (error, code) {
        (Some(error), _) => Err(OAuthError::Callback(format!("the authorization server answered `{error}`"))),
        (None, Some(code)) => Ok(Redirect { code, iss }),
        (None, None) => Err(OAuthError::Callback("the callback carried no code".into())),
    };
    let ok = result.is_ok();
    if let Some(send) = lock(send).take() {
        let _ = send.send(result);
    }
    if ok {
        (StatusCode::OK, "mcp-gateway: logged in. You can close this window.\n")
    } else {
        (StatusCode::BAD_REQUEST, "mcp-gateway: the login failed; see the terminal.\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_listener_stops_with_its_login() {
        let callback = Callback::bind("s".into()).await.unwrap();
        let base = callback.redirect_uri.clone();
        drop(callback);
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while http.get(&base).send().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "the callback still listens");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_wrong_state_is_refused_and_the_right_one_is_taken() {
        let callback = Callback::bind("good".into()).await.unwrap();
        let base = callback.redirect_uri.clone();
        let http = reqwest::Client::new();
        let wrong = http.get(format!("{base}?code=x&state=bad")).send().await.unwrap();
        assert_eq!(wrong.status(), 400);
        let right = http.get(format!("{base}?code=c%2B1&state=good&iss=https%3A%2F%2Fas")).send().await.unwrap();
        assert_eq!(right.status(), 200);
        let redirect = callback.wait().await.unwrap();
        assert_eq!(redirect.code, "c+1");
        assert_eq!(redirect.iss.as_deref(), Some("https://as"));
    }
}
