//! `mcp-gateway federate URL --profile NAME`: the reverse of `import --from
//! URL`. The HTTP front door is registered in the team gateway (IBM
//! ContextForge's `POST /gateways`) as a federated peer, so the team gateway
//! reaches this machine's servers: only those of one profile, because the
//! bearer token it is given is the front door's token mapped to that profile
//! (`http.auth.bearer_tokens: [{ token: "${VAR}", profile: NAME }]`).
//!
//! Nothing is registered by accident: the front door must be on (`http:`),
//! the profile must exist and have its own token, and a front door that
//! listens on loopback is refused for a team gateway on another machine,
//! which could never reach it. The peer is private to the registering user
//! in the team gateway unless `--visibility` says otherwise.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::dotenv::GatewayEnv;
use super::team::{TeamError, causes};
use crate::config::{self, Config};
use crate::redact::redacted_url;

/// ContextForge connects to the peer and lists its tools before it answers.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the front door cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Team(#[from] TeamError),
    #[error("the team gateway at {url} already has a peer named `{name}`: choose another with --name")]
    NameTaken { url: String, name: String },
    #[error(
        "the team gateway at {url} could not use the front door at {front_door} (HTTP {status}): {message}; it \
         must reach that address (listen on one it can reach, and list the name it uses in `http.allowed_hosts`)"
    )]
    Unreachable { url: String, front_door: String, status: u16, message: String },
    #[error("the team gateway at {url} refused the registration (HTTP {status}): {message}")]
    Refused { url: String, status: u16, message: String },
}

/// What is registered: everything but the token is shown to people.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    /// The team gateway's base URL.
    pub team_gateway: String,
    /// The peer's name in the team gateway (its tools are `<name>-<tool>` there).
    pub name: String,
    /// The front door's MCP endpoint, as the team gateway reaches it.
    pub front_door: String,
    pub profile: String,
    /// Where the token comes from (`${VAR}` as the config writes it).
    pub token_source: String,
    pub visibility: String,
    #[serde(skip)]
    token: String,
}

/// The peer as the team gateway registered it.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub id: String,
    /// The tools the team gateway lists from it (its names).
    pub tools: Vec<String>,
}

/// Works out the registration from the config: the front door's address and
/// the token mapped to `profile`.
pub fn registration(
    config_path: &Path,
    team_gateway: &str,
    profile: &str,
    name: Option<&str>,
    front_door: Option<&str>,
    visibility: &str,
) -> Result<Registration, PeerError> {
    let fail = |message: String| PeerError::Config(message);
    let config = Config::load(config_path)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail(format!("{}: no such config file", config_path.display())))?;
    let Some(http) = &config.http else {
        return Err(fail(format!(
            "the HTTP front door is off: add an `http:` section to {} with a token for profile `{profile}`, e.g. \
             `http: {{ listen: \"0.0.0.0:8989\", auth: {{ bearer_tokens: [{{ token: \"${{PEER_TOKEN}}\", profile: \
             {profile} }}] }} }}`",
            config_path.display()
        )));
    };
    if !config.profiles.contains_key(profile) {
        let names: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        return Err(fail(format!(
            "profile `{profile}` is not defined under `profiles:` in {} (defined: {}); the team gateway gets only \
             that profile's servers",
            config_path.display(),
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )));
    }
    let Some(entry) = http.auth.bearer_tokens.iter().find(|e| e.profile() == Some(profile)) else {
        return Err(fail(format!(
            "no front-door token is mapped to profile `{profile}`: add `{{ token: \"${{PEER_TOKEN}}\", profile: \
             {profile} }}` to `http.auth.bearer_tokens` in {} (and PEER_TOKEN to its .env), so the team gateway \
             sees that profile's servers and nothing else",
            config_path.display()
        )));
    };
    let dotenv = GatewayEnv::load(&crate::paths::gateway_dotenv(config_path)).map_err(|e| fail(e.to_string()))?;
    let lookup = |var: &str| dotenv.get(var).map(str::to_string).or_else(|| std::env::var(var).ok());
    let token = config::expand(entry.token(), &lookup).ok().filter(|t| !t.is_empty()).ok_or_else(|| {
        fail(format!(
            "the front-door token of profile `{profile}` ({}) has no value: set it in {}",
            entry.token(),
            dotenv.path.display()
        ))
    })?;
    let token_source = if entry.token().contains("${") { entry.token().to_string() } else { "the config".into() };
    let base = super::team::base_url(team_gateway)?;
    let front_door = match front_door {
        Some(url) => url.to_string(),
        None => {
            let listen: SocketAddr = http.listen.parse().map_err(|_| {
                fail(format!(
                    "`http.listen` ({}) is not an address; give the front door's URL with --front-door-url",
                    http.listen
                ))
            })?;
            if listen.ip().is_unspecified() {
                return Err(fail(format!(
                    "the front door listens on every address ({}): give the URL the team gateway reaches it at with \
                     --front-door-url (http://HOST:{}/mcp)",
                    http.listen,
                    listen.port()
                )));
            }
            format!("http://{listen}/mcp")
        }
    };
    if is_loopback_url(&front_door) && !is_loopback_url(&base) {
        return Err(fail(format!(
            "the front door is on loopback ({front_door}), which the team gateway at {} (another machine) can never \
             reach: listen on an address it can reach (`http.listen`, and that name in `http.allowed_hosts`), or \
             give a tunnel's URL with --front-door-url",
            redacted_url(&base)
        )));
    }
    let name = match name {
        Some(name) => name.to_string(),
        None => {
            let user = std::env::var("USER").unwrap_or_default();
            let user: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            if user.is_empty() { profile.to_string() } else { format!("{user}-{profile}") }
        }
    };
    Ok(Registration {
        team_gateway: base,
        name,
        front_door,
        profile: profile.to_string(),
        token_source,
        visibility: visibility.to_string(),
        token,
    })
}

