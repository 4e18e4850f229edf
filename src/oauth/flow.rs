//! The authorization server's endpoints: client registration (pre-registered,
//! a Client ID Metadata Document, or RFC 7591 dynamic registration), the
//! authorization request, RFC 9207 `iss` validation, and the token endpoint
//! (code exchange and refresh, with the client authentication the
//! registration calls for). Every form body and query string is encoded by
//! `url::form_urlencoded`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;
use url::form_urlencoded;

use super::OAuthError;
use super::assertion::PrivateKey;
use super::discovery::ServerMetadata;

/// How the client authenticates at the token endpoint (RFC 7591 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    #[serde(rename = "client_secret_basic")]
    Basic,
    /// `client_secret_post`: the secret in the form body.
    #[serde(rename = "client_secret_post")]
    Post,
    /// `none`: a public client; its `client_id` in the body.
    None,
    /// `private_key_jwt` (RFC 7523): a signed assertion in the body (the
    /// client-credentials grant only; see `assertion`).
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt,
}

impl AuthMethod {
    fn parse(name: &str) -> Option<AuthMethod> {
        match name {
            "client_secret_basic" => Some(AuthMethod::Basic),
            "client_secret_post" => Some(AuthMethod::Post),
            "none" => Some(AuthMethod::None),
            _ => None,
        }
    }
}

/// How the client came by its `client_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// `oauth: { client_id, client_secret }` in the server's config.
    PreRegistered,
    /// `oauth: { client_metadata_url }`: the URL is the `client_id`.
    MetadataDocument,
    /// RFC 7591 dynamic client registration.
    Dynamic,
    /// `grant: client_credentials`: a machine client, no person (SEP-1046).
    ClientCredentials,
}

/// A registered client.
#[derive(Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub auth_method: AuthMethod,
    pub kind: RegistrationKind,
    /// The redirect URI this registration was made for.
    pub redirect_uri: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("auth_method", &self.auth_method)
            .field("kind", &self.kind)
            .finish()
    }
}

/// What the server's config says about its OAuth client (`oauth:`), its
/// `${VAR}`s expanded.
#[derive(Clone, Default, PartialEq)]
pub struct Settings {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_metadata_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// `oauth.redirect_uri`: the loopback redirect to listen on and send,
    /// as written (checked when the config was read).
    pub redirect_uri: Option<String>,
    /// `grant: client_credentials`: the gateway fetches its tokens itself.
    pub client_credentials: bool,
    /// `oauth.private_key` / `oauth.private_key_file`, for `private_key_jwt`.
    pub private_key: Option<PrivateKey>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_metadata_url", &self.client_metadata_url)
            .field("scopes", &self.scopes)
            .field("redirect_uri", &self.redirect_uri)
            .field("client_credentials", &self.client_credentials)
            .field("private_key", &self.private_key)
            .finish()
    }
}

impl Settings {
    /// The assertion a client-credentials client with a private key proves
    /// itself with to the authorization server `issuer` (RFC 7523: the
    /// audience is the server, by its issuer), at its token and revocation
    /// endpoints alike; `None` for any other client. A fresh one at each
    /// call: its `jti` is single-use.
    pub fn client_assertion(&self, client_id: &str, issuer: &str) -> Result<Option<String>, OAuthError> {
        match (&self.private_key, self.client_credentials) {
            (Some(key), true) => super::assertion::client_assertion(client_id, issuer, key).map(Some),
            _ => Ok(None),
        }
    }
}

/// The token endpoint method for a client with (or without) a secret: the one
/// the server supports, Basic first (RFC 6749 §2.3.1 makes it the one every
/// server must support).
pub fn method_for(metadata: &ServerMetadata, has_secret: bool) -> AuthMethod {
    if !has_secret {
        return AuthMethod::None;
    }
    let supported = metadata.token_endpoint_auth_methods_supported.as_deref().unwrap_or_default();
    if supported.iter().any(|m| m == "client_secret_basic") || supported.is_empty() {
        AuthMethod::Basic
    } else if supported.iter().any(|m| m == "client_secret_post") {
        AuthMethod::Post
    } else {
        AuthMethod::Basic
    }
}

