//! The manager's refresh against a small token endpoint of the test's own:
//! single-flight, rotation, `invalid_grant`.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::oauth::discovery::fallback_metadata;
use crate::oauth::flow::{AuthMethod, Client, RegistrationKind};

/// A token endpoint that rotates: each refresh token is good once and the
/// answer carries the next one. `refused`: answer `invalid_grant` instead.
struct Issuer {
    calls: AtomicUsize,
    seen: Mutex<Vec<String>>,
    refused: bool,
}

async fn serve(issuer: Arc<Issuer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/token",
        axum::routing::post(move |body: String| {
            let issuer = issuer.clone();
            async move {
                let n = issuer.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                lock(&issuer.seen).push(form.get("refresh_token").cloned().unwrap_or_default());
                assert_eq!(form.get("resource").map(String::as_str), Some("http://localhost:1/mcp"));
                // Let the other callers pile up behind this refresh.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if issuer.refused {
                    return (axum::http::StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant"}"#.to_string());
                }
                let body = json!({"access_token": format!("access-{n}"), "token_type": "Bearer",
                    "expires_in": 3600, "refresh_token": format!("refresh-{n}")});
                (axum::http::StatusCode::OK, body.to_string())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

fn target() -> Target {
    Target {
        server: "remote".into(),
        url: "http://localhost:1/mcp".into(),
        credential_key: "global".into(),
        settings: Settings::default(),
    }
}

/// A stored credential whose access token has expired.
fn expired(manager: &Manager, token_endpoint: String) {
    let mut metadata = fallback_metadata(&Url::parse("http://localhost:1/mcp").unwrap());
    metadata.token_endpoint = token_endpoint;
    let client = Client {
        client_id: "c".into(),
        client_secret: None,
        auth_method: AuthMethod::None,
        kind: RegistrationKind::Dynamic,
        redirect_uri: "http://127.0.0.1:9/callback".into(),
    };
    let mut credential = Credential::new(target().url, Some("http://localhost:1/mcp".into()), metadata, client);
    credential.tokens = Some(Tokens {
        access_token: "access-0".into(),
        refresh_token: Some("refresh-0".into()),
        expires_at: Some(now() - 1),
        scope: None,
    });
    manager.store.save(&target().key(), &credential).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh_and_the_rotated_token_is_kept() {
    let issuer = Arc::new(Issuer { calls: AtomicUsize::new(0), seen: Mutex::default(), refused: false });
    let base = serve(issuer.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let manager = Arc::new(Manager::new(home.path().join("oauth")));
    expired(&manager, format!("{base}/token"));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.bearer(&target()).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().as_deref(), Some("access-1"));
    }
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 1, "one refresh for eight callers");
    let stored = manager.store.load(&target().key()).unwrap().unwrap().tokens.unwrap();
    assert_eq!(stored.refresh_token.as_deref(), Some("refresh-1"), "the rotated token is on disk");

    // The server refuses access-1: the next refresh sends refresh-1, never refresh-0 again.
    assert_eq!(manager.refresh(&target(), Some("access-1")).await.unwrap(), "access-2");
    assert_eq!(*lock(&issuer.seen), ["refresh-0", "refresh-1"]);
    // A caller that saw the old token refused gets the new one without another refresh.
    assert_eq!(manager.refresh(&target(), Some("access-1")).await.unwrap(), "access-2");
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalid_grant_means_a_login_and_names_the_command() {
    let issuer = Arc::new(Issuer { calls: AtomicUsize::new(0), seen: Mutex::default(), refused: true });
    let base = serve(issuer.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    expired(&manager, format!("{base}/token"));
    let error = manager.bearer(&target()).await.unwrap_err();
    assert!(matches!(error, OAuthError::LoginRequired(_)), "{error:?}");
    assert!(error.to_string().contains("mcp-gateway auth login remote"), "{error}");
    assert!(!error.to_string().contains("refresh-0"));
    assert_eq!(manager.status(&target())["state"], "login_required");
    // The registration stays; no second refresh is tried with the refused token.
    let again = manager.bearer(&target()).await;
    assert!(matches!(again, Ok(None)), "{again:?}");
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn status_shows_no_token_material_and_logout_forgets() {
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    assert_eq!(manager.status(&target())["state"], "logged_out");
    expired(&manager, "http://127.0.0.1:9/token".into());
    let status = manager.status(&target()).to_string();
    assert!(!status.contains("access-0") && !status.contains("refresh-0"), "{status}");
    assert!(manager.logout(&target()).unwrap());
    assert_eq!(manager.status(&target())["state"], "logged_out");
}

#[test]
fn step_up_asks_for_the_union_of_scopes() {
    assert_eq!(
        union_of(&[Some("mcp:basic"), None, Some("mcp:basic mcp:write")]).as_deref(),
        Some("mcp:basic mcp:write")
    );
    assert_eq!(union_of(&[None, Some("  ")]), None);
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    manager.need_scopes(&target(), Some("mcp:write")).unwrap();
    assert!(!manager.wants_scopes(&target()), "nothing stored: nothing to remember");
    expired(&manager, "http://127.0.0.1:9/token".into());
    let mut credential = manager.store.load(&target().key()).unwrap().unwrap();
    credential.tokens.as_mut().unwrap().scope = Some("mcp:basic".into());
    manager.store.save(&target().key(), &credential).unwrap();
    manager.need_scopes(&target(), Some("mcp:basic mcp:write")).unwrap();
    assert!(manager.wants_scopes(&target()));
    let stored = manager.store.load(&target().key()).unwrap().unwrap();
    assert_eq!(stored.wanted_scope.as_deref(), Some("mcp:basic mcp:write"));
}

/// A server of bad answers: `/mcp` says 401 naming `challenge` as its
/// metadata, `/prm` is not JSON, `/html-token` answers a page, `/500-token` fails.
async fn bad_server(challenge_metadata: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let header = format!("Bearer resource_metadata=\"{challenge_metadata}\"");
    let router = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(move || {
                let header = header.clone();
                async move { (axum::http::StatusCode::UNAUTHORIZED, [("www-authenticate", header)], "") }
            }),
        )
        .route("/prm", axum::routing::get(|| async { "{ not json" }))
        .route("/html-token", axum::routing::post(|| async { "<html>access_token: no</html>" }))
        .route("/500-token", axum::routing::post(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops") }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

fn target_at(url: String) -> Target {
    Target { url, ..target() }
}

#[tokio::test]
async fn metadata_on_another_origin_or_malformed_is_refused_with_where() {
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    let never = |_: &str| -> Result<(), String> { panic!("no browser may open") };

    let elsewhere = bad_server("https://evil.example/.well-known/oauth-protected-resource").await;
    let error = manager.login(&target_at(format!("{elsewhere}/mcp")), never, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, OAuthError::Discovery(_)) && error.to_string().contains("another origin"), "{error}");

    let base = bad_server("/prm").await;
    let error = manager.login(&target_at(format!("{base}/mcp")), never, Duration::from_secs(1)).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("/prm") && text.contains("not a valid metadata document"), "{text}");
    assert_eq!(manager.status(&target_at(format!("{base}/mcp")))["state"], "logged_out");
}

#[tokio::test]
async fn a_token_endpoint_that_answers_html_or_fails_keeps_the_last_good_token() {
    let base = bad_server("/prm").await;
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    for (endpoint, unreachable) in [("html-token", false), ("500-token", true)] {
        expired(&manager, format!("{base}/{endpoint}"));
        let error = manager.bearer(&target()).await.unwrap_err();
        assert_eq!(matches!(error, OAuthError::Unreachable(_)), unreachable, "{endpoint}: {error:?}");
        assert!(!error.to_string().contains("<html>"), "a page is not quoted: {error}");
        let kept = manager.store.load(&target().key()).unwrap().unwrap().tokens.unwrap();
        assert_eq!(kept.refresh_token.as_deref(), Some("refresh-0"), "{endpoint}: the tokens are kept");
    }
}

#[tokio::test]
async fn a_second_login_to_the_same_server_waits_for_none() {
    let home = tempfile::tempdir().unwrap();
    let manager = Arc::new(Manager::new(home.path().join("oauth")));
    let slot = entry(&manager.logging_in, &target().key());
    let _first = slot.lock().await;
    let never = |_: &str| -> Result<(), String> { panic!("no browser may open") };
    let error = manager.login(&target(), never, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, OAuthError::Busy(_)) && error.to_string().contains("already under way"), "{error}");
}
