//! From "server S for session X" to a backend instance: which servers a session
//! sees (its profile, its trusted workspace's own servers), where each `${VAR}`
//! comes from (the credential order), and which sharing key that gives.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::warn;

use super::{Gateway, SessionContext, SessionInfo, lock};
use crate::backend::{Backend, BackendError, Identity, Resolved, SharingKey};
use crate::config::{self, ServerConfig, Share};
use crate::credentials::{Field, Sources, Vars};
use crate::sink::SessionId;
use crate::workspace;

impl Gateway {
    /// The workspace root and profile of a new session. The working directory
    /// is resolved first (`workspace::resolve_working_dir`: absolute, `..` and
    /// symlinks resolved, an existing directory), so the root, its trust and
    /// its files are those of the directory the client is really in. A
    /// profile named by the shim must exist; otherwise the workspace's own
    /// file, then the config's `workspaces:` mapping, may pick one.
    pub fn session_context(&self, cwd: Option<&Path>, requested: Option<&str>) -> Result<SessionContext, String> {
        let config = self.config();
        let given = cwd.map(Path::to_path_buf);
        let cwd = workspace::resolve_working_dir(cwd.unwrap_or(Path::new("/"))).map_err(|e| {
            format!("refused the session's working directory (the shim's cwd, or the X-MCP-Gateway-Cwd header): {e}")
        })?;
        let root = workspace::root_of(&cwd, &config.workspace_markers);
        if let Some(profile) = requested {
            if !config.profiles.contains_key(profile) {
                let known: Vec<&String> = config.profiles.keys().collect();
                return Err(format!("unknown profile `{profile}` (the config defines {known:?})"));
            }
            return Ok(SessionContext { cwd: given, workspace: root, profile: Some(profile.to_string()) });
        }
        let from_file = self.workspace_files.load(&root).profile.clone().filter(|p| {
            let known = config.profiles.contains_key(p);
            if !known {
                warn!(workspace = %root.display(), profile = p, "the workspace file names an unknown profile; ignoring it");
            }
            known
        });
        let from_mapping = || workspace::mapping_for(&config, &root).and_then(|(_, m)| m.profile.clone());
        let profile = from_file.or_else(from_mapping);
        Ok(SessionContext { cwd: given, workspace: root, profile })
    }