/// The client of `grant: client_credentials`, from the config as it is now
/// (a rotated secret is used at once): its method is `private_key_jwt` with a
/// key, else the secret method the authorization server supports. Checked
/// against what the server advertises, so a mismatch is said plainly rather
/// than left to a refused request.
pub fn client_credentials_client(metadata: &ServerMetadata, settings: &Settings) -> Result<Client, OAuthError> {
    let client_id = settings
        .client_id
        .clone()
        .ok_or_else(|| OAuthError::Credentials("`grant: client_credentials` needs `oauth.client_id`".into()))?;
    if let Some(grants) = &metadata.grant_types_supported
        && !grants.iter().any(|g| g == "client_credentials")
    {
        return Err(OAuthError::Credentials(format!(
            "the authorization server {} does not offer the client_credentials grant (it lists {}): \
             `grant: client_credentials` cannot be used with it",
            metadata.issuer,
            grants.join(", ")
        )));
    }
    let supported = metadata.token_endpoint_auth_methods_supported.as_deref().unwrap_or_default();
    let auth_method = match &settings.private_key {
        Some(key) => {
            if !supported.is_empty() && !supported.iter().any(|m| m == "private_key_jwt") {
                return Err(OAuthError::Credentials(format!(
                    "the authorization server {} does not accept private_key_jwt (it accepts {}): use \
                     `oauth.client_secret` instead of `{}`",
                    metadata.issuer,
                    supported.join(", "),
                    key.config_key()
                )));
            }
            let algorithm = key.algorithm()?;
            if let Some(algs) = &metadata.token_endpoint_auth_signing_alg_values_supported
                && !algs.iter().any(|a| a == algorithm)
            {
                return Err(OAuthError::Credentials(format!(
                    "`{}` signs {algorithm}, which the authorization server {} does not accept (it accepts {})",
                    key.config_key(),
                    metadata.issuer,
                    algs.join(", ")
                )));
            }
            AuthMethod::PrivateKeyJwt
        }
        None => {
            let secret_methods = ["client_secret_basic", "client_secret_post"];
            if !supported.is_empty() && !supported.iter().any(|m| secret_methods.contains(&m.as_str())) {
                return Err(OAuthError::Credentials(format!(
                    "the authorization server {} does not accept a client secret (it accepts {}): \
                     `oauth.client_secret` cannot be used with it",
                    metadata.issuer,
                    supported.join(", ")
                )));
            }
            method_for(metadata, true)
        }
    };
    Ok(Client {
        client_id,
        client_secret: settings.client_secret.clone(),
        auth_method,
        kind: RegistrationKind::ClientCredentials,
        redirect_uri: String::new(),
    })
}

/// Registers (or names) the client, in the revision's order: pre-registered,
/// then a Client ID Metadata Document when the server supports it, then
/// dynamic registration.
pub async fn register(
    http: &reqwest::Client,
    metadata: &ServerMetadata,
    settings: &Settings,
    redirect_uri: &str,
) -> Result<Client, OAuthError> {
    if let Some(client_id) = &settings.client_id {
        return Ok(Client {
            client_id: client_id.clone(),
            client_secret: settings.client_secret.clone(),
            auth_method: method_for(metadata, settings.client_secret.is_some()),
            kind: RegistrationKind::PreRegistered,
            redirect_uri: redirect_uri.to_string(),
        });
    }
    if let Some(url) = &settings.client_metadata_url
        && metadata.client_id_metadata_document_supported
    {
        return Ok(Client {
            client_id: url.clone(),
            client_secret: None,
            auth_method: AuthMethod::None,
            kind: RegistrationKind::MetadataDocument,
            redirect_uri: redirect_uri.to_string(),
        });
    }
    let Some(endpoint) = &metadata.registration_endpoint else {
        return Err(OAuthError::Registration(
            "the authorization server offers no dynamic registration and the server's config names no client: \
             set `oauth: { client_id, client_secret }` (or `client_metadata_url`) for it"
                .into(),
        ));
    };
    // Ask for the method the server supports, a public client first.
    let supported = metadata.token_endpoint_auth_methods_supported.as_deref().unwrap_or_default();
    let wanted = ["none", "client_secret_basic", "client_secret_post"]
        .into_iter()
        .find(|m| supported.is_empty() || supported.iter().any(|s| s == m))
        .unwrap_or("none");
    let mut request = json!({
        "client_name": "mcp-gateway",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": wanted,
        "application_type": "native",
    });
    if let Some(scopes) = &settings.scopes {
        request["scope"] = json!(scopes.join(" "));
    }
    let response = http.post(endpoint).json(&request).send().await.map_err(|e| {
        OAuthError::Registration(format!("the registration endpoint: {}", crate::redact::http_error(&e.without_url())))
    })?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        return Err(OAuthError::Registration(format!(
            "the registration endpoint answered HTTP {status}: {}",
            error_text(&body)
        )));
    }
    #[derive(Deserialize)]
    struct Registered {
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        token_endpoint_auth_method: Option<String>,
    }
    let registered: Registered = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::Registration(format!("the registration answer is not a client: {e}")))?;
    let auth_method = match registered.token_endpoint_auth_method.as_deref() {
        Some(name) => AuthMethod::parse(name).ok_or_else(|| {
            OAuthError::Registration(format!(
                "the server registered the client for `{name}`, which the gateway does not speak"
            ))
        })?,
        None => method_for(metadata, registered.client_secret.is_some()),
    };
    Ok(Client {
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        auth_method,
        kind: RegistrationKind::Dynamic,
        redirect_uri: redirect_uri.to_string(),
    })
}

