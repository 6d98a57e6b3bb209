//! `smart-configure`: suggests a server config for a source (world `configure-plugin`), with
//! the rules of `magg-configure-rules` — the same rules magg uses itself when this plugin is
//! turned off, so the answer does not depend on it. It has no settings and no network: magg
//! passes what it fetched about a remote source in `contents` (see
//! `magg_configure_rules::names`).

use magg_configure_rules as rules;
use magg_plugin_sdk::{Configure, ServerConfig, SourceFacts, Suggestion};

struct SmartConfigure;

impl Configure for SmartConfigure {
    fn suggest(facts: SourceFacts) -> Option<Suggestion> {
        let facts = rules::Facts {
            source: facts.source,
            name: facts.name,
            path: facts.path,
            exists: facts.exists,
            is_directory: facts.is_directory,
            files: facts.files,
            contents: facts.contents,
        };
        let s = rules::suggest(&facts)?;
        let c = s.config;
        Some(Suggestion {
            config: ServerConfig {
                name: c.name,
                source: c.source,
                prefix: c.prefix,
                command: c.command,
                args: c.args,
                uri: c.uri,
                env: c.env,
                cwd: c.cwd,
                notes: c.notes,
            },
            project_type: s.project_type,
            facts: s.facts,
        })
    }
}

magg_plugin_sdk::export_configure!(SmartConfigure);
