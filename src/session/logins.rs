//! A tool call that waits for a person to log in to a remote server: nobody
//! has logged in, the login lapsed (a 401), or the server wants more scopes
//! than the login granted (a 403 `insufficient_scope`: step-up, asking for
//! the union of the scopes granted and wanted).
//!
//! A client that opens URLs is sent to the login (see
//! `gateway::elicited_logins`): a 2025-11-25 one with a `-32042` error (it
//! calls again once told the login is complete), a 2026-07-28 one with the
//! URL elicitation as an `input_required` round of the call, after which the
//! call is sent to the server again, once, and the client gets the tool's own
//! answer. Any other client hears a tool error naming the command to run.
//!
//! A step-up is not asked twice for the same scopes: the backend's refusal
//! says when the last login asked for them already (the authorization
//! server granted fewer), and that refusal is the answer.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Reply, Session, tool_refusal};
use crate::jsonrpc;

/// How long a 2026-07-28 client's call waits, after the client accepted the
/// login's URL, for the login to finish (it is on a person in a browser).
const LOGIN_WAIT: Duration = Duration::from_secs(300);

/// Why a call cannot be made until a person logs in.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LoginRefusal {
    /// Why, naming the command that logs in (the tool error's text).
    pub why: String,
    /// A step-up's scopes: those the login is to ask for.
    pub scope: Option<String>,
}

impl LoginRefusal {
    /// The refusal in a backend's answer: an error whose `data` says
    /// `loginRequired` (see `backend::http`).
    pub fn of(answer: &Value) -> Option<LoginRefusal> {
        let error = answer.get("error")?;
        let data = error.get("data")?;
        data.get("loginRequired")?;
        let why = error.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        Some(LoginRefusal { why, scope: data.get("scope").and_then(Value::as_str).map(str::to_string) })
    }
}

/// What a call that needs a login comes to: an answer now, or (a 2026-07-28
/// client that opened the login's URL) a login done, so the call goes on.
pub(super) enum LoginAnswer {
    Answer(Value),
    LoggedIn,
}

impl Session {
    /// A tool call the server refused for want of a login: the login asked
    /// of the client (see the module doc), then, for a 2026-07-28 client, the
    /// call once more. `again` is the call's params, kept for that.
    pub(super) async fn answer_login(
        &self,
        id: Value,
        server: &str,
        refusal: &LoginRefusal,
        again: Option<(&str, Value)>,
    ) -> Reply {
        match self.login_answer(id.clone(), server, refusal).await {
            LoginAnswer::Answer(answer) => answer.into(),
            LoginAnswer::LoggedIn => match again {
                Some((method, params)) => match self.forward_once(id.clone(), server, method, params).await {
                    Ok(reply) => reply,
                    // Logged in, and refused again: said as it is, with no
                    // second login within the call.
                    Err(refused) => tool_refusal(id, &refused.why).into(),
                },
                None => tool_refusal(id, &format!("server `{server}` is logged in now: call the tool again")).into(),
            },
        }
    }

    /// The login a call waits for, asked of the client when it opens URLs
    /// (see the module doc); otherwise the tool error.
    pub(super) async fn login_answer(&self, id: Value, server: &str, refusal: &LoginRefusal) -> LoginAnswer {
        let why = refusal.why.as_str();
        let scope = refusal.scope.as_deref();
        let Some(login) = self.gateway.elicit_login(server, &self.info, scope).await else {
            return LoginAnswer::Answer(tool_refusal(id, why));
        };
        if !self.modern.is_modern() {
            return LoginAnswer::Answer(jsonrpc::error_with_data(
                id,
                jsonrpc::URL_ELICITATION_REQUIRED,
                format!("{why} (or finish the login at the URL this error carries)"),
                json!({ "elicitations": [login.elicitation] }),
            ));
        }
        // The 2026-07-28 era has no `elicitationId`: the retry is the answer,
        // and this call goes on once the login is done.
        let mut ask = login.elicitation.clone();
        if let Some(ask) = ask.as_object_mut() {
            ask.remove("elicitationId");
            let message = match scope {
                Some(scope) => format!(
                    "Log in to `{server}` again in your browser to grant the scopes it asks for (`{scope}`); \
                     the call goes on once you have."
                ),
                None => format!("Log in to `{server}` in your browser; the call goes on once you have."),
            };
            ask.insert("message".into(), Value::String(message));
        }
        let answer = self.ask_client("elicitation/create", ask).await;
        if answer.as_ref().and_then(|a| a.get("action")).and_then(Value::as_str) != Some("accept") {
            return LoginAnswer::Answer(tool_refusal(id, why));
        }
        match login.finished(LOGIN_WAIT).await {
            true => LoginAnswer::LoggedIn,
            false => LoginAnswer::Answer(tool_refusal(id, why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_read_from_an_error_that_says_login_required() {
        let step_up = jsonrpc::error_with_data(
            json!(1),
            jsonrpc::INTERNAL_ERROR,
            "server `r`: more scopes",
            json!({"loginRequired": "more scopes", "scope": "a b"}),
        );
        let refusal = LoginRefusal::of(&step_up);
        assert_eq!(refusal, Some(LoginRefusal { why: "server `r`: more scopes".into(), scope: Some("a b".into()) }));
        let login = jsonrpc::error_with_data(json!(1), jsonrpc::INTERNAL_ERROR, "x", json!({"loginRequired": "x"}));
        assert_eq!(LoginRefusal::of(&login).and_then(|r| r.scope), None);
        let other = jsonrpc::error_with_data(json!(1), jsonrpc::INTERNAL_ERROR, "x", json!({"server": "r"}));
        assert_eq!(LoginRefusal::of(&other), None);
        assert_eq!(LoginRefusal::of(&jsonrpc::result(json!(1), json!({}))), None);
    }
}
