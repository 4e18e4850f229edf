//! How long the names a session sees may be.
//!
//! The model APIs refuse a tool name over 64 characters, and the client in
//! front puts its own prefix before each of the gateway's names: Claude Code
//! offers `mcp__<entry>__<name>`, Gemini CLI `mcp_<entry>_<name>`. So the room
//! a name has depends on the client and on the name of the entry its config
//! runs the shim under. The client says who it is in `initialize`
//! (`clientInfo.name`); the entry name is the shim's `--entry` (which `setup`
//! writes when it is not the usual `gateway`). A client the gateway does not
//! know gets [`NameBudget::DEFAULT`], the room left behind the longest known
//! prefix, as every client got before budgets were per client.

/// The longest tool name the model APIs accept (Anthropic's and OpenAI's both
/// refuse a request whose tool names are longer).
pub const MAX_NAME_LEN: usize = 64;

/// The entry name `setup` writes, and the one a shim without `--entry` is
/// taken to run under (the README's hand-written entries use it too).
pub const DEFAULT_ENTRY: &str = "gateway";

/// The longest prefix the default budget leaves room for: Claude Code's
/// before the longer of the entry names `setup` writes (`mcp-gateway`, when
/// `gateway` was taken).
const LONGEST_DEFAULT_PREFIX: &str = "mcp__mcp-gateway__";

/// How the clients the gateway knows (by the `clientInfo.name` they send)
/// name an MCP tool for their model, as read in the pinned clients the tests
/// drive (tests/support/deps.sh).
#[derive(Debug, Clone, Copy)]
struct KnownClient {
    client_info: &'static str,
    /// What comes before the entry name, and between it and the tool's name.
    before: &'static str,
    between: &'static str,
    /// The longest name the client sends its model unchanged.
    limit: usize,
}

const KNOWN_CLIENTS: [KnownClient; 3] = [
    // Claude Code: `mcp__<entry>__<tool>`, and it does not shorten.
    KnownClient { client_info: "claude-code", before: "mcp__", between: "__", limit: MAX_NAME_LEN },
    // Codex CLI qualifies a tool as `mcp__<entry>__<tool>` (it sends the
    // model the namespace `mcp__<entry>` holding the tool) and replaces the
    // end of a longer one with a hash.
    KnownClient { client_info: "codex-mcp-client", before: "mcp__", between: "__", limit: MAX_NAME_LEN },
    // Gemini CLI: `mcp_<entry>_<tool>`, cut in the middle past 63 characters.
    KnownClient { client_info: "gemini-cli-mcp-client", before: "mcp_", between: "_", limit: MAX_NAME_LEN - 1 },
];

/// The longest name (`<server>__<tool>`, or a server's own name with
/// `prefix: false`) a session is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameBudget(usize);

impl NameBudget {
    /// For a client the gateway does not know: what is left of the 64 behind
    /// the longest known prefix with either entry name `setup` writes.
    pub const DEFAULT: NameBudget = NameBudget(MAX_NAME_LEN - LONGEST_DEFAULT_PREFIX.len());
    /// The least any session gets, however long its entry name: a shorter
    /// name could no longer say which server and which tool it is.
    pub const MIN: NameBudget = NameBudget(32);

    /// The budget of a session whose client introduced itself as
    /// `client_info` and runs the shim under the entry `entry` (`None`: the
    /// default entry name).
    pub fn for_client(client_info: Option<&str>, entry: Option<&str>) -> NameBudget {
        let entry = entry.unwrap_or(DEFAULT_ENTRY).chars().count();
        let known = KNOWN_CLIENTS.iter().find(|k| Some(k.client_info) == client_info);
        let room = match known {
            Some(k) => k.limit.saturating_sub(k.before.len() + entry + k.between.len()),
            // Unknown: the longest known form (Claude Code's) for this entry, never more than the default.
            None => MAX_NAME_LEN.saturating_sub("mcp__".len() + entry + "__".len()).min(Self::DEFAULT.0),
        };
        NameBudget(room.max(Self::MIN.0))
    }

    /// How many characters a name may have.
    pub fn len(self) -> usize {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each known client puts in front of a name, with the entry
    /// `setup` writes, leaves each name within what its model API accepts.
    #[test]
    fn each_known_client_gets_the_room_its_prefix_leaves() {
        let budget = |client, entry| NameBudget::for_client(Some(client), entry).len();
        // `mcp__gateway__` is 14 characters: 50 left.
        assert_eq!(budget("claude-code", None), 50);
        assert_eq!(budget("claude-code", Some("gateway")), 50);
        assert_eq!(budget("claude-code", Some("mcp-gateway")), 46);
        assert_eq!(budget("codex-mcp-client", None), 50);
        // `mcp_gateway_` is 12, and Gemini CLI keeps names to 63: 51.
        assert_eq!(budget("gemini-cli-mcp-client", None), 51);
        assert_eq!(budget("gemini-cli-mcp-client", Some("mcp-gateway")), 47);
        for client in KNOWN_CLIENTS {
            for entry in ["gateway", "mcp-gateway", "gw"] {
                let room = NameBudget::for_client(Some(client.client_info), Some(entry)).len();
                let offered = format!("{}{entry}{}{}", client.before, client.between, "x".repeat(room));
                assert_eq!(offered.len(), client.limit, "{offered}");
            }
        }
    }

    #[test]
    fn an_unknown_client_never_gets_more_than_before() {
        assert_eq!(NameBudget::for_client(None, None), NameBudget::DEFAULT);
        assert_eq!(NameBudget::DEFAULT.len(), 46);
        assert_eq!(NameBudget::for_client(Some("cursor-vscode"), Some("gw")), NameBudget::DEFAULT);
        // A longer entry leaves less room, behind the longest known form.
        assert_eq!(NameBudget::for_client(Some("some-client"), Some("my-own-gateway")).len(), 64 - 21);
        // Never below the floor, however long the entry.
        let long = "e".repeat(80);
        assert_eq!(NameBudget::for_client(Some("claude-code"), Some(&long)), NameBudget::MIN);
        assert_eq!(NameBudget::for_client(None, Some(&long)), NameBudget::MIN);
    }
}
