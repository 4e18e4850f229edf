//! The config file: which servers exist and how they are run and shared.
//!
//! YAML and TOML carry the same data; the extension picks the parser. Every error
//! names the file, the line and what is wrong, because the person reading it is
//! editing that file right now.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::framing::DEFAULT_MAX_MESSAGE_BYTES;

/// How the gateway exposes tools to clients (see DESIGN.md, "Lazy discovery").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolsMode {
    #[default]
    Full,
    Lazy,
    Auto,
}

/// Who shares one backend instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Share {
    #[default]
    Global,
    Workspace,
    Credential,
    Session,
}

/// How a backend is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Stdio,
    Http,
    Docker,
}

/// `tools: { allow: [...], deny: [...] }` on a server: tool names, `*` matching
/// any run of characters. With `allow`, only those; `deny` always wins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl ToolFilter {
    /// Whether a tool (by its own name) is offered.
    pub fn permits(&self, tool: &str) -> bool {
        let allowed = self.allow.as_ref().is_none_or(|allow| allow.iter().any(|p| glob(p, tool)));
        allowed && !self.deny.iter().any(|p| glob(p, tool))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One backend MCP server, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawServer")]
pub struct ServerConfig {
    pub transport: Transport,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: IndexMap<String, String>,
    pub cwd: Option<String>,
    pub url: Option<String>,
    pub headers: IndexMap<String, String>,
    pub image: Option<String>,
    /// Docker: `-v` mounts (`host:container[:ro]`).
    pub volumes: Vec<String>,
    /// Docker: `--network`.
    pub network: Option<String>,
    pub share: Share,
    /// `false`: tool and prompt names are exposed without the `<server>__` prefix.
    pub prefix: bool,
    pub enabled: bool,
    /// Run session requests one at a time, so server→client requests (sampling,
    /// elicitation) are always attributed to the one caller.
    pub serialize: bool,
    /// How many instances of the server (per sharing key) may run side by
    /// side for calls that ask a client something (sampling, elicitation)
    /// while another session's such call is in flight; 1 queues those calls
    /// on the one instance instead.
    #[serde(skip_serializing_if = "is_default_max_instances")]
    pub max_instances: u32,
    /// Overrides the global `request_timeout_secs` for this server.
    pub request_timeout_secs: Option<u64>,
    /// Overrides the global `idle_timeout` for this server.
    pub idle_timeout: Option<std::time::Duration>,
    /// Which of the server's tools are offered (and may be called).
    pub tools: ToolFilter,
    /// One line shown to people and models about what the server is for.
    pub description: Option<String>,
    /// The directories (`~` allowed) whose sessions are offered this server;
    /// empty: every session. A client's project-only server (Claude Code's
    /// `projects.<dir>.mcpServers`) is imported with its directory here, so
    /// the gateway keeps it to that project as the client did.
    pub projects: Vec<String>,
    /// Which protocol era to speak to the server.
    pub protocol: Protocol,
    /// A remote server's OAuth client (`oauth:`); without it, a server that
    /// answers 401 is logged in to with a client the gateway registers itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthConfig>,
    /// Digests of the definition, made once when it is read: they are asked
    /// for on every call (the catalog's key), and a definition never changes.
    #[serde(skip)]
    digests: Digests,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Digests {
    fingerprint: String,
    revision: String,
}

/// The shape on disk; validated into [`ServerConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(rename = "type")]
    transport: Option<Transport>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: IndexMap<String, String>,
    cwd: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: IndexMap<String, String>,
    image: Option<String>,
    #[serde(default)]
    volumes: Vec<String>,
    network: Option<String>,
    #[serde(default)]
    share: Share,
    #[serde(default = "yes")]
    prefix: bool,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    serialize: bool,
    #[serde(default = "default_max_instances")]
    max_instances: u32,
    request_timeout_secs: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<std::time::Duration>,
    #[serde(default)]
    tools: ToolFilter,
    description: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    protocol: Protocol,
    oauth: Option<OAuthConfig>,
}

/// `oauth:` of a remote server: a pre-registered client (`client_id`, with
/// `client_secret` for a confidential one; values via `${VAR}`), or the URL
/// of a Client ID Metadata Document, and the scopes to ask for instead of the
/// server's. With `grant: client_credentials` the gateway is a machine
/// client (SEP-1046): no person, no browser; it authenticates with
/// `client_secret` or a private key (`private_key_jwt`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// How the gateway gets its tokens: a person's login (the default) or
    /// the client-credentials grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<OAuthGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The loopback redirect URI the client was registered with
    /// (`http://127.0.0.1:PORT/PATH`, `http://[::1]:PORT/PATH` or
    /// `http://localhost:PORT/PATH`): a login listens on exactly that port
    /// and path and sends this string as it is written. Without it, a free
    /// port each time (what dynamic registration allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// `grant: client_credentials` with `private_key_jwt` (RFC 7523): the
    /// PEM of the private key (EC P-256 for ES256, or RSA for RS256), as a
    /// `${VAR}` of the gateway's `.env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// The same key as a PEM file (a path, `${VAR}`s expanded), read when a
    /// token is fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<String>,
}

