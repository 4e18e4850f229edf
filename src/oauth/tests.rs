//! The manager's refresh against a small token endpoint of the test's own:
//! single-flight, rotation, `invalid_grant`.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::oauth::discovery::fallback_metadata;
use crate::oauth::flow::AuthMethod;

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
                // The refresh token sent, or the grant when there is none.
                let sent = form.get("refresh_token").or_else(|| form.get("grant_type"));
                lock(&issuer.seen).push(sent.cloned().unwrap_or_default());
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

/// A rotating token endpoint (`refused`: one that answers `invalid_grant`),
/// and a manager in a temporary home holding an expired credential of it.
async fn issued(refused: bool) -> (Arc<Issuer>, tempfile::TempDir, Arc<Manager>) {
    let issuer = Arc::new(Issuer { calls: AtomicUsize::new(0), seen: Mutex::default(), refused });
    let base = serve(issuer.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let manager = Arc::new(Manager::new(home.path().join("oauth")));
    expired(&manager, format!("{base}/token"));
    (issuer, home, manager)
}

fn target() -> Target {
    Target {
        server: "remote".into(),
        url: "http://localhost:1/mcp".into(),
        credential_key: "global".into(),
        settings: Settings::default(),
    }
}

/// A manager in a temporary home, and the base URL of `flaky` serving.
async fn against(flaky: &Arc<Flaky>) -> (String, tempfile::TempDir, Manager) {
    let base = serve_flaky(flaky.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    (base, home, manager)
}

/// A stored credential whose access token has expired.
fn expired(manager: &Manager, token_endpoint: String) {
    let mut metadata = fallback_metadata(&Url::parse("http://localhost:1/mcp").unwrap());
    metadata.token_endpoint = token_endpoint;
    let client = super::store::tests::public_client();
    let mut credential = Credential::new(target().url, Some("http://localhost:1/mcp".into()), metadata, client);
    credential.tokens = Some(Tokens {
        access_token: "access-0".into(),
        refresh_token: Some("refresh-0".into()),
        expires_at: Some(now() - 1),
        lifetime: None,
        scope: None,
    });
    manager.store.save(&target().key(), &credential).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh_and_the_rotated_token_is_kept() {
    let (issuer, _home, manager) = issued(false).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_callers_share_one_fetch_and_keep_no_refresh_token() {
    let (issuer, _home, manager) = issued(false).await;
    let machine = || Target {
        settings: Settings {
            client_id: Some("svc".into()),
            client_secret: Some("s".into()),
            client_credentials: true,
            ..Default::default()
        },
        ..target()
    };
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.bearer(&machine()).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().as_deref(), Some("access-1"));
    }
    assert_eq!(*lock(&issuer.seen), ["client_credentials"], "one fetch for eight callers, not a refresh");
    let stored = manager.store.load(&target().key()).unwrap().unwrap();
    let tokens = stored.tokens.unwrap();
    assert_eq!(tokens.refresh_token, None, "a new token is fetched instead of refreshed");
    assert!(stored.client.client_secret.is_none(), "the secret stays in the config");
    // A 401 of access-1 fetches access-2; a caller that saw access-1 refused too gets it without a fetch.
    assert_eq!(manager.refresh(&machine(), Some("access-1")).await.unwrap(), "access-2");
    assert_eq!(manager.refresh(&machine(), Some("access-1")).await.unwrap(), "access-2");
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 2);
    let status = manager.status(&machine());
    assert_eq!(
        (status["state"].as_str(), status["registration"].as_str()),
        (Some("logged_in"), Some("client_credentials"))
    );
    assert_eq!(manager.needs_login(&machine()), None);
}

#[tokio::test]
async fn invalid_grant_means_a_login_and_names_the_command() {
    let (issuer, _home, manager) = issued(true).await;
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
async fn refused_client_credentials_are_not_sent_again_until_a_pause_or_a_config_change() {
    let (issuer, _home, manager) = issued(true).await;
    let machine = |secret: &str| Target {
        settings: Settings {
            client_id: Some("svc".into()),
            client_secret: Some(secret.into()),
            client_credentials: true,
            ..Default::default()
        },
        ..target()
    };
    let first = manager.bearer(&machine("wrong")).await.unwrap_err();
    assert!(matches!(first, OAuthError::Credentials(_)), "{first:?}");
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 1);
    // The next calls are told at once, with what was refused and when it is
    // asked again; the authorization server hears nothing of them.
    for _ in 0..3 {
        let again = manager.bearer(&machine("wrong")).await.unwrap_err();
        assert!(matches!(again, OAuthError::Credentials(_)), "{again:?}");
        let text = again.to_string();
        assert!(text.starts_with(&first.to_string()) && text.contains("asked again in 1 s"), "{text}");
        assert!(!text.contains("wrong"), "no secret in an error: {text}");
    }
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 1);
    // The pause over, the same settings are asked once more, and refused again: a longer pause.
    let end_pause =
        || lock(&manager.failures).get_mut(&target().key()).unwrap().refused.as_mut().unwrap().1.until = Instant::now();
    end_pause();
    assert!(manager.bearer(&machine("wrong")).await.is_err());
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 2);
    let again = manager.bearer(&machine("wrong")).await.unwrap_err().to_string();
    assert!(again.contains("refused 2 times in a row; asked again in 2 s"), "{again}");
    // A changed config (another secret) is tried at once.
    assert!(manager.bearer(&machine("fixed")).await.is_err());
    assert_eq!(issuer.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_during_a_refresh_is_not_undone_by_the_refresh_saving_its_tokens() {
    let (issuer, home, manager) = issued(false).await;
    let refreshing = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.bearer(&target()).await })
    };
    // The refresh is at the token endpoint (which takes 100 ms to answer).
    let deadline = Instant::now() + Duration::from_secs(10);
    while issuer.calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the refresh never reached the token endpoint");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(manager.logout(&target()).await.unwrap().forgotten);
    let _ = refreshing.await.unwrap();
    // The refreshed tokens did not bring the credential back, in memory or on disk.
    assert!(manager.store.load(&target().key()).unwrap().is_none());
    let fresh = Manager::new(home.path().join("oauth"));
    assert!(fresh.store.load(&target().key()).unwrap().is_none());
    assert_eq!(manager.status(&target())["state"], "logged_out");
}