/// Whether a URL's host is a loopback address or `localhost`.
fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Registration {
    /// The `POST /gateways` body; `with_token: false` shows where the token
    /// comes from instead of it (`--print`).
    pub fn body(&self, with_token: bool) -> Value {
        let token = if with_token {
            self.token.clone()
        } else {
            format!("<the front-door token of profile `{}`: {}>", self.profile, self.token_source)
        };
        json!({
            "name": self.name,
            "url": self.front_door,
            "description": format!("mcp-gateway front door: the servers of profile `{}`", self.profile),
            "transport": "STREAMABLEHTTP",
            "auth_type": "bearer",
            "auth_token": token,
            "visibility": self.visibility,
        })
    }
}

/// Registers the front door with the team gateway (which connects to it and
/// lists its tools before it answers), then reads which tools it took.
pub async fn register(registration: &Registration, team_token: Option<&str>) -> Result<Registered, PeerError> {
    let base = &registration.team_gateway;
    let shown = redacted_url(base);
    let unreachable = |reason: String| TeamError::Unreachable { url: shown.clone(), reason };
    let client = reqwest::Client::builder()
        .timeout(REGISTER_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let authorized = |request: reqwest::RequestBuilder| match team_token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = authorized(client.post(format!("{base}/gateways")).json(&registration.body(true)))
        .send()
        .await
        .map_err(|e| unreachable(causes(e)))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| unreachable(causes(e)))?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let message = answer["message"]
        .as_str()
        .or_else(|| answer["detail"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(200).collect());
    match status {
        200..=299 => {}
        401 | 403 => {
            let advice = match (status, team_token) {
                (401, None) => "it needs a token; give one with --token or MCP_GATEWAY_TEAM_TOKEN",
                (401, Some(_)) => "it does not accept the token given (expired, revoked, or another gateway's)",
                _ => "the token may not register gateways (it needs `gateways.create`)",
            };
            return Err(TeamError::Refused { url: shown, path: "/gateways".into(), status, advice }.into());
        }
        404 | 405 => {
            let what = format!("answered HTTP {status} (no gateway-registration API there)");
            return Err(TeamError::NotContextForge { url: shown, path: "/gateways".into(), what }.into());
        }
        409 => return Err(PeerError::NameTaken { url: shown, name: registration.name.clone() }),
        502..=504 => {
            let front_door = registration.front_door.clone();
            return Err(PeerError::Unreachable { url: shown, front_door, status, message });
        }
        _ => return Err(PeerError::Refused { url: shown, status, message }),
    }
    let Some(id) = answer["id"].as_str().map(str::to_string) else {
        let what = "answered without the registered gateway's `id`".to_string();
        return Err(TeamError::NotContextForge { url: shown, path: "/gateways".into(), what }.into());
    };
    let mut url = reqwest::Url::parse(&format!("{base}/tools")).map_err(|e| unreachable(e.to_string()))?;
    url.query_pairs_mut().append_pair("gateway_id", &id);
    let tools: Value = match authorized(client.get(url)).send().await {
        Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let list = tools.as_array().or_else(|| tools["tools"].as_array());
    let tools = list
        .into_iter()
        .flatten()
        .filter(|t| t["gatewayId"].as_str().or_else(|| t["gateway_id"].as_str()).is_none_or(|g| g == id))
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    Ok(Registered { id, tools })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, config: &str) -> std::path::PathBuf {
        let path = dir.join("config.yaml");
        std::fs::write(&path, config).unwrap();
        std::fs::write(dir.join(".env"), "PEER_TOKEN=s3cret-peer-token\n").unwrap();
        path
    }

    #[test]
    fn the_token_of_the_profile_is_sent_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "servers: { a: { command: a } }\nprofiles: { team: { servers: [a] } }\nhttp:\n  listen: \
             127.0.0.1:8989\n  auth: { bearer_tokens: [{ token: \"${PEER_TOKEN}\", profile: team }] }\n",
        );
        let r = registration(&path, "http://127.0.0.1:4444", "team", Some("me"), None, "private").unwrap();
        assert_eq!(r.front_door, "http://127.0.0.1:8989/mcp");
        assert_eq!(r.body(true)["auth_token"], "s3cret-peer-token");
        let shown = serde_json::to_string(&r).unwrap() + &r.body(false).to_string();
        assert!(!shown.contains("s3cret-peer-token") && shown.contains("${PEER_TOKEN}"), "{shown}");
        // A team gateway elsewhere can never reach a loopback front door.
        let e = registration(&path, "https://cf.example.com", "team", None, None, "private").unwrap_err();
        assert!(e.to_string().contains("can never reach"), "{e}");
        let e = registration(&path, "http://127.0.0.1:4444", "other", None, None, "private").unwrap_err();
        assert!(e.to_string().contains("profile `other` is not defined"), "{e}");
    }

    #[test]
    fn a_profile_without_its_own_token_or_no_front_door_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "servers: { a: { command: a } }\nprofiles: { team: { servers: [a] } }\nhttp:\n  auth: { bearer_tokens: \
             [\"${PEER_TOKEN}\"] }\n",
        );
        let e = registration(&path, "http://127.0.0.1:4444", "team", None, None, "private").unwrap_err();
        assert!(e.to_string().contains("no front-door token is mapped to profile `team`"), "{e}");
        let path = write(dir.path(), "servers: { a: { command: a } }\nprofiles: { team: { servers: [a] } }\n");
        let e = registration(&path, "http://127.0.0.1:4444", "team", None, None, "private").unwrap_err();
        assert!(e.to_string().contains("the HTTP front door is off"), "{e}");
    }
}