/// `oauth.grant`: how the gateway gets a remote server's tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    /// A person logs in (`auth login`, a browser): the authorization code flow.
    #[default]
    AuthorizationCode,
    /// The gateway fetches tokens itself with its client credentials
    /// (the `io.modelcontextprotocol/oauth-client-credentials` extension).
    ClientCredentials,
}

/// Why an `oauth:` block does not hold together (the fields it names are
/// those of the block).
fn check_oauth(oauth: &OAuthConfig) -> Result<(), String> {
    if oauth.client_secret.is_some() && oauth.client_id.is_none() {
        return Err("`oauth.client_secret` needs `oauth.client_id`".into());
    }
    if oauth.client_id.is_some() && oauth.client_metadata_url.is_some() {
        return Err("`oauth` names a pre-registered `client_id` and a `client_metadata_url`: pick one".into());
    }
    if oauth.private_key.is_some() && oauth.private_key_file.is_some() {
        return Err("`oauth` names a `private_key` and a `private_key_file`: pick one".into());
    }
    if let Some(file) = &oauth.private_key_file
        && !file.starts_with('/')
        && !file.starts_with("${")
    {
        return Err(format!(
            "`oauth.private_key_file` {file:?} must be an absolute path (the daemon's directory is not the config's)"
        ));
    }
    let has_key = oauth.private_key.is_some() || oauth.private_key_file.is_some();
    if oauth.grant != Some(OAuthGrant::ClientCredentials) {
        if has_key {
            return Err("`oauth.private_key` and `oauth.private_key_file` are for `grant: client_credentials`".into());
        }
        return Ok(());
    }
    if oauth.client_id.is_none() {
        return Err("`grant: client_credentials` needs `oauth.client_id` (the client the authorization server \
                    registered for the gateway)"
            .into());
    }
    if oauth.client_secret.is_some() == has_key {
        return Err("`grant: client_credentials` needs one way to authenticate: `oauth.client_secret`, or a \
                    private key (`oauth.private_key` or `oauth.private_key_file`) for private_key_jwt"
            .into());
    }
    for (set, key) in
        [(oauth.redirect_uri.is_some(), "redirect_uri"), (oauth.client_metadata_url.is_some(), "client_metadata_url")]
    {
        if set {
            return Err(format!(
                "`oauth.{key}` is for a person's login; `grant: client_credentials` has no browser and no redirect"
            ));
        }
    }
    Ok(())
}

/// Why `oauth.redirect_uri` is not a loopback redirect the gateway can listen
/// on: RFC 8252 §7.3 (http on a loopback address; a port, since the gateway
/// binds it).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`oauth.redirect_uri` {uri:?} {why}"));
    let Ok(url) = url::Url::parse(uri) else { return bad("is not a URL") };
    if url.scheme() != "http" {
        return bad("must be an http:// loopback URL (the gateway listens there itself; RFC 8252 §7.3)");
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if !loopback {
        return bad("must be on 127.0.0.1, [::1] or localhost");
    }
    if url.port().is_none() {
        return bad("needs the port the client was registered with (`http://127.0.0.1:PORT/callback`)");
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return bad("may have a path, but no query, fragment or user");
    }
    Ok(())
}

/// Which protocol era the gateway speaks to a server: `auto` asks with
/// `server/discover` (2026-07-28) first and falls back to `initialize`, once per
/// definition; `handshake` and `modern` skip the question (for a server that
/// mishandles an unknown first request, or one known to be modern).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Auto,
    Handshake,
    Modern,
}

fn yes() -> bool {
    true
}

/// Four: enough for the terminals of one person asking at once, few enough
/// that a burst cannot fill the machine with copies of a server.
pub const DEFAULT_MAX_INSTANCES: u32 = 4;

fn default_max_instances() -> u32 {
    DEFAULT_MAX_INSTANCES
}

fn is_default_max_instances(n: &u32) -> bool {
    *n == DEFAULT_MAX_INSTANCES
}

impl TryFrom<RawServer> for ServerConfig {
    type Error = String;