#[tokio::test]
async fn status_shows_no_token_material_and_logout_forgets() {
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    assert_eq!(manager.status(&target())["state"], "logged_out");
    expired(&manager, "http://127.0.0.1:9/token".into());
    let status = manager.status(&target()).to_string();
    assert!(!status.contains("access-0") && !status.contains("refresh-0"), "{status}");
    assert!(manager.logout(&target()).await.unwrap().forgotten);
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
    assert_eq!(manager.step_up(&target()), None, "nothing stored: nothing to remember");
    expired(&manager, "http://127.0.0.1:9/token".into());
    let mut credential = manager.store.load(&target().key()).unwrap().unwrap();
    credential.tokens.as_mut().unwrap().scope = Some("mcp:basic".into());
    manager.store.save(&target().key(), &credential).unwrap();
    manager.need_scopes(&target(), Some("mcp:basic mcp:write")).unwrap();
    assert_eq!(manager.step_up(&target()), Some(StepUp::Login { scope: "mcp:basic mcp:write".into() }));
    let stored = manager.store.load(&target().key()).unwrap().unwrap();
    assert_eq!(stored.wanted_scope.as_deref(), Some("mcp:basic mcp:write"));
    assert_eq!(manager.status(&target())["wanted_scopes"], "mcp:basic mcp:write", "auth status says so");
}

/// Stores a credential whose last login asked for `asked` and was granted
/// `granted`, then records a 403 asking for `challenge`.
fn refused_after(manager: &Manager, asked: &str, granted: &str, challenge: &str) {
    expired(manager, "http://127.0.0.1:9/token".into());
    let mut credential = manager.store.load(&target().key()).unwrap().unwrap();
    credential.asked_scope = Some(asked.into());
    credential.tokens.as_mut().unwrap().scope = Some(granted.into());
    manager.store.save(&target().key(), &credential).unwrap();
    manager.need_scopes(&target(), Some(challenge)).unwrap();
}

#[test]
fn a_step_up_is_not_asked_again_for_scopes_the_last_login_asked_for() {
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));

    // The step-up login asked for `mcp:write` and was granted less: the
    // server's next 403 for it is no reason for another login.
    refused_after(&manager, "mcp:basic mcp:write", "mcp:basic", "mcp:write");
    let Some(StepUp::Exhausted(why)) = manager.step_up(&target()) else { panic!("{:?}", manager.step_up(&target())) };
    assert!(why.contains("asks for scopes `mcp:basic mcp:write`") && why.contains("not `mcp:write`"), "{why}");
    assert!(why.contains("granted `mcp:basic`") && why.contains("grant fewer"), "{why}");

    // Granted, yet still refused: no loop either.
    refused_after(&manager, "mcp:admin", "mcp:admin", "mcp:admin");
    let Some(StepUp::Exhausted(why)) = manager.step_up(&target()) else { panic!("{:?}", manager.step_up(&target())) };
    assert!(why.contains("`mcp:admin`") && why.contains("was granted"), "{why}");

    // A scope the last login did not ask for is worth one login.
    refused_after(&manager, "mcp:basic mcp:write", "mcp:basic", "mcp:admin");
    assert_eq!(manager.step_up(&target()), Some(StepUp::Login { scope: "mcp:basic mcp:admin".into() }));
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

