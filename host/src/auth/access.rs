//! Scopes decide what a client sees: the `access` object of `auth.json` maps each scope to the
//! servers, tools, prompts and resources it grants, and names the scope that magg's tools
//! which change servers or the config need.
//!
//! ```json
//! {"access": {
//!     "admin_scope": "magg:admin",
//!     "scopes": {
//!         "tools:time": {"servers": ["time"]},
//!         "tools:read": {"tools": ["everything_echo", "magg_list_*"], "resources": ["file:///docs/*"]}
//!     }
//! }}
//! ```
//!
//! # Design
//! - A grant names servers (all of a server's tools, prompts and resources) and globs over
//!   exposed names: tool and prompt names, resource URIs (`*` any run of characters, `?` one).
//! - A token's [`View`] is the union of the grants of its scopes, made once per set of scopes
//!   and shared by every token with that set.
//! - magg's own tools that start servers or change the config are in a view only when its
//!   token has the admin scope (and a grant names them, or the admin scope's own grant).
//! - `scope_claims` names token claims whose values count as scopes: with `["groups"]`, a
//!   token whose `groups` claim is `["admins"]` has the scope `groups:admins`, so grants can
//!   follow a provider's groups or roles.
//! - Without an `access` object every valid token sees everything, as before.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::{Map, Value};

use super::Identity;

/// The admin scope unless `access.admin_scope` names another.
pub const DEFAULT_ADMIN_SCOPE: &str = "magg:admin";

/// What one scope grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Grant {
    servers: Vec<String>,
    tools: Vec<String>,
    prompts: Vec<String>,
    resources: Vec<String>,
}

/// The `access` object of `auth.json`.
pub struct AccessRules {
    admin_scope: String,
    /// Claims whose values count as scopes (`NAME:VALUE`).
    scope_claims: Vec<String>,
    grants: HashMap<String, Grant>,
    /// Views made so far, by sorted scope list.
    views: Mutex<HashMap<Vec<String>, Arc<View>>>,
}

impl AccessRules {
    /// Reads the `access` member of `auth.json` (`top`); `Ok(None)` when there is none.
    pub fn from_auth_json(top: &Map<String, Value>) -> Result<Option<AccessRules>, String> {
        let access = match top.get("access") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(access)) => access,
            Some(_) => return Err("`access` must be an object".into()),
        };
        let admin_scope = match access.get("admin_scope") {
            None | Some(Value::Null) => DEFAULT_ADMIN_SCOPE.to_owned(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(_) => return Err("`access.admin_scope` must be a non-empty string".into()),
        };
        let scope_claims =
            super::settings::string_list(access.get("scope_claims"), "access.scope_claims", false)?;
        let mut grants = HashMap::new();
        match access.get("scopes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(scopes)) => {
                for (scope, grant) in scopes {
                    grants.insert(scope.clone(), grant_of(scope, grant)?);
                }
            }
            Some(_) => {
                return Err(
                    "`access.scopes` must map each scope to what it grants, e.g. \
                     {\"tools:time\": {\"servers\": [\"time\"]}}"
                        .into(),
                );
            }
        }
        for key in access.keys() {
            if !matches!(key.as_str(), "admin_scope" | "scopes" | "scope_claims") {
                return Err(format!(
                    "`access.{key}` is not a setting; `access` has `admin_scope`, `scopes` and \
                     `scope_claims`"
                ));
            }
        }
        Ok(Some(AccessRules {
            admin_scope,
            scope_claims,
            grants,
            views: Mutex::new(HashMap::new()),
        }))
    }

    /// The scope magg's changing tools need.
    pub fn admin_scope(&self) -> &str {
        &self.admin_scope
    }

    /// The claims whose values count as scopes (`NAME:VALUE`).
    pub fn scope_claims(&self) -> &[String] {
        &self.scope_claims
    }

    /// The scopes that have a grant.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.grants.keys().map(String::as_str)
    }

    /// How many scopes have a grant.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no scope has a grant.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// What a token with `identity`'s scopes sees.
    pub fn view(&self, identity: &Identity) -> Arc<View> {
        if let Ok(views) = self.views.lock()
            && let Some(view) = views.get(&identity.scopes)
        {
            return view.clone();
        }
        let mut view = View {
            admin: identity.has_scope(&self.admin_scope),
            admin_scope: self.admin_scope.clone(),
            ..View::default()
        };
        for scope in &identity.scopes {
            if let Some(grant) = self.grants.get(scope) {
                view.servers.extend(grant.servers.iter().cloned());
                view.tools.extend(grant.tools.iter().cloned());
                view.prompts.extend(grant.prompts.iter().cloned());
                view.resources.extend(grant.resources.iter().cloned());
            }
        }
        let view = Arc::new(view);
        if let Ok(mut views) = self.views.lock() {
            views.insert(identity.scopes.clone(), view.clone());
        }
        view
    }
}