    fn try_from(raw: RawServer) -> Result<Self, String> {
        let transport = match raw.transport {
            Some(t) => t,
            None if raw.url.is_some() => Transport::Http,
            None if raw.image.is_some() => Transport::Docker,
            None if raw.command.is_some() => Transport::Stdio,
            None => {
                return Err("a server needs `command` (a stdio server), `url` (a remote server) \
                            or `type: docker` with `image`"
                    .into());
            }
        };
        let required = match transport {
            Transport::Stdio => raw.command.as_ref().map(|_| ()).ok_or("`command`"),
            Transport::Http => raw.url.as_ref().map(|_| ()).ok_or("`url`"),
            Transport::Docker => raw.image.as_ref().map(|_| ()).ok_or("`image`"),
        };
        if let Err(field) = required {
            return Err(format!("a {transport:?} server needs {field}").to_lowercase());
        }
        if raw.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err("`command` is empty".into());
        }
        if raw.oauth.is_some() && transport != Transport::Http {
            return Err("`oauth` is for a remote server (`url`) only".into());
        }
        if let Some(oauth) = &raw.oauth {
            check_oauth(oauth)?;
            if let Some(uri) = &oauth.redirect_uri {
                check_redirect_uri(uri)?;
            }
        }
        if raw.max_instances == 0 {
            return Err("`max_instances` must be at least 1".into());
        }
        let mut server = Self {
            transport,
            command: raw.command,
            args: raw.args,
            env: raw.env,
            cwd: raw.cwd,
            url: raw.url,
            headers: raw.headers,
            image: raw.image,
            volumes: raw.volumes,
            network: raw.network,
            share: raw.share,
            prefix: raw.prefix,
            enabled: raw.enabled,
            serialize: raw.serialize,
            max_instances: raw.max_instances,
            request_timeout_secs: raw.request_timeout_secs,
            idle_timeout: raw.idle_timeout,
            tools: raw.tools,
            description: raw.description,
            projects: raw.projects,
            protocol: raw.protocol,
            oauth: raw.oauth,
            digests: Digests::default(),
        };
        server.digests = Digests { fingerprint: server.compute_fingerprint(), revision: server.compute_revision() };
        Ok(server)
    }
}

impl ServerConfig {
    /// The same definition turned on or off (its digests follow).
    pub fn with_enabled(&self, enabled: bool) -> ServerConfig {
        let mut server = ServerConfig { enabled, digests: Digests::default(), ..self.clone() };
        server.digests = Digests { fingerprint: server.compute_fingerprint(), revision: server.compute_revision() };
        server
    }

    /// A fingerprint of everything that changes what the server is. Listings cached
    /// under another fingerprint belong to an older definition and are not reused.
    pub fn fingerprint(&self) -> String {
        self.digests.fingerprint.clone()
    }

    /// The same, borrowed.
    pub fn fingerprint_str(&self) -> &str {
        &self.digests.fingerprint
    }

    /// A digest of the whole definition, settings included: any edit makes it
    /// a different instance (the old one drains).
    pub fn revision(&self) -> String {
        self.digests.revision.clone()
    }

    /// The same, borrowed.
    pub fn revision_str(&self) -> &str {
        &self.digests.revision
    }

    fn compute_revision(&self) -> String {
        hex_digest(&serde_json::to_vec(self).unwrap_or_default(), 12)
    }

    fn compute_fingerprint(&self) -> String {
        let json = serde_json::to_vec(&(
            &self.transport,
            &self.command,
            &self.args,
            &self.env,
            &self.cwd,
            &self.url,
            &self.headers,
            &self.image,
        ))
        .unwrap_or_default();
        hex_digest(&json, 12)
    }
}

/// The first `bytes` bytes of the SHA-256 of `data`, in hex (for names and
/// fingerprints, never for secrets: those get the keyed hash in `credentials`).
pub(crate) fn hex_digest(data: &[u8], bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).iter().take(bytes).map(|b| format!("{b:02x}")).collect()
}

/// The `http:` section: a Streamable HTTP front door at `/mcp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; loopback by default.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    #[serde(default)]
    pub auth: HttpAuth,
    /// `Origin`s allowed besides the loopback ones (DNS-rebinding protection).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// `Host`s allowed besides the loopback ones.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default = "default_http_body")]
    pub max_body_bytes: usize,
    /// Open connections at most; more are closed as they arrive.
    #[serde(default = "default_http_connections")]
    pub max_connections: usize,
    /// Live sessions at most; an `initialize` beyond gets 503.
    #[serde(default = "default_http_sessions")]
    pub max_sessions: usize,
    /// A session with no request in flight and no stream open for this long is
    /// closed; its next request gets 404, which tells the client to start anew.
    #[serde(default = "default_http_session_idle", with = "humantime_serde")]
    pub session_idle_timeout: std::time::Duration,
    /// How long a client may take to send a request's headers, and again its
    /// body; a slower one is cut off (slowloris).
    #[serde(default = "default_http_read_timeout", with = "humantime_serde")]
    pub read_timeout: std::time::Duration,
}