/// The authorization request's URL.
pub fn authorization_url(
    metadata: &ServerMetadata,
    client: &Client,
    challenge: &str,
    state: &str,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<Url, OAuthError> {
    let mut url = Url::parse(&metadata.authorization_endpoint)
        .map_err(|e| OAuthError::Discovery(format!("the authorization endpoint is not a URL: {e}")))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state);
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            query.append_pair("scope", scope);
        }
        if let Some(resource) = resource {
            query.append_pair("resource", resource);
        }
    }
    Ok(url)
}

/// RFC 9207: an `iss` in the authorization response must equal the issuer
/// byte for byte (no normalisation); a server that advertises the parameter
/// must send it.
pub fn check_iss(metadata: &ServerMetadata, iss: Option<&str>) -> Result<(), OAuthError> {
    match iss {
        Some(iss) if iss == metadata.issuer => Ok(()),
        Some(iss) => Err(OAuthError::Callback(format!(
            "the authorization response came from the issuer {iss:?}, not {:?} (RFC 9207): refused",
            metadata.issuer
        ))),
        None if metadata.authorization_response_iss_parameter_supported => Err(OAuthError::Callback(
            "the authorization server promises an `iss` in its response and sent none (RFC 9207): refused".into(),
        )),
        None => Ok(()),
    }
}

/// What the token endpoint answers.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// One token request's grant.
pub enum Grant<'a> {
    Code {
        code: &'a str,
        verifier: &'a str,
    },
    Refresh {
        refresh_token: &'a str,
    },
    /// `grant_type=client_credentials` (the scopes asked for; with
    /// `private_key_jwt`, the signed assertion that authenticates the client).
    ClientCredentials {
        scope: Option<&'a str>,
        assertion: Option<&'a str>,
    },
}

/// POSTs a token request: the grant, `resource` (RFC 8707) when there is one,
/// and the client's authentication.
pub async fn token(
    http: &reqwest::Client,
    metadata: &ServerMetadata,
    client: &Client,
    grant: Grant<'_>,
    resource: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let (body, basic) = token_form(client, grant, resource);
    let mut request = http.post(&metadata.token_endpoint).header("accept", "application/json");
    if let Some(basic) = basic {
        request = request.header("authorization", basic);
    }
    let response =
        request.header("content-type", "application/x-www-form-urlencoded").body(body).send().await.map_err(|e| {
            OAuthError::Unreachable(format!("the token endpoint: {}", crate::redact::http_error(&e.without_url())))
        })?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        let answer: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            OAuthError::Token(format!("the token endpoint answered HTTP {status} with no token: {}", error_text(&body)))
        })?;
        if answer.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(OAuthError::Token(format!(
                "the token endpoint issued a `{}` token; the gateway uses Bearer tokens only",
                answer.token_type.unwrap_or_default()
            )));
        }
        return Ok(answer);
    }
    let error = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
    match error.as_deref() {
        Some("invalid_grant") => {
            Err(OAuthError::LoginRequired("the authorization server refused the grant (invalid_grant)".into()))
        }
        Some("invalid_client" | "unauthorized_client" | "unsupported_grant_type") => Err(OAuthError::Credentials(
            format!("the authorization server refused the client's credentials (HTTP {status}: {})", error_text(&body)),
        )),
        _ if status.is_server_error() => {
            Err(OAuthError::Unreachable(format!("the token endpoint answered HTTP {status}")))
        }
        _ => Err(OAuthError::Token(format!("the token endpoint answered HTTP {status}: {}", error_text(&body)))),
    }
}

/// A token request's form body, and the `Authorization` header when the
/// client authenticates with HTTP Basic.
fn token_form(client: &Client, grant: Grant<'_>, resource: Option<&str>) -> (String, Option<String>) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::Code { code, verifier } => {
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &client.redirect_uri)
                .append_pair("code_verifier", verifier);
        }
        Grant::Refresh { refresh_token } => {
            form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh_token);
        }
        Grant::ClientCredentials { scope, assertion } => {
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = scope.filter(|s| !s.is_empty()) {
                form.append_pair("scope", scope);
            }
            if let Some(resource) = resource {
                form.append_pair("resource", resource);
            }
            let basic = authenticate(&mut form, client, assertion);
            return (form.finish(), basic);
        }
    }
    if let Some(resource) = resource {
        form.append_pair("resource", resource);
    }
    let basic = authenticate(&mut form, client, None);
    (form.finish(), basic)
}