/// One scope's grant from its JSON.
fn grant_of(scope: &str, value: &Value) -> Result<Grant, String> {
    let Value::Object(members) = value else {
        return Err(format!(
            "`access.scopes.{scope}` must be an object like {{\"servers\": [...], \"tools\": \
             [...], \"prompts\": [...], \"resources\": [...]}}"
        ));
    };
    let list = |name: &str| {
        super::settings::string_list(
            members.get(name),
            &format!("access.scopes.{scope}.{name}"),
            false,
        )
    };
    for key in members.keys() {
        if !matches!(key.as_str(), "servers" | "tools" | "prompts" | "resources") {
            return Err(format!(
                "`access.scopes.{scope}.{key}` is not known; a grant has `servers`, `tools`, \
                 `prompts` and `resources`"
            ));
        }
    }
    Ok(Grant {
        servers: list("servers")?,
        tools: list("tools")?,
        prompts: list("prompts")?,
        resources: list("resources")?,
    })
}

/// What one set of scopes grants.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct View {
    servers: Vec<String>,
    tools: Vec<String>,
    prompts: Vec<String>,
    resources: Vec<String>,
    admin: bool,
    admin_scope: String,
}

impl View {
    /// The scope magg's changing tools need.
    pub fn admin_scope(&self) -> &str {
        &self.admin_scope
    }

    /// Whether the tool exposed as `name`, of `server` (`None`: magg's own), is granted.
    /// `changes` says it is one of magg's tools that change servers or the config.
    pub fn tool(&self, name: &str, server: Option<&str>, changes: bool) -> bool {
        if changes && !self.admin {
            return false;
        }
        self.has_server(server) || any_glob(&self.tools, name)
    }

    /// Whether the prompt exposed as `name`, of `server`, is granted.
    pub fn prompt(&self, name: &str, server: Option<&str>) -> bool {
        self.has_server(server) || any_glob(&self.prompts, name)
    }

    /// Whether the resource (or template) exposed as `uri`, of `server`, is granted.
    pub fn resource(&self, uri: &str, server: Option<&str>) -> bool {
        self.has_server(server) || any_glob(&self.resources, uri)
    }

    /// Whether the token has the admin scope.
    pub fn admin(&self) -> bool {
        self.admin
    }

    fn has_server(&self, server: Option<&str>) -> bool {
        server.is_some_and(|server| any_glob(&self.servers, server))
    }
}

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob(p.as_bytes(), text.as_bytes()))
}

/// Whether `text` matches `pattern` (`*` any run of characters, `?` one).
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(value: Value) -> Result<Option<AccessRules>, String> {
        match value {
            Value::Object(top) => AccessRules::from_auth_json(&top),
            _ => unreachable!(),
        }
    }

    fn identity(scopes: &[&str]) -> Identity {
        let mut scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        scopes.sort();
        Identity {
            subject: Some("ann".into()),
            scopes,
        }
    }

    #[test]
    fn globs_match_as_shells_do() {
        for (pattern, text) in [
            ("*", ""),
            ("a*", "abc"),
            ("*_echo", "ev_echo"),
            ("a?c", "abc"),
        ] {
            assert!(
                glob(pattern.as_bytes(), text.as_bytes()),
                "{pattern} {text}"
            );
        }
        for (pattern, text) in [
            ("a*", "bac"),
            ("*_echo", "ev_echo2"),
            ("a?c", "ac"),
            ("", "a"),
        ] {
            assert!(
                !glob(pattern.as_bytes(), text.as_bytes()),
                "{pattern} {text}"
            );
        }
        assert!(glob(b"file:///docs/*", b"file:///docs/a/b.md"));
    }

    #[test]
    fn a_view_is_the_union_of_its_scopes_grants() {
        let rules = rules(json!({"access": {"scopes": {
            "time": {"servers": ["time"]},
            "echo": {"tools": ["ev_echo", "magg_*"], "prompts": "ev_*"},
        }}}))
        .expect("valid")
        .expect("present");
        let view = rules.view(&identity(&["echo"]));
        assert!(view.tool("ev_echo", Some("ev"), false));
        assert!(!view.tool("ev_add", Some("ev"), false));
        assert!(!view.tool("time_now", Some("time"), false));
        assert!(view.tool("magg_list_servers", None, false));
        assert!(
            !view.tool("magg_add_server", None, true),
            "changes need the admin scope"
        );
        assert!(view.prompt("ev_simple", Some("ev")));
        assert!(!view.resource("ev://a", Some("ev")));
        let both = rules.view(&identity(&["echo", "time", "magg:admin"]));
        assert!(both.tool("time_now", Some("time"), false));
        assert!(both.resource("time://zone", Some("time")));
        assert!(both.tool("magg_add_server", None, true));
        assert!(Arc::ptr_eq(
            &both,
            &rules.view(&identity(&["time", "echo", "magg:admin"]))
        ));
        let none = rules.view(&identity(&[]));
        assert!(!none.tool("ev_echo", Some("ev"), false));
    }

    #[test]
    fn a_wrong_access_section_names_the_field() {
        assert!(rules(json!({})).expect("valid").is_none());
        let err = rules(json!({"access": {"scopes": {"x": {"tool": ["a"]}}}}))
            .err()
            .expect("refused");
        assert!(err.contains("access.scopes.x.tool"), "{err}");
        let err = rules(json!({"access": {"scopes": {"x": {"tools": [1]}}}}))
            .err()
            .expect("refused");
        assert!(err.contains("access.scopes.x.tools"), "{err}");
        let err = rules(json!({"access": {"admin": "x"}}))
            .err()
            .expect("refused");
        assert!(err.contains("access.admin"), "{err}");
    }
}