fn default_http_listen() -> String {
    "127.0.0.1:8989".into()
}
fn default_http_body() -> usize {
    4 * 1024 * 1024
}
fn default_http_connections() -> usize {
    512
}
fn default_http_sessions() -> usize {
    256
}
fn default_http_read_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}
fn default_http_session_idle() -> std::time::Duration {
    std::time::Duration::from_secs(3600)
}

/// Who may use the HTTP front door, strongest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuth {
    /// `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_tokens: Vec<TokenEntry>,
    /// An API key in a header (`api_key_header`, default `X-API-Key`).
    #[serde(default)]
    pub api_keys: Vec<TokenEntry>,
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    /// Trust loopback peers without credentials (off unless enabled).
    #[serde(default)]
    pub localhost: bool,
}

fn default_api_key_header() -> String {
    "x-api-key".into()
}

/// A token, optionally tied to a profile or a workspace (one token per project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenEntry {
    Plain(String),
    Mapped {
        token: String,
        #[serde(default)]
        profile: Option<String>,
        #[serde(default)]
        workspace: Option<String>,
    },
}

impl TokenEntry {
    pub fn token(&self) -> &str {
        match self {
            TokenEntry::Plain(token) | TokenEntry::Mapped { token, .. } => token,
        }
    }
    pub fn profile(&self) -> Option<&str> {
        match self {
            TokenEntry::Mapped { profile, .. } => profile.as_deref(),
            TokenEntry::Plain(_) => None,
        }
    }
    pub fn workspace(&self) -> Option<&str> {
        match self {
            TokenEntry::Mapped { workspace, .. } => workspace.as_deref(),
            TokenEntry::Plain(_) => None,
        }
    }
}

/// A profile selects servers and adds environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub servers: Option<Vec<String>>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    #[serde(default)]
    pub tools: Option<ToolsMode>,
}

/// A workspace mapping: a path (with `~`) to a profile, and whether the
/// workspace's own `.mcp-gateway.yaml` may add servers (it runs their commands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceMapping {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub trust: bool,
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub tools: ToolsMode,
    #[serde(default)]
    pub servers: IndexMap<String, ServerConfig>,
    #[serde(default)]
    pub profiles: IndexMap<String, Profile>,
    #[serde(default)]
    pub workspaces: IndexMap<String, WorkspaceMapping>,
    /// The HTTP front door (off unless this section is present).
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// The largest message accepted from a client or backend, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How many items one page of an aggregated `*/list` result holds.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// With `tools: auto`, the estimated size (in tokens, bytes/4) of the full
    /// tool list above which sessions get the lazy meta-tools instead.
    #[serde(default = "default_lazy_threshold")]
    pub lazy_threshold_tokens: usize,
    /// How long a backend may take to start and answer `initialize`, in seconds.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout_secs: u64,
    /// How long an aggregated list (`tools/list`, …) waits for a server whose
    /// listing is not known yet, in seconds. Past that it is answered without
    /// that server, and sessions get `notifications/*/list_changed` when its
    /// listing arrives; a call to one server never waits for another.
    #[serde(default = "default_list_wait")]
    pub list_wait_secs: u64,
    /// How long a request may wait for its backend's answer before it fails (and
    /// the backend is told it was cancelled), in seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// A backend no session has used for this long is stopped (`10m`, `30s`, …).
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: std::time::Duration,
    /// When socket-activated (systemd, launchd): exit after this long with no
    /// session and no backend, so the service manager starts it again on the
    /// next connect. Off unless set.
    #[serde(default, with = "humantime_serde")]
    pub idle_exit: Option<std::time::Duration>,
    /// Restarts, backoff, the circuit breaker and health pings.
    #[serde(default)]
    pub supervision: Supervision,
    /// Files or directories that mark a workspace root.
    #[serde(default = "default_markers")]
    pub workspace_markers: Vec<String>,
    /// How long shutdown waits for backends after SIGTERM before SIGKILL, in seconds.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Bounds on what clients can make the daemon hold.
    #[serde(default)]
    pub limits: Limits,
    /// Where the daemon's trace spans go (off unless set).
    #[serde(default)]
    pub telemetry: Telemetry,
    /// Where OAuth token material (access and refresh tokens, a registered
    /// client's secret) is kept: `files` under the gateway home (the
    /// default), or `keyring`, the OS keyring (a build with the `os-keyring`
    /// cargo feature).
    #[serde(default)]
    pub oauth_store: OAuthStore,
}

