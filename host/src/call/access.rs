//! Which calls a client may make. A client magg could not authenticate (HTTP with
//! authentication off) may not call the tools that start servers or change the config, unless
//! the config allows it (`allow_unauthenticated_changes`): anyone who can reach magg's port
//! could otherwise have magg run a command of their choosing as magg's user.

use rmcp::model::{CallToolResult, JsonObject};

use crate::{hub::Hub, mcp::error_result, relay::Trust};

/// The refusal of a call of magg's own tool `own` with `arguments`, if the calling client may
/// not make it. A call that runs for no client (inside magg) is magg's own and allowed.
pub(super) fn refusal(
    hub: &Hub,
    own: &str,
    arguments: Option<&JsonObject>,
) -> Option<CallToolResult> {
    let session = crate::relay::ORIGIN.try_with(|o| o.session.clone()).ok();
    let trust = session.as_ref().map_or(Trust::Full, |s| s.trust());
    if let Some(caller) = session.as_ref().and_then(|s| s.caller())
        && !caller.may_change()
        && hub.own().changes(own, arguments)
    {
        let scope = caller.view.as_ref().map_or("", |v| v.admin_scope());
        return Some(error_result(format!(
            "`{own}` with these arguments starts servers or changes magg's config, which needs \
             the scope `{scope}`; this client's token does not have it. Ask for a token with \
             that scope, or call it without the arguments that make changes."
        )));
    }
    if trust == Trust::Full
        || hub.settings.allow_unauthenticated_changes
        || !hub.own().changes(own, arguments)
    {
        return None;
    }
    Some(error_result(format!(
        "`{own}` starts servers or changes magg's config, and this HTTP client is not \
         authenticated, so magg refuses it. To allow it: turn authentication on with `magg auth \
         init` and restart magg (clients then send `Authorization: Bearer <token>`, made with \
         `magg auth token`); or use magg over stdio; or allow changes without authentication \
         with \"allow_unauthenticated_changes\": true in the config file (or \
         MAGG_ALLOW_UNAUTHENTICATED_CHANGES=1). Read-only tools work as they are."
    )))
}