    /// The servers a session sees, in order: the config's (narrowed by its
    /// profile), then its workspace's own when the workspace is trusted (a
    /// workspace server replaces a config server of the same name).
    pub fn servers_for(&self, session: &SessionInfo) -> Vec<(String, ServerConfig)> {
        let config = self.config();
        let own = self.workspace_files.load(&session.workspace);
        visible_servers(&config, &own, session, &self.workspace_files)
            .into_iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    /// What identifies the set of servers a session sees (names and
    /// revisions, in order), without copying their definitions: the key of
    /// the session's catalog, worked out on every routed request.
    pub(super) fn servers_signature(
        &self,
        session: &SessionInfo,
        config: &config::Config,
        own: &workspace::WorkspaceFile,
    ) -> String {
        let mut signature = String::new();
        for (name, server) in visible_servers(config, own, session, &self.workspace_files) {
            signature.push_str(name);
            signature.push('\u{1f}');
            signature.push_str(server.revision_str());
            signature.push('\u{1e}');
        }
        signature
    }

    /// Whether the config lets this session's workspace add its own servers.
    pub fn workspace_trusted(&self, session: &SessionInfo) -> bool {
        workspace::mapping_for(&self.config(), &session.workspace).is_some_and(|(_, m)| m.trust)
    }

    /// How tools are exposed to a session: its workspace file, else its
    /// profile, else the config.
    pub fn tools_mode(&self, session: &SessionInfo) -> crate::config::ToolsMode {
        let config = self.config();
        self.workspace_files
            .load(&session.workspace)
            .tools
            .or_else(|| session.profile.as_ref().and_then(|p| config.profiles.get(p)).and_then(|p| p.tools))
            .unwrap_or(config.tools)
    }

    /// Expands `${VAR}` in a gateway-level value (HTTP tokens) from the gateway
    /// `.env`, then the daemon's environment; `None` when a variable is unset.
    pub fn expand_gateway_value(&self, value: &str) -> Option<String> {
        let env = self.env_files.load(&self.gateway_env);
        config::expand(value, &|name| env.get(name).cloned().or_else(|| std::env::var(name).ok())).ok()
    }

    /// Whether a variable has a value for this session (the value is not returned).
    pub fn variable_is_set(&self, session: &SessionInfo, name: &str) -> bool {
        self.sources(session).lookup(name).is_some_and(|v| !v.is_empty())
    }

    /// The definition of one server as `servers_for` gives it, without copying
    /// the others.
    pub fn server_for(&self, session: &SessionInfo, name: &str) -> Option<ServerConfig> {
        self.definition_for(session, name).map(|definition| definition.clone())
    }

    /// [`Gateway::server_for`], not copied but shared with the config or
    /// workspace file it is in (this runs on every routed request, and a copy
    /// of a definition was about 1,000 instructions of it).
    pub(super) fn definition_for(&self, session: &SessionInfo, name: &str) -> Option<Definition> {
        let config = self.config();
        if workspace::mapping_for(&config, &session.workspace).is_some_and(|(_, m)| m.trust) {
            let own = self.workspace_files.load(&session.workspace);
            if let Some((index, _, _)) = own.servers.get_full(name).filter(|(_, _, s)| s.enabled) {
                return Some(Definition { source: Source::Workspace(own), index });
            }
        }
        let allowed = session.profile.as_ref().and_then(|p| config.profiles.get(p)).and_then(|p| p.servers.as_ref());
        let (index, _, _) = config
            .servers
            .get_full(name)
            .filter(|(_, _, s)| s.enabled && allowed.is_none_or(|a| a.iter().any(|n| n == name)))?;
        Some(Definition { source: Source::Config(config), index })
    }

    /// The credential sources of a session, highest first.
    fn sources(&self, session: &SessionInfo) -> Sources {
        let config = self.config();
        Sources {
            workspace_env: Some(self.env_files.load(&session.workspace.join(".env"))),
            gateway_env: self.env_files.load(&self.gateway_env),
            profile_env: session
                .profile
                .as_ref()
                .and_then(|p| config.profiles.get(p))
                .map(|p| p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            client_env: session.env.clone(),
        }
    }

    /// Resolves every `${VAR}` of a server for a session and works out which
    /// instance serves it. A missing variable is an error naming it and the server.
    ///
    /// An untrusted workspace's `.env` fills credential values only
    /// ([`Field::is_credential`]); every other field is expanded from the
    /// remaining sources, so a cloned repository cannot choose where a
    /// request (and the credentials sent with it) goes, or what runs.
    pub(super) fn resolve(
        &self,
        name: &str,
        def: &ServerConfig,
        session: &SessionInfo,
    ) -> Result<(Identity, Resolved), BackendError> {
        self.resolve_reading(name, def, session).map(|(resolution, _)| resolution)
    }

    /// [`Gateway::resolve`], remembered for the session: the routed requests
    /// of a session resolve the same definition from the same sources over
    /// and over (expanding, hashing, the HMAC memo's key built and hashed:
    /// about 7 % of a call's work). Kept while the definition's revision, the
    /// config in force (the same `Arc`: a reload makes a new one) and, when a
    /// `${VAR}` was looked up, the `.env` files read (the same `Arc`s: a
    /// changed file is parsed anew) are all the same; an `.env` file is
    /// still looked at (a `stat`) for each request that needs one, so an edit
    /// counts from the next request on, as without the memo. Errors are not kept.
    pub(super) fn resolve_remembered(
        &self,
        name: &str,
        def: &ServerConfig,
        session: &SessionInfo,
    ) -> Result<Arc<(Identity, Resolved)>, BackendError> {
        let config = self.config();
        let kept = lock(&self.resolutions.by_session).get(&session.id).and_then(|servers| servers.get(name)).and_then(
            |kept| {
                (kept.revision == def.revision_str()
                    && Arc::ptr_eq(&kept.config, &config)
                    && kept.workspace == session.workspace)
                    .then(|| (kept.envs.clone(), kept.resolution.clone()))
            },
        );
        if let Some((envs, resolution)) = kept {
            let unchanged = envs.is_none_or(|(workspace_env, gateway_env)| {
                Arc::ptr_eq(&workspace_env, &self.env_files.load(&session.workspace.join(".env")))
                    && Arc::ptr_eq(&gateway_env, &self.env_files.load(&self.gateway_env))
            });
            if unchanged {
                return Ok(resolution);
            }
        }
        let (resolution, envs) = self.resolve_reading(name, def, session)?;
        let resolution = Arc::new(resolution);
        let kept = Resolution {
            revision: def.revision(),
            config,
            workspace: session.workspace.clone(),
            envs,
            resolution: resolution.clone(),
        };
        let mut by_session = lock(&self.resolutions.by_session);
        if by_session.len() >= REMEMBERED_SESSIONS {
            by_session.clear();
        }
        by_session.entry(session.id).or_default().insert(name.to_string(), kept);
        Ok(resolution)
    }

    /// Forgets the resolutions of a session that has ended.
    pub(super) fn forget_resolutions(&self, session: crate::sink::SessionId) {
        lock(&self.resolutions.by_session).remove(&session);
    }

    /// [`Gateway::resolve`], and the `.env` files it read (the workspace's,
    /// the gateway's), when a `${VAR}` made it read them.
    fn resolve_reading(
        &self,
        name: &str,
        def: &ServerConfig,
        session: &SessionInfo,
    ) -> Result<((Identity, Resolved), ReadEnvs), BackendError> {
        // Looked up on the first `${VAR}`: a definition without any (most
        // fields) needs no `.env` file read or even looked at, and this runs
        // on every routed request.
        let read = std::cell::OnceCell::new();
        let sources = || read.get_or_init(|| self.sources(session));
        let trusted = self.workspace_trusted(session);
        // Every (variable, value) a field used: one variable may take its
        // workspace value in a credential and another value in a location.
        let used: RefCell<BTreeSet<(String, String)>> = RefCell::default();
        let expand = |field: Field, value: &str| {
            let from_workspace = trusted || field.is_credential();
            let lookup = |var: &str| {
                let value = if from_workspace { sources().lookup(var) } else { sources().lookup_beyond_workspace(var) };
                if let Some(value) = &value {
                    used.borrow_mut().insert((var.to_string(), value.clone()));
                }
                value
            };
            config::expand(value, &lookup).map_err(|missing| {
                let only_in_workspace = !from_workspace
                    && sources().workspace_env.as_ref().is_some_and(|env| env.get(&missing.0).is_some_and(|v| !v.is_empty()));
                let message = if only_in_workspace {
                    format!(
                        "{missing}, needed by `{field}`: only this workspace's .env sets it, and the .env of a workspace the config does not trust may set credential values (env: and headers: values) only, never where a server connects or what it runs (trust it with `workspaces: {{ {:?}: {{ trust: true }} }}`, or set it in the gateway .env)",
                        session.workspace.display().to_string()
                    )
                } else {
                    format!("{missing}, needed by `{field}` (looked in the workspace .env, the gateway .env, the profile, the client's and the daemon's environment)")
                };
                BackendError::Config { server: name.to_string(), message }
            })
        };
        let command = expand(Field::Command, def.command.as_deref().unwrap_or_default())?;
        let args = def.args.iter().map(|a| expand(Field::Args, a)).collect::<Result<Vec<_>, _>>()?;
        let env = def
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand(Field::Env(k), v)?)))
            .collect::<Result<Vec<_>, BackendError>>()?;
        let cwd = def.cwd.as_deref().map(|c| expand(Field::Cwd, c)).transpose()?;
        let image = def.image.as_deref().map(|i| expand(Field::Image, i)).transpose()?;
        let volumes = def.volumes.iter().map(|v| expand(Field::Volumes, v)).collect::<Result<Vec<_>, _>>()?;
        let url = def.url.as_deref().map(|u| expand(Field::Url, u)).transpose()?;
        let headers = def
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand(Field::Header(k), v)?)))
            .collect::<Result<Vec<_>, BackendError>>()?;
        // A remote server with no static `Authorization` header is one the
        // gateway may log in to (when it answers 401): its `oauth:` values,
        // expanded like any credential.
        let static_auth = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        let settings = match (&url, static_auth) {
            (Some(_), false) => {
                let given = def.oauth.clone().unwrap_or_default();
                let value =
                    |name: &'static str, v: Option<String>| v.map(|v| expand(Field::OAuth(name), &v)).transpose();
                Some(crate::oauth::Settings {
                    client_id: value("client_id", given.client_id)?,
                    client_secret: value("client_secret", given.client_secret)?,
                    client_metadata_url: value("client_metadata_url", given.client_metadata_url)?,
                    scopes: given.scopes,
                    redirect_uri: given.redirect_uri,
                    client_credentials: given.grant == Some(crate::config::OAuthGrant::ClientCredentials),
                    private_key: match (given.private_key, given.private_key_file) {
                        (Some(pem), _) => {
                            Some(crate::oauth::PrivateKey::Pem(expand(Field::OAuth("private_key"), &pem)?))
                        }
                        (None, Some(file)) => Some(crate::oauth::PrivateKey::File(
                            expand(Field::OAuth("private_key_file"), &file)?.into(),
                        )),
                        (None, None) => None,
                    },
                })
            }
            _ => None,
        };
        let used = used.into_inner();
        let key = match def.share {
            Share::Global => "global".to_string(),
            Share::Workspace => format!("workspace:{}", session.workspace.display()),
            Share::Session => format!("session:{}", session.id),
            Share::Credential => {
                let parts = used.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
                format!("credential:{}", self.hasher.digest_memo(parts))
            }
        };
        let oauth = settings.zip(url.clone()).map(|(settings, url)| crate::oauth::Binding {
            manager: self.oauth.clone(),
            target: crate::oauth::Target { server: name.to_string(), url, credential_key: key.clone(), settings },
        });
        let resolved =
            Resolved { url, headers, command, args, env, cwd, image, volumes, network: def.network.clone(), oauth };
        let revision = def.revision();
        let instance = {
            let mut parts: Vec<&str> = vec![&revision, &resolved.command];
            parts.extend(resolved.args.iter().map(String::as_str));
            parts.extend(resolved.env.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
            parts.extend(resolved.cwd.as_deref());
            parts.extend(resolved.image.as_deref());
            parts.extend(resolved.url.as_deref());
            parts.extend(resolved.headers.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
            parts.extend(resolved.volumes.iter().map(String::as_str));
            self.hasher.digest_memo(parts)
        };
        let identity = Identity { server: name.to_string(), key: SharingKey(key), instance, lane: 0 };
        let read = read.get().map(|s| (s.workspace_env.clone().unwrap_or_default(), s.gateway_env.clone()));
        Ok(((identity, resolved), read))
    }

    /// Whether this session would be served by `backend` (same resolved identity).
    pub(super) fn resolves_to(&self, session: &SessionInfo, backend: &Backend) -> bool {
        self.server_for(session, &backend.server)
            .and_then(|config| self.resolve(&backend.server, &config, session).ok())
            .is_some_and(|(identity, _)| identity == backend.identity)
    }
}