/// `oauth_store:`, where OAuth token material is kept. Whatever it says, the
/// non-secret rest of a credential (issuer, scopes, expiry, how the client is
/// registered) stays in the gateway home for `auth status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthStore {
    /// Files mode 0600 in `<home>/oauth` (mode 0700).
    #[default]
    Files,
    /// The OS keyring: the kernel keyring (keyutils) on Linux, the Keychain
    /// on macOS.
    Keyring,
}

/// Whether this binary was built with the OS keyring (`--features os-keyring`).
pub const KEYRING_BUILT: bool = cfg!(feature = "os-keyring");

/// The `telemetry:` section. Read when the daemon starts (a change needs
/// `mcp-gateway stop`; the next terminal starts it again): the exporter is
/// part of the daemon's logging, set up before anything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// An OpenTelemetry collector's OTLP/HTTP base URL (`http://localhost:4318`):
    /// spans go to its `/v1/traces`, as with `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// which wins when the daemon's environment has it (a service manager's
    /// setting overrides the file, as for any OpenTelemetry SDK).
    pub otlp_endpoint: Option<String>,
}

/// The `limits:` section: bounds on everything a client controls, each
/// refused with an error that names the limit when reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Sessions at once over the Unix socket (the HTTP front door has its own).
    pub sessions: usize,
    /// Requests one session may have in flight.
    pub requests_per_session: usize,
    /// Messages queued for a session that is not reading them; past this the
    /// session is disconnected (its calls are cancelled), and the reason logged.
    pub backlog_per_session: usize,
    /// The same bound in bytes (serialized size of what is queued): a few
    /// large unread answers hold more memory than thousands of small ones.
    pub backlog_bytes_per_session: usize,
    /// Resource subscriptions one session may hold.
    pub subscriptions_per_session: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sessions: 1024,
            requests_per_session: 1000,
            backlog_per_session: 10_000,
            backlog_bytes_per_session: 64 * 1024 * 1024,
            subscriptions_per_session: 1000,
        }
    }
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}
fn default_lazy_threshold() -> usize {
    10_000
}
fn default_page_size() -> usize {
    1000
}
fn default_startup_timeout() -> u64 {
    60
}
fn default_list_wait() -> u64 {
    10
}
fn default_request_timeout() -> u64 {
    600
}
fn default_idle_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(600)
}
fn default_shutdown_grace() -> u64 {
    5
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tools: ToolsMode::default(),
            servers: IndexMap::new(),
            profiles: IndexMap::new(),
            workspaces: IndexMap::new(),
            http: None,
            max_message_bytes: default_max_message_bytes(),
            page_size: default_page_size(),
            lazy_threshold_tokens: default_lazy_threshold(),
            startup_timeout_secs: default_startup_timeout(),
            list_wait_secs: default_list_wait(),
            request_timeout_secs: default_request_timeout(),
            idle_timeout: default_idle_timeout(),
            workspace_markers: default_markers(),
            supervision: Default::default(),
            idle_exit: None,
            shutdown_grace_secs: default_shutdown_grace(),
            limits: Limits::default(),
            telemetry: Telemetry::default(),
            oauth_store: OAuthStore::default(),
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: unknown config format; use a .yaml, .yml or .toml file")]
    Format { path: PathBuf },
}

impl Config {
    /// Loads a config file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Config>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConfigError::Read { path: path.into(), source }),
        };
        Self::parse(path, &text).map(Some)
    }

    /// Parses config text; `path` picks the format and names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        let config: Config = match ext {
            "yaml" | "yml" => parse_yaml(path, text)?,
            "toml" => parse_toml(path, text)?,
            _ => return Err(ConfigError::Format { path: path.into() }),
        };
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.into(), message };
        for name in self.servers.keys() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(invalid(format!(
                    "server name {name:?} may only use letters, digits, `_` and `-` (it becomes part of tool names)"
                )));
            }
        }
        for (path, mapping) in &self.workspaces {
            if let Some(profile) = &mapping.profile
                && !self.profiles.contains_key(profile)
            {
                return Err(invalid(format!(
                    "workspace {path:?} names profile `{profile}`, which is not defined under `profiles`"
                )));
            }
        }
        for (profile, p) in &self.profiles {
            for server in p.servers.iter().flatten() {
                if !self.servers.contains_key(server) {
                    return Err(invalid(format!(
                        "profile `{profile}` names server `{server}`, which is not defined under `servers`"
                    )));
                }
            }
        }
        if self.max_message_bytes < 1024 {
            return Err(invalid("`max_message_bytes` must be at least 1024".into()));
        }
        if self.page_size == 0 {
            return Err(invalid("`page_size` must be at least 1".into()));
        }
        if self.oauth_store == OAuthStore::Keyring && !KEYRING_BUILT {
            return Err(invalid(
                "`oauth_store: keyring` asks for the OS keyring, but this mcp-gateway was built without it: \
                 install a build with the `os-keyring` cargo feature (`cargo install mcp-gateway --features \
                 os-keyring`), or remove the line to keep tokens in files under the gateway home"
                    .into(),
            ));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !url::Url::parse(endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(invalid(format!(
                "`telemetry.otlp_endpoint` {:?} is not an http:// or https:// URL (an OTLP/HTTP collector, \
                 such as http://localhost:4318)",
                crate::redact::redacted_url(endpoint)
            )));
        }
        Ok(())
    }
}

