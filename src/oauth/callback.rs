//! The loopback callback of one login: an HTTP listener on 127.0.0.1 that
//! waits for the authorization server's redirect with this attempt's `state`.
//! A request with another `state` (a stale tab, a forged link) is refused and
//! the wait goes on; the first one that matches ends it.
//!
//! The port is a free one, or the one of the server's `oauth.redirect_uri`
//! (a client registered with one exact redirect URI): then the listener
//! serves exactly that path, and the URI is sent as written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::RawQuery;
use axum::http::{Method, StatusCode, Uri};
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

/// Where a fixed redirect URI listens: its addresses (`localhost` is
/// 127.0.0.1 and, where there is IPv6, ::1), port and path.
fn fixed_place(uri: &str) -> Result<(Vec<IpAddr>, u16, String), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("`oauth.redirect_uri` is not a URL: {e}"))?;
    let hosts = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        _ => vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
    };
    let port = url.port().ok_or("`oauth.redirect_uri` names no port")?;
    Ok((hosts, port, url.path().to_string()))
}

impl Callback {
    /// Binds `127.0.0.1` on a free port and serves `/callback`, or, given
    /// `server`'s fixed redirect URI, that URI's port and path.
    pub async fn bind(state: String, fixed: Option<&str>, server: &str) -> Result<Callback, OAuthError> {
        let mut listeners = Vec::new();
        let (redirect_uri, path) = match fixed {
            None => {
                let listener =
                    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.map_err(|e| {
                        OAuthError::Callback(format!("cannot listen on loopback for the login's callback: {e}"))
                    })?;
                let port = listener.local_addr().map_err(|e| OAuthError::Callback(e.to_string()))?.port();
                listeners.push(listener);
                (format!("http://127.0.0.1:{port}/callback"), "/callback".to_string())
            }
            Some(uri) => {
                let (hosts, port, path) = fixed_place(uri).map_err(OAuthError::Callback)?;
                for (n, host) in hosts.into_iter().enumerate() {
                    match tokio::net::TcpListener::bind(SocketAddr::new(host, port)).await {
                        Ok(listener) => listeners.push(listener),
                        // `localhost`'s ::1 is a courtesy: a machine without IPv6 has none.
                        Err(_) if n > 0 => {}
                        Err(e) => return Err(busy(server, host, port, &e)),
                    }
                }
                (uri.to_string(), path)
            }
        };
        let (send, answer) = oneshot::channel();
        let send = Arc::new(Mutex::new(Some(send)));
        let stop = tokio_util::sync::CancellationToken::new();
        // A fallback that compares the path, not a route: a path from the
        // config is never parsed as a route pattern.
        let router = axum::Router::new().fallback(move |method: Method, uri: Uri, RawQuery(query): RawQuery| {
            let (send, state, path) = (send.clone(), state.clone(), path.clone());
            async move {
                if uri.path() != path {
                    return (StatusCode::NOT_FOUND, "mcp-gateway: not the login's callback.\n");
                }
                if method != Method::GET {
                    return (StatusCode::METHOD_NOT_ALLOWED, "mcp-gateway: the callback takes a GET.\n");
                }
                answer_callback(query.unwrap_or_default(), &state, &send)
            }
        });
        for listener in listeners {
            let (router, stopped) = (router.clone(), stop.clone());
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).with_graceful_shutdown(stopped.cancelled_owned()).await;
            });
        }
        Ok(Callback { redirect_uri, answer, stop })
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

/// The fixed redirect's port could not be bound: which, for which server,
/// and what may hold it.
fn busy(server: &str, host: IpAddr, port: u16, e: &std::io::Error) -> OAuthError {
    let at = SocketAddr::new(host, port);
    OAuthError::Callback(if e.kind() == std::io::ErrorKind::AddrInUse {
        format!(
            "cannot listen on {at} for the login to `{server}` (its `oauth.redirect_uri`): the port is in use, by \
             another program or by a login to another server with the same redirect port; `ss -ltnp 'sport = \
             :{port}'` shows who holds it"
        )
    } else {
        format!("cannot listen on {at} for the login to `{server}` (its `oauth.redirect_uri`): {e}")
    })
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

    /// A port nothing listens on now.
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_fixed_redirect_uri_is_served_at_its_port_and_path_and_sent_as_written() {
        let port = free_port();
        let uri = format!("http://localhost:{port}/oauth/done");
        let callback = Callback::bind("good".into(), Some(&uri), "r").await.unwrap();
        assert_eq!(callback.redirect_uri, uri);
        let http = reqwest::Client::new();
        let elsewhere = http.get(format!("http://127.0.0.1:{port}/callback?code=x&state=good")).send().await.unwrap();
        assert_eq!(elsewhere.status(), 404);
        let posted = http.post(format!("http://127.0.0.1:{port}/oauth/done?code=x&state=good")).send().await.unwrap();
        assert_eq!(posted.status(), 405);
        let right = http.get(format!("http://127.0.0.1:{port}/oauth/done?code=c&state=good")).send().await.unwrap();
        assert_eq!(right.status(), 200);
        assert_eq!(callback.wait().await.unwrap().code, "c");
    }

    #[tokio::test]
    async fn a_busy_fixed_port_is_an_error_naming_the_port_and_the_server() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let uri = format!("http://127.0.0.1:{port}/callback");
        let error = Callback::bind("s".into(), Some(&uri), "linear").await.err().unwrap().to_string();
        assert!(error.contains(&format!("127.0.0.1:{port}")) && error.contains("`linear`"), "{error}");
        assert!(error.contains("in use"), "{error}");
    }

    #[tokio::test]
    async fn the_listener_stops_with_its_login() {
        let callback = Callback::bind("s".into(), None, "r").await.unwrap();
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
        let callback = Callback::bind("good".into(), None, "r").await.unwrap();
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