/// The client's authentication on a request to the authorization server
/// (token or revocation endpoint): its id and secret in the form, its
/// `private_key_jwt` assertion (RFC 7523 §2.2; a fresh one per request), or
/// the `Authorization: Basic` header returned.
fn authenticate(
    form: &mut form_urlencoded::Serializer<'_, String>,
    client: &Client,
    assertion: Option<&str>,
) -> Option<String> {
    if let Some(assertion) = assertion {
        form.append_pair("client_id", &client.client_id)
            .append_pair("client_assertion_type", JWT_BEARER)
            .append_pair("client_assertion", assertion);
        return None;
    }
    match client.auth_method {
        AuthMethod::Basic => Some(basic_credentials(client)),
        AuthMethod::Post => {
            form.append_pair("client_id", &client.client_id);
            form.append_pair("client_secret", client.client_secret.as_deref().unwrap_or_default());
            None
        }
        AuthMethod::None | AuthMethod::PrivateKeyJwt => {
            form.append_pair("client_id", &client.client_id);
            None
        }
    }
}

/// RFC 7523 §2.2's `client_assertion_type`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Which token an RFC 7009 revocation request names.
#[derive(Clone, Copy)]
pub enum TokenKind {
    Refresh,
    Access,
}

/// Revokes `token` at the server's `revocation_endpoint` (RFC 7009 §2.1),
/// authenticated as at the token endpoint (`assertion`: a `private_key_jwt`
/// client's). A 200 is success, whether or not the token was still valid (§2.2).
pub async fn revoke(
    http: &reqwest::Client,
    endpoint: &str,
    client: &Client,
    assertion: Option<&str>,
    token: &str,
    kind: TokenKind,
) -> Result<(), OAuthError> {
    let hint = match kind {
        TokenKind::Refresh => "refresh_token",
        TokenKind::Access => "access_token",
    };
    // The serializer is not `Send`: it is done before the request awaits.
    let (body, basic) = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token).append_pair("token_type_hint", hint);
        let basic = authenticate(&mut form, client, assertion);
        (form.finish(), basic)
    };
    let mut request = http.post(endpoint).header("content-type", "application/x-www-form-urlencoded");
    if let Some(basic) = basic {
        request = request.header("authorization", basic);
    }
    let response = request.body(body).send().await.map_err(|e| {
        OAuthError::Unreachable(format!("the revocation endpoint: {}", crate::redact::http_error(&e.without_url())))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(OAuthError::Token(format!("the revocation endpoint answered HTTP {status}: {}", error_text(&body))))
}

/// `Authorization: Basic` per RFC 6749 §2.3.1: id and secret each
/// form-encoded, then joined with `:` and base64-encoded.
pub fn basic_credentials(client: &Client) -> String {
    let id: String = form_urlencoded::byte_serialize(client.client_id.as_bytes()).collect();
    let secret: String =
        form_urlencoded::byte_serialize(client.client_secret.as_deref().unwrap_or_default().as_bytes()).collect();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

/// An error answer for a message: its `error` and `error_description` when it
/// is OAuth JSON, else that it is not (an HTML page is not quoted).
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let error = v.get("error").and_then(|e| e.as_str()).unwrap_or("no `error` field");
            match v.get("error_description").and_then(|e| e.as_str()) {
                Some(d) => format!("{error}: {}", d.chars().take(200).collect::<String>()),
                None => error.to_string(),
            }
        }
        Err(_) => format!("a body that is not JSON ({} bytes)", body.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::discovery::fallback_metadata;

    fn metadata() -> ServerMetadata {
        let mut m = fallback_metadata(&Url::parse("https://as.example/mcp").unwrap());
        m.issuer = "https://as.example".into();
        m
    }

    fn client(method: AuthMethod) -> Client {
        Client {
            client_id: "id:1".into(),
            client_secret: Some("s&cr t".into()),
            auth_method: method,
            kind: RegistrationKind::PreRegistered,
            redirect_uri: "http://127.0.0.1:5/callback".into(),
        }
    }

    #[test]
    fn iss_must_match_the_issuer_exactly() {
        let mut m = metadata();
        assert!(check_iss(&m, Some("https://as.example")).is_ok());
        assert!(check_iss(&m, None).is_ok());
        assert!(check_iss(&m, Some("https://as.example/")).is_err(), "no trailing-slash normalisation");
        assert!(check_iss(&m, Some("HTTPS://as.example")).is_err(), "no case folding");
        assert!(check_iss(&m, Some("https://evil.example")).is_err());
        m.authorization_response_iss_parameter_supported = true;
        assert!(check_iss(&m, None).is_err(), "advertised and missing");
        assert!(check_iss(&m, Some("https://as.example")).is_ok());
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let header = basic_credentials(&client(AuthMethod::Basic));
        let encoded = header.strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3A1:s%26cr+t");
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_resource_and_only_a_real_scope() {
        let m = metadata();
        let c = client(AuthMethod::None);
        let url = authorization_url(&m, &c, "chal", "st&te", Some("a b"), Some("https://as.example/mcp")).unwrap();
        let pairs: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert_eq!(pairs["code_challenge"], "chal");
        assert_eq!(pairs["state"], "st&te");
        assert_eq!(pairs["scope"], "a b");
        assert_eq!(pairs["resource"], "https://as.example/mcp");
        assert_eq!(pairs["redirect_uri"], "http://127.0.0.1:5/callback");
        let bare = authorization_url(&m, &c, "chal", "s", Some(""), None).unwrap();
        assert!(!bare.query_pairs().any(|(k, _)| k == "scope" || k == "resource"));
    }

    #[test]
    fn the_method_follows_what_the_server_supports() {
        let mut m = metadata();
        assert_eq!(method_for(&m, false), AuthMethod::None);
        assert_eq!(method_for(&m, true), AuthMethod::Basic);
        m.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        assert_eq!(method_for(&m, true), AuthMethod::Post);
    }

    fn form_of(body: &str) -> std::collections::HashMap<String, String> {
        form_urlencoded::parse(body.as_bytes()).into_owned().collect()
    }

    #[test]
    fn a_client_credentials_request_carries_the_grant_scope_resource_and_the_clients_authentication() {
        let grant = || Grant::ClientCredentials { scope: Some("a b"), assertion: None };
        let (body, basic) = token_form(&client(AuthMethod::Basic), grant(), Some("https://as.example/mcp"));
        let form = form_of(&body);
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "a b");
        assert_eq!(form["resource"], "https://as.example/mcp");
        assert!(basic.is_some() && !form.contains_key("client_secret"), "{body}");
        let (body, basic) = token_form(&client(AuthMethod::Post), grant(), None);
        let form = form_of(&body);
        assert_eq!((form["client_id"].as_str(), form["client_secret"].as_str()), ("id:1", "s&cr t"));
        assert!(basic.is_none() && !form.contains_key("resource"));
        let jwt = Grant::ClientCredentials { scope: None, assertion: Some("a.b.c") };
        let (body, basic) = token_form(&client(AuthMethod::PrivateKeyJwt), jwt, None);
        let form = form_of(&body);
        assert_eq!(form["client_assertion_type"], JWT_BEARER);
        assert_eq!(form["client_assertion"], "a.b.c");
        assert!(basic.is_none() && !form.contains_key("client_secret") && !form.contains_key("scope"), "{body}");
    }

    #[test]
    fn a_client_credentials_client_is_checked_against_what_the_server_advertises() {
        let settings = Settings {
            client_id: Some("svc".into()),
            client_secret: Some("s".into()),
            client_credentials: true,
            ..Default::default()
        };
        let mut m = metadata();
        let c = client_credentials_client(&m, &settings).unwrap();
        assert_eq!((c.auth_method, c.kind), (AuthMethod::Basic, RegistrationKind::ClientCredentials));
        m.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        assert_eq!(client_credentials_client(&m, &settings).unwrap().auth_method, AuthMethod::Post);
        m.token_endpoint_auth_methods_supported = Some(vec!["private_key_jwt".into()]);
        let error = client_credentials_client(&m, &settings).unwrap_err().to_string();
        assert!(error.contains("does not accept a client secret"), "{error}");
        m.token_endpoint_auth_methods_supported = None;
        m.grant_types_supported = Some(vec!["authorization_code".into()]);
        let error = client_credentials_client(&m, &settings).unwrap_err().to_string();
        assert!(error.contains("does not offer the client_credentials grant"), "{error}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = client(AuthMethod::Basic);
        assert!(!format!("{c:?}").contains("s&cr t"));
        let s = Settings { client_secret: Some("hidden".into()), ..Default::default() };
        assert!(!format!("{s:?}").contains("hidden"));
    }
}