fn parse_yaml(path: &Path, text: &str) -> Result<Config, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        // serde_norway appends " at line N column M" to its message; we say it up front.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        ConfigError::Syntax { path: path.into(), line, column, message }
    })
}

fn parse_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = offset - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        ConfigError::Syntax { path: path.into(), line, column, message: e.message().trim().to_string() }
    })
}

/// A `${VAR}` that had no value and no default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable `{0}` is not set (or is empty)")]
pub struct MissingVariable(pub String);

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Other `$` are kept.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, MissingVariable> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let (Some(body), Some(end)) = (tail.strip_prefix("${"), tail.find('}')) {
            let body = &body[..end - 2];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(MissingVariable(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The file a workspace may hold to add servers (when trusted) or pick a profile.
pub const WORKSPACE_FILE: &str = ".mcp-gateway.yaml";

/// The default markers of a workspace root.
pub fn default_markers() -> Vec<String> {
    vec![WORKSPACE_FILE.into(), ".env".into(), ".git".into()]
}

/// The `supervision:` section of the config: when a failed backend starts
/// again, and how often idle ones are pinged (the policy is `backend::supervisor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Supervision {
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
    pub breaker_failures: usize,
    #[serde(with = "humantime_serde")]
    pub breaker_window: Duration,
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    #[serde(with = "humantime_serde")]
    pub stable_after: Duration,
    /// Idle backends are pinged this often…
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// …and restarted when they do not answer within this.
    #[serde(with = "humantime_serde")]
    pub health_timeout: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            breaker_failures: 5,
            breaker_window: Duration::from_secs(60),
            breaker_cooldown: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            health_interval: Duration::from_secs(30),
            health_timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oauth_block_is_for_remote_servers_and_names_one_kind_of_client() {
        let parse = |yaml: &str| Config::parse(Path::new("c.yaml"), yaml).map_err(|e| e.to_string());
        let ok = parse(
            "servers:\n  r:\n    url: https://x.example/mcp\n    oauth: { client_id: id, client_secret: \"${S}\", scopes: [a, b] }\n",
        )
        .unwrap();
        let oauth = ok.servers["r"].oauth.clone().unwrap();
        assert_eq!(oauth.client_secret.as_deref(), Some("${S}"));
        assert_eq!(oauth.scopes, Some(vec!["a".to_string(), "b".to_string()]));
        let stdio = parse("servers:\n  s:\n    command: x\n    oauth: { client_id: id }\n").unwrap_err();
        assert!(stdio.contains("remote server"), "{stdio}");
        let secret_alone = parse("servers:\n  r:\n    url: https://x\n    oauth: { client_secret: s }\n").unwrap_err();
        assert!(secret_alone.contains("needs `oauth.client_id`"), "{secret_alone}");
        let both =
            parse("servers:\n  r:\n    url: https://x\n    oauth: { client_id: i, client_metadata_url: https://m }\n")
                .unwrap_err();
        assert!(both.contains("pick one"), "{both}");
        let unknown = parse("servers:\n  r:\n    url: https://x\n    oauth: { client: i }\n").unwrap_err();
        assert!(unknown.contains("client"), "{unknown}");
    }

    #[test]
    fn client_credentials_need_an_id_and_exactly_one_way_to_authenticate() {
        let parse = |oauth: &str| {
            Config::parse(Path::new("c.yaml"), &format!("servers:\n  r:\n    url: https://x\n    oauth: {oauth}\n"))
                .map(|c| c.servers["r"].oauth.clone().unwrap())
                .map_err(|e| e.to_string())
        };
        let secret = parse("{ grant: client_credentials, client_id: i, client_secret: \"${S}\" }").unwrap();
        assert_eq!(secret.grant, Some(OAuthGrant::ClientCredentials));
        parse("{ grant: client_credentials, client_id: i, private_key: \"${K}\" }").unwrap();
        parse("{ grant: client_credentials, client_id: i, private_key_file: /k.pem }").unwrap();
        for (bad, why) in [
            ("{ grant: client_credentials, client_secret: s }", "needs `oauth.client_id`"),
            ("{ grant: client_credentials, client_id: i }", "needs one way to authenticate"),
            ("{ grant: client_credentials, client_id: i, client_secret: s, private_key: k }", "one way"),
            ("{ grant: client_credentials, client_id: i, private_key: k, private_key_file: /f }", "pick one"),
            ("{ grant: client_credentials, client_id: i, private_key_file: k.pem }", "absolute path"),
            (
                "{ grant: client_credentials, client_id: i, client_secret: s, redirect_uri: \"http://127.0.0.1:5/cb\" }",
                "`oauth.redirect_uri` is for a person's login",
            ),
            ("{ client_id: i, private_key: k }", "for `grant: client_credentials`"),
            ("{ grant: password, client_id: i }", "grant"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(why) && error.contains('r'), "{bad}: {error}");
        }
    }

    #[test]
    fn an_oauth_redirect_uri_is_a_loopback_http_url_with_a_port() {
        let parse = |uri: &str| {
            let yaml =
                format!("servers:\n  r:\n    url: https://x\n    oauth: {{ client_id: i, redirect_uri: {uri:?} }}\n");
            Config::parse(Path::new("c.yaml"), &yaml)
                .map(|c| c.servers["r"].oauth.clone().unwrap())
                .map_err(|e| e.to_string())
        };
        for good in [
            "http://127.0.0.1:8765/callback",
            "http://localhost:33418/oauth/cb",
            "http://[::1]:9000/",
            "http://127.0.0.1:1234",
        ] {
            assert_eq!(parse(good).unwrap().redirect_uri.as_deref(), Some(good), "kept as written");
        }
        for (bad, why) in [
            ("https://127.0.0.1:8765/callback", "http://"),
            ("http://example.com:8765/callback", "127.0.0.1, [::1] or localhost"),
            ("http://127.0.0.2:8765/callback", "127.0.0.1, [::1] or localhost"),
            ("http://127.0.0.1/callback", "needs the port"),
            ("http://127.0.0.1:80/callback", "needs the port"),
            ("http://127.0.0.1:8765/callback?x=1", "no query"),
            ("http://127.0.0.1:8765/callback#f", "no query"),
            ("127.0.0.1:8765", "not a URL"),
            ("not a url", "not a URL"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains("`oauth.redirect_uri`") && error.contains(why), "{bad}: {error}");
            assert!(error.starts_with("c.yaml:"), "names the file and line: {error}");
        }
    }

    #[test]
    fn oauth_store_keyring_needs_the_keyring_build() {
        let parse = |yaml: &str| Config::parse(Path::new("c.yaml"), yaml).map_err(|e| e.to_string());
        assert_eq!(parse("servers: {}\n").unwrap().oauth_store, OAuthStore::Files);
        assert_eq!(parse("oauth_store: files\n").unwrap().oauth_store, OAuthStore::Files);
        let keyring = parse("oauth_store: keyring\n");
        if KEYRING_BUILT {
            assert_eq!(keyring.unwrap().oauth_store, OAuthStore::Keyring);
        } else {
            let error = keyring.unwrap_err();
            assert!(error.starts_with("c.yaml: `oauth_store: keyring`"), "{error}");
            assert!(error.contains("`os-keyring` cargo feature"), "{error}");
        }
        let typo = parse("oauth_store: vault\n").unwrap_err();
        assert!(typo.contains("files") && typo.contains("keyring"), "{typo}");
    }

    #[test]
    fn yaml_and_toml_carry_the_same_data() {
        let yaml = r#"
servers:
  everything:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-everything"]
  remote:
    url: https://example.com/mcp
    headers: { Authorization: "Bearer ${TOKEN}" }
    prefix: false
"#;
        let toml = r#"
[servers.everything]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything"]
[servers.remote]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer ${TOKEN}" }
prefix = false
"#;
        let a = Config::parse(Path::new("c.yaml"), yaml).unwrap();
        let b = Config::parse(Path::new("c.toml"), toml).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.servers["everything"].transport, Transport::Stdio);
        assert_eq!(a.servers["remote"].transport, Transport::Http);
        assert!(!a.servers["remote"].prefix);
        assert_eq!(a.servers.keys().collect::<Vec<_>>(), ["everything", "remote"]);
    }

    #[test]
    fn the_design_example_loads() {
        let yaml = r#"
tools: full
servers:
  everything:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-everything"]
    share: global
  github:
    command: github-mcp-server
    args: [stdio]
    env: { GITHUB_PERSONAL_ACCESS_TOKEN: "${GITHUB_TOKEN}" }
    share: credential
  context7:
    url: https://mcp.context7.com/mcp
    headers: { Authorization: "Bearer ${CONTEXT7_KEY}" }
  sandboxed:
    type: docker
    image: example/mcp-tool:1
profiles:   { work: { servers: [github, everything], env: { GITHUB_ORG: acme } } }
workspaces: { "~/src/acme": { profile: work } }
http:       { listen: "127.0.0.1:8989", auth: { bearer_tokens: ["${GATEWAY_TOKEN}"] } }
"#;
        let c = Config::parse(Path::new("config.yaml"), yaml).unwrap();
        assert_eq!(c.servers.len(), 4);
        assert_eq!(c.servers["github"].share, Share::Credential);
        assert_eq!(c.servers["sandboxed"].transport, Transport::Docker);
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let yaml = "servers:\n  a:\n    command: x\n  b:\n    comand: y\n";
        let err = Config::parse(Path::new("/h/config.yaml"), yaml).unwrap_err().to_string();
        assert!(err.starts_with("/h/config.yaml:5:"), "{err}");
        assert!(err.contains("comand"), "{err}");

        let err = Config::parse(Path::new("c.yaml"), "servers:\n  a:\n    args: [x]\n").unwrap_err().to_string();
        assert!(err.contains("needs `command`"), "{err}");

        let toml = "[servers.a]\ncommand = \"x\"\nshare = \"sometimes\"\n";
        let err = Config::parse(Path::new("c.toml"), toml).unwrap_err().to_string();
        assert!(err.starts_with("c.toml:3:"), "{err}");
        assert!(err.contains("sometimes"), "{err}");

        let err = Config::parse(Path::new("c.yaml"), "servers: [").unwrap_err().to_string();
        assert!(err.starts_with("c.yaml:1:"), "{err}");

        let err = Config::parse(Path::new("c.json"), "{}").unwrap_err().to_string();
        assert!(err.contains(".yaml, .yml or .toml"), "{err}");

        let err = Config::parse(Path::new("c.yaml"), "servers:\n  'a b':\n    command: x\n").unwrap_err().to_string();
        assert!(err.contains("may only use"), "{err}");
    }

    #[test]
    fn tool_filters_glob_allow_and_deny() {
        let filter = ToolFilter { allow: Some(vec!["read_*".into(), "list".into()]), deny: vec!["*_secret".into()] };
        assert!(filter.permits("read_file"));
        assert!(filter.permits("list"));
        assert!(!filter.permits("write_file"));
        assert!(!filter.permits("read_secret"));
        assert!(!filter.permits("listing"));
        let deny_only = ToolFilter { allow: None, deny: vec!["delete*".into()] };
        assert!(deny_only.permits("create"));
        assert!(!deny_only.permits("delete_repo"));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy") && glob("*", "") && glob("ab", "ab"));
    }

    #[test]
    fn digests_follow_the_definition() {
        let server = |extra: &str| -> ServerConfig {
            serde_norway::from_str(&format!("command: x\nargs: [a]\n{extra}")).unwrap()
        };
        assert_eq!(server("").revision(), server("").revision());
        assert_eq!(server("").revision(), server("").compute_revision(), "made once, the same as made now");
        assert_eq!(server("serialize: true\n").fingerprint(), server("").fingerprint(), "settings keep the listing");
        assert_ne!(server("serialize: true\n").revision(), server("").revision(), "but make a new instance");
        assert_ne!(server("cwd: /tmp\n").fingerprint(), server("").fingerprint());
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        assert_eq!(Config::parse(Path::new("c.yaml"), "\n").unwrap(), Config::default());
    }

    #[test]
    fn expands_variables() {
        let lookup = |name: &str| match name {
            "TOKEN" => Some("s3cret".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand("Bearer ${TOKEN}", &lookup).unwrap(), "Bearer s3cret");
        assert_eq!(expand("${NOPE:-fallback}/x", &lookup).unwrap(), "fallback/x");
        assert_eq!(expand("${EMPTY:-d}", &lookup).unwrap(), "d");
        assert_eq!(expand("$$HOME and $PATH and ${", &lookup).unwrap(), "$HOME and $PATH and ${");
        assert_eq!(expand("${NOPE}", &lookup).unwrap_err(), MissingVariable("NOPE".into()));
    }
}