/// A server's definition, shared with the config or the workspace file it is
/// in (see [`Gateway::definition_for`]).
pub(super) struct Definition {
    source: Source,
    index: usize,
}

enum Source {
    Config(Arc<config::Config>),
    Workspace(Arc<workspace::WorkspaceFile>),
}

impl std::ops::Deref for Definition {
    type Target = ServerConfig;

    fn deref(&self) -> &ServerConfig {
        match &self.source {
            Source::Config(config) => &config.servers[self.index],
            Source::Workspace(own) => &own.servers[self.index],
        }
    }
}

/// The resolved instances of each session's servers (see
/// [`Gateway::resolve_remembered`]).
#[derive(Default)]
pub(super) struct Resolutions {
    by_session: Mutex<HashMap<SessionId, HashMap<String, Resolution>>>,
}

/// One server's resolution for one session, and what it was worked out from.
struct Resolution {
    revision: String,
    config: Arc<config::Config>,
    workspace: std::path::PathBuf,
    envs: ReadEnvs,
    resolution: Arc<(Identity, Resolved)>,
}

/// The `.env` files a resolution read (the workspace's, the gateway's), if
/// a `${VAR}` made it read any.
type ReadEnvs = Option<(Vars, Vars)>;

/// More sessions than this remembered at once (never, with the sessions'
/// limits) starts the memo afresh rather than grow it.
const REMEMBERED_SESSIONS: usize = 4096;