/// One revocation request: its form, and its `Authorization` header.
type Revocation = (HashMap<String, String>, Option<String>);

/// An authorization server whose token endpoint fails (HTTP 500) while
/// `failing` is set, and whose revocation endpoint records each request's
/// form and `Authorization` header (answering 503 while `refuse_revocation`).
#[derive(Default)]
struct Flaky {
    failing: std::sync::atomic::AtomicBool,
    refuse_revocation: std::sync::atomic::AtomicBool,
    token_calls: AtomicUsize,
    revoked: Mutex<Vec<Revocation>>,
}

async fn serve_flaky(flaky: Arc<Flaky>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (for_token, for_revoke) = (flaky.clone(), flaky);
    let router = axum::Router::new()
        .route(
            "/token",
            axum::routing::post(move || {
                let flaky = for_token.clone();
                async move {
                    let n = flaky.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
                    if flaky.failing.load(Ordering::SeqCst) {
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down".to_string());
                    }
                    let body = json!({"access_token": format!("access-{n}"), "token_type": "Bearer",
                        "expires_in": 3600, "refresh_token": format!("refresh-{n}")});
                    (axum::http::StatusCode::OK, body.to_string())
                }
            }),
        )
        .route(
            "/revoke",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let flaky = for_revoke.clone();
                async move {
                    let form: HashMap<String, String> =
                        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                    lock(&flaky.revoked).push((form, auth));
                    if flaky.refuse_revocation.load(Ordering::SeqCst) {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[test]
fn a_short_lived_token_is_refreshed_a_tenth_of_its_lifetime_ahead_not_a_minute() {
    let token = |left: u64, lifetime: Option<u64>| Tokens {
        access_token: "a".into(),
        refresh_token: Some("r".into()),
        expires_at: Some(now() + left),
        lifetime,
        scope: None,
    };
    // A fresh 60-second token is used as it is, not refreshed on every use.
    assert!(!expiring(&token(58, Some(60))));
    assert!(expiring(&token(5, Some(60))));
    // An hour-long one (or one of unknown lifetime) a minute ahead.
    assert!(expiring(&token(59, Some(3600))) && !expiring(&token(120, Some(3600))));
    assert!(expiring(&token(59, None)) && !expiring(&token(120, None)));
}

#[test]
fn the_backoff_doubles_up_to_its_cap() {
    let now = Instant::now();
    let mut backoff = None;
    let mut pauses = Vec::new();
    for _ in 0..10 {
        let next = Backoff::after(backoff, now);
        pauses.push((next.until - now).as_secs());
        backoff = Some(next);
    }
    assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    // Many failures in a row do not overflow.
    assert_eq!(Backoff::after(Some(Backoff { failures: u32::MAX, until: now }), now).until - now, BACKOFF_CAP);
}

#[tokio::test]
async fn a_failing_authorization_server_gets_one_refresh_per_pause_and_the_tokens_are_kept() {
    let flaky = Arc::new(Flaky::default());
    flaky.failing.store(true, Ordering::SeqCst);
    let (base, _home, manager) = against(&flaky).await;
    expired(&manager, format!("{base}/token"));
    for _ in 0..5 {
        let error = manager.bearer(&target()).await.unwrap_err();
        assert!(matches!(error, OAuthError::Unreachable(_)), "{error:?}");
    }
    assert_eq!(flaky.token_calls.load(Ordering::SeqCst), 1, "one refresh, then a pause: no storm");
    let error = manager.refresh(&target(), None).await.unwrap_err().to_string();
    assert!(error.contains("failed 1 refresh in a row") && error.contains("next is tried in"), "{error}");
    let kept = manager.store.load(&target().key()).unwrap().unwrap().tokens.unwrap();
    assert_eq!(kept.refresh_token.as_deref(), Some("refresh-0"), "the tokens are kept");
    assert_eq!(manager.status(&target())["state"], "logged_in", "a failing server is no login");

    // The pause ends (made to end now, rather than slept through) and fails again: it doubles.
    let end_pause = || lock(&manager.backoff).get_mut(&target().key()).unwrap().until = Instant::now();
    end_pause();
    assert!(manager.bearer(&target()).await.is_err());
    assert_eq!(flaky.token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(lock(&manager.backoff)[&target().key()].failures, 2);

    // The server is back: the next refresh after the pause works and resets the backoff.
    flaky.failing.store(false, Ordering::SeqCst);
    end_pause();
    assert_eq!(manager.bearer(&target()).await.unwrap().as_deref(), Some("access-3"));
    assert!(lock(&manager.backoff).is_empty(), "a success resets the backoff");
}

#[tokio::test]
async fn a_token_that_has_not_expired_yet_is_used_while_the_authorization_server_is_down() {
    let flaky = Arc::new(Flaky::default());
    flaky.failing.store(true, Ordering::SeqCst);
    let (base, _home, manager) = against(&flaky).await;
    expired(&manager, format!("{base}/token"));
    // Due for a refresh (within REFRESH_AHEAD) but still valid.
    let mut credential = manager.store.load(&target().key()).unwrap().unwrap();
    credential.tokens.as_mut().unwrap().expires_at = Some(now() + 30);
    manager.store.save(&target().key(), &credential).unwrap();
    assert_eq!(manager.bearer(&target()).await.unwrap().as_deref(), Some("access-0"));
    assert_eq!(flaky.token_calls.load(Ordering::SeqCst), 1, "the refresh was tried");
}

/// A stored credential whose authorization server revokes at `base`/revoke,
/// for a confidential client of `method`.
fn revocable(manager: &Manager, base: &str, method: AuthMethod) {
    expired(manager, format!("{base}/token"));
    let mut credential = manager.store.load(&target().key()).unwrap().unwrap();
    credential.metadata.revocation_endpoint = Some(format!("{base}/revoke"));
    credential.client.client_secret = Some("sec".into());
    credential.client.auth_method = method;
    manager.store.save(&target().key(), &credential).unwrap();
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_then_the_access_token_then_forgets() {
    let flaky = Arc::new(Flaky::default());
    let (base, _home, manager) = against(&flaky).await;
    revocable(&manager, &base, AuthMethod::Basic);
    let logout = manager.logout(&target()).await.unwrap();
    assert_eq!(logout, Logout { forgotten: true, revoked: Some(Ok(())) });
    let revoked = lock(&flaky.revoked).clone();
    let sent: Vec<(&str, &str)> =
        revoked.iter().map(|(f, _)| (f["token"].as_str(), f["token_type_hint"].as_str())).collect();
    assert_eq!(sent, [("refresh-0", "refresh_token"), ("access-0", "access_token")]);
    for (form, auth) in &revoked {
        assert!(auth.as_deref().is_some_and(|a| a.starts_with("Basic ")), "the client authenticates: {auth:?}");
        assert!(!form.contains_key("client_secret"), "Basic puts no secret in the form");
    }
    assert_eq!(manager.status(&target())["state"], "logged_out");

    // client_secret_post: the id and secret in the form, no header.
    lock(&flaky.revoked).clear();
    revocable(&manager, &base, AuthMethod::Post);
    manager.logout(&target()).await.unwrap();
    let (form, auth) = lock(&flaky.revoked)[0].clone();
    assert_eq!((form["client_id"].as_str(), form["client_secret"].as_str(), auth), ("c", "sec", None));
}

#[tokio::test]
async fn a_private_key_jwt_client_revokes_with_a_fresh_assertion_for_each_token() {
    use base64::Engine;
    let flaky = Arc::new(Flaky::default());
    let (base, _home, manager) = against(&flaky).await;
    revocable(&manager, &base, AuthMethod::PrivateKeyJwt);
    let machine = Target {
        settings: Settings {
            client_id: Some("svc".into()),
            client_credentials: true,
            private_key: Some(super::assertion::PrivateKey::Pem(super::assertion::tests::EC_KEY.into())),
            ..Default::default()
        },
        ..target()
    };
    let logout = manager.logout(&machine).await.unwrap();
    assert_eq!(logout, Logout { forgotten: true, revoked: Some(Ok(())) });
    let revoked = lock(&flaky.revoked).clone();
    assert_eq!(revoked.len(), 2);
    let mut ids = Vec::new();
    for (form, auth) in &revoked {
        assert_eq!(auth, &None, "no Basic header beside an assertion");
        assert_eq!(form["client_id"], "svc");
        assert_eq!(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        assert!(!form.contains_key("client_secret"));
        let payload = form["client_assertion"].split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("svc"), Some("svc")));
        assert_eq!(claims["aud"], stored_issuer(), "the audience is the authorization server");
        ids.push(claims["jti"].clone());
    }
    assert_ne!(ids[0], ids[1], "a fresh assertion for each request");
}

/// The issuer of the metadata [`expired`] stores.
fn stored_issuer() -> String {
    fallback_metadata(&Url::parse("http://localhost:1/mcp").unwrap()).issuer
}

#[tokio::test]
async fn a_failed_revocation_is_reported_and_the_tokens_are_forgotten_anyway() {
    let flaky = Arc::new(Flaky::default());
    flaky.refuse_revocation.store(true, Ordering::SeqCst);
    let (base, _home, manager) = against(&flaky).await;
    revocable(&manager, &base, AuthMethod::None);
    let logout = manager.logout(&target()).await.unwrap();
    assert!(logout.forgotten);
    let why = logout.revoked.unwrap().unwrap_err();
    assert!(why.contains("the refresh token") && why.contains("503"), "{why}");
    assert!(!why.contains("refresh-0") && !why.contains("access-0"), "no token in the report: {why}");
    assert_eq!(manager.status(&target())["state"], "logged_out");
    assert!(!manager.store.dir().join(format!("{}.json", target().key())).exists(), "the file is gone");

    // No revocation endpoint: nothing revoked, still forgotten.
    expired(&manager, format!("{base}/token"));
    assert_eq!(manager.logout(&target()).await.unwrap(), Logout { forgotten: true, revoked: None });
    assert_eq!(lock(&flaky.revoked).len(), 2, "the refused revocation tried both tokens; none since");
}

#[tokio::test]
async fn a_login_is_needed_once_the_server_asked_or_the_tokens_are_gone() {
    let home = tempfile::tempdir().unwrap();
    let manager = Manager::new(home.path().join("oauth"));
    assert_eq!(manager.needs_login(&target()), None, "a server that never asked needs no login");
    manager.challenged(&target(), true);
    let row = manager.needs_login(&target()).unwrap();
    assert_eq!(row, json!({"server": "remote", "state": "logged_out", "login": "mcp-gateway auth login remote"}));

    expired(&manager, "http://127.0.0.1:9/token".into());
    assert_eq!(manager.needs_login(&target()), None, "a refreshable token needs no login");
    let mut credential = manager.store.load(&target().key()).unwrap().unwrap();
    credential.tokens.as_mut().unwrap().refresh_token = None;
    manager.store.save(&target().key(), &credential).unwrap();
    assert_eq!(manager.needs_login(&target()).unwrap()["state"], "expired");
    credential.tokens = None;
    manager.store.save(&target().key(), &credential).unwrap();
    let row = manager.needs_login(&target()).unwrap();
    assert_eq!(row["state"], "login_required");
    assert!(!row.to_string().contains("access-0"));

    // A server that answers again (a login elsewhere, or it stopped asking) is taken off the list.
    manager.logout(&target()).await.unwrap();
    assert!(manager.needs_login(&target()).is_some());
    manager.challenged(&target(), false);
    assert_eq!(manager.needs_login(&target()), None);
}

/// With `oauth_store: keyring`, refreshes on the runtime's worker threads
/// (each joins a session keyring of its own) rotate the refresh token in the
/// keyring, the file never holds one, and a daemon started anew uses the
/// newest.
#[cfg(feature = "os-keyring")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_store_rotates_refresh_tokens_in_the_keyring() {
    let issuer = Arc::new(Issuer { calls: AtomicUsize::new(0), seen: Mutex::default(), refused: false });
    let base = serve(issuer.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let manager = Arc::new(Manager::new(home.path().join("oauth")));
    manager.set_token_store(TokenStore::Keyring);
    expired(&manager, format!("{base}/token"));
    let mut sent = "access-0".to_string();
    for round in 1..=3 {
        let manager = manager.clone();
        let refreshed = tokio::spawn(async move { manager.refresh(&target(), Some(&sent)).await }).await.unwrap();
        sent = refreshed.unwrap();
        assert_eq!(sent, format!("access-{round}"));
    }
    assert_eq!(*lock(&issuer.seen), ["refresh-0", "refresh-1", "refresh-2"], "each refresh token sent once");
    let file = std::fs::read_to_string(home.path().join("oauth").join(format!("{}.json", target().key()))).unwrap();
    assert!(!file.contains("refresh-") && !file.contains("access-"), "{file}");
    assert_eq!(manager.status(&target())["refreshable"], true, "status still knows");
    assert_eq!(manager.status(&target())["tokens_in"], "keyring");

    let restarted = Manager::new(home.path().join("oauth"));
    restarted.set_token_store(TokenStore::Keyring);
    let tokens = restarted.store.load(&target().key()).unwrap().unwrap().tokens.unwrap();
    assert_eq!(tokens.refresh_token.as_deref(), Some("refresh-3"));
    assert!(restarted.logout(&target()).await.unwrap().forgotten);
}