/// The servers a session sees, in order (see `Gateway::servers_for`), by reference.
pub(super) fn visible_servers<'a>(
    config: &'a config::Config,
    own: &'a workspace::WorkspaceFile,
    session: &SessionInfo,
    files: &workspace::WorkspaceFiles,
) -> Vec<(&'a str, &'a ServerConfig)> {
    let allowed = session.profile.as_ref().and_then(|p| config.profiles.get(p)).and_then(|p| p.servers.as_ref());
    let mut servers: Vec<(&str, &ServerConfig)> = config
        .servers
        .iter()
        .filter(|(name, s)| s.enabled && allowed.is_none_or(|a| a.contains(name)))
        // A project-only server: for sessions working in (or under) one of its directories.
        .filter(|(_, s)| {
            s.projects.is_empty()
                || s.projects.iter().any(|dir| {
                    workspace::covers(dir, &session.workspace)
                        || session.cwd.as_deref().is_some_and(|cwd| workspace::covers(dir, cwd))
                })
        })
        .map(|(n, s)| (n.as_str(), s))
        .collect();
    let trusted = workspace::mapping_for(config, &session.workspace).is_some_and(|(_, m)| m.trust);
    if !own.servers.is_empty() && !trusted && files.untrusted_warning_due(&session.workspace) {
        warn!(
            workspace = %session.workspace.display(),
            "ignoring the servers in {}: add `workspaces: {{ {:?}: {{ trust: true }} }}` to the config to allow them",
            crate::config::WORKSPACE_FILE,
            session.workspace.display().to_string()
        );
    }
    if trusted {
        for (name, server) in own.servers.iter().filter(|(_, s)| s.enabled) {
            match servers.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = server,
                None => servers.push((name, server)),
            }
        }
    }
    servers
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// A gateway whose config (in `home`) has one server using `${…}` in every
    /// field, with a gateway `.env`; and a session in `workspace`.
    fn gateway_and_session(home: &Path, workspace: &Path, trusted: bool) -> (Arc<Gateway>, SessionInfo, ServerConfig) {
        let trust = if trusted {
            format!("workspaces:\n  {:?}: {{ trust: true }}\n", workspace.display().to_string())
        } else {
            String::new()
        };
        let yaml = format!(
            "servers:\n  s:\n    command: \"${{PROGRAM}}\"\n    args: [\"${{ARG}}\"]\n    cwd: \"${{DIR}}\"\n    \
             env: {{ TOKEN: \"${{TOKEN}}\", GITHUB_HOST: \"${{HOST}}\", LD_PRELOAD: \"${{LIB}}\" }}\n    \
             share: credential\n  r:\n    url: \"${{TARGET_URL}}\"\n    headers: {{ Authorization: \"Bearer ${{TOKEN}}\", Host: \"${{HOST}}\" }}\n{trust}"
        );
        let config_path = home.join("config.yaml");
        std::fs::write(&config_path, &yaml).unwrap();
        let vars = ["PROGRAM", "ARG", "DIR", "TOKEN", "HOST", "LIB", "TARGET_URL"];
        let gateway_env: String = vars.iter().map(|v| format!("{v}=gateway-{v}\n")).collect();
        std::fs::write(home.join(".env"), gateway_env).unwrap();
        let workspace_env: String = vars.iter().map(|v| format!("{v}=workspace-{v}\n")).collect();
        std::fs::write(workspace.join(".env"), workspace_env).unwrap();
        let config = config::Config::parse(&config_path, &yaml).unwrap();
        let cache = crate::catalog::ListingCache::load(&home.join("catalog.json"));
        let gateway = Gateway::new(config, &config_path, Some(config_path.clone()), cache);
        let context = gateway.session_context(Some(workspace), None).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let session = SessionInfo::new(
            crate::sink::SessionSink::new(1, tx),
            context,
            None,
            crate::preamble::ClientEnv::default(),
        );
        let def = gateway.config().servers["s"].clone();
        (gateway, session, def)
    }

    #[tokio::test]
    async fn an_untrusted_workspace_env_fills_credential_values_only() {
        let dir = tempfile::tempdir().unwrap();
        let (home, workspace) = (dir.path().join("home"), dir.path().join("clone"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(workspace.join(".git")).unwrap();
        let (gateway, session, def) = gateway_and_session(&home, &workspace, false);
        let (_, stdio) = gateway.resolve("s", &def, &session).unwrap();
        assert_eq!(stdio.command, "gateway-PROGRAM");
        assert_eq!(stdio.args, ["gateway-ARG"]);
        assert_eq!(stdio.cwd.as_deref(), Some("gateway-DIR"));
        let env: BTreeMap<_, _> = stdio.env.iter().cloned().collect();
        assert_eq!(env["TOKEN"], "workspace-TOKEN", "a credential value: the workspace's own token");
        assert_eq!(env["GITHUB_HOST"], "gateway-HOST", "where the server connects");
        assert_eq!(env["LD_PRELOAD"], "gateway-LIB", "what the server loads");
        let remote = gateway.config().servers["r"].clone();
        let (_, http) = gateway.resolve("r", &remote, &session).unwrap();
        assert_eq!(http.url.as_deref(), Some("gateway-TARGET_URL"));
        let headers: BTreeMap<_, _> = http.headers.iter().cloned().collect();
        assert_eq!(headers["Authorization"], "Bearer workspace-TOKEN");
        assert_eq!(headers["Host"], "gateway-HOST");
    }

    #[tokio::test]
    async fn a_location_set_only_by_an_untrusted_workspace_is_an_error_that_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let (home, workspace) = (dir.path().join("home"), dir.path().join("clone"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(workspace.join(".git")).unwrap();
        let (gateway, session, _) = gateway_and_session(&home, &workspace, false);
        std::fs::write(home.join(".env"), "TOKEN=gateway-secret\n").unwrap();
        let remote = gateway.config().servers["r"].clone();
        // (`Resolved` has no `Debug`, so that no value can be printed.)
        let Err(error) = gateway.resolve("r", &remote, &session) else { panic!("resolved a url only the clone sets") };
        let error = error.to_string();
        assert!(error.contains("TARGET_URL") && error.contains("`url`") && error.contains("trust: true"), "{error}");
        assert!(!error.contains("workspace-TARGET_URL") && !error.contains("secret"), "no value: {error}");
    }

    #[tokio::test]
    async fn a_trusted_workspace_env_keeps_full_powers() {
        let dir = tempfile::tempdir().unwrap();
        let (home, workspace) = (dir.path().join("home"), dir.path().join("project"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(workspace.join(".git")).unwrap();
        let (gateway, session, def) = gateway_and_session(&home, &workspace, true);
        let (_, stdio) = gateway.resolve("s", &def, &session).unwrap();
        assert_eq!((stdio.command.as_str(), stdio.cwd.as_deref()), ("workspace-PROGRAM", Some("workspace-DIR")));
        let remote = gateway.config().servers["r"].clone();
        let (_, http) = gateway.resolve("r", &remote, &session).unwrap();
        assert_eq!(http.url.as_deref(), Some("workspace-TARGET_URL"));
    }
}
