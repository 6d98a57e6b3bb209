//! What a README says about running its server: the `mcpServers` snippets of its JSON code
//! blocks (Claude Desktop's, Cursor's, VS Code's `servers`), the env vars they and its shell
//! blocks name, and its shell commands.

use serde_json::Value;

use crate::push_unique;

/// One fenced code block.
struct Fence<'a> {
    /// The info string's first word, lowercased (`json`, `bash`, ...; empty when none).
    lang: String,
    /// The lines between the fences.
    body: Vec<&'a str>,
}

fn fences(text: &str) -> Vec<Fence<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Fence)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let ticks = trimmed.bytes().take_while(|b| *b == b'`').count();
        if ticks >= 3 {
            match open.take() {
                Some((n, fence)) if ticks >= n && trimmed[ticks..].trim().is_empty() => {
                    out.push(fence);
                }
                Some(still) => {
                    let (n, mut fence) = still;
                    fence.body.push(line);
                    open = Some((n, fence));
                }
                None => {
                    let lang = trimmed[ticks..]
                        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    open = Some((
                        ticks,
                        Fence {
                            lang,
                            body: Vec::new(),
                        },
                    ));
                }
            }
            continue;
        }
        if let Some((_, fence)) = open.as_mut() {
            fence.body.push(line);
        }
    }
    out
}

/// A server entry of a README's `mcpServers` snippet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The entry's key (the server's name in the snippet).
    pub key: String,
    /// Its `command`, for a stdio server.
    pub command: Option<String>,
    /// Its `args`.
    pub args: Vec<String>,
    /// The names of its `env` (the values are placeholders and are never kept), and of the
    /// `-e NAME` flags of a `docker run` command.
    pub env: Vec<String>,
    /// Its `url` (or `serverUrl`), for a remote server.
    pub url: Option<String>,
}

impl Entry {
    /// Whether `word` is the command or one of the arguments (a package name, with or without
    /// a version).
    pub fn mentions(&self, word: &str) -> bool {
        let same = |a: &str| {
            a == word
                || a.strip_prefix(word)
                    .is_some_and(|rest| rest.starts_with('@') || rest.starts_with("=="))
        };
        self.command.as_deref().is_some_and(same) || self.args.iter().any(|a| same(a))
    }
}

/// The server entries of every JSON block that holds an `mcpServers` (or `servers`,
/// `mcp.servers`) object, in order.
pub fn servers(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for fence in fences(text) {
        if !matches!(fence.lang.as_str(), "json" | "jsonc" | "json5" | "") {
            continue;
        }
        let body = fence.body.join("\n");
        let Some(value) = parse_lenient(&body) else {
            continue;
        };
        let map = ["mcpServers", "servers", "context_servers"]
            .iter()
            .find_map(|k| value.get(k))
            .or_else(|| value.get("mcp").and_then(|m| m.get("servers")))
            .and_then(Value::as_object);
        let Some(map) = map else {
            continue;
        };
        for (key, entry) in map {
            let command = entry.get("command");
            // Zed's `context_servers` has `"command": {"path", "args"}`.
            let (command, args) = match command {
                Some(Value::Object(c)) => (c.get("path"), c.get("args")),
                other => (other, entry.get("args")),
            };
            let args: Vec<String> = args
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let mut env = Vec::new();
            if let Some(vars) = entry.get("env").and_then(Value::as_object) {
                for name in vars.keys() {
                    push_unique(&mut env, name);
                }
            }
            let mut words = args.iter();
            while let Some(word) = words.next() {
                if word == "-e" || word == "--env" {
                    if let Some(next) = words.next() {
                        push_unique(&mut env, next.split('=').next().unwrap_or_default());
                    }
                } else if let Some(pair) = word.strip_prefix("--env=") {
                    push_unique(&mut env, pair.split('=').next().unwrap_or_default());
                }
            }
            let url = ["url", "serverUrl", "uri"]
                .iter()
                .find_map(|k| entry.get(k).and_then(Value::as_str))
                .map(str::to_owned);
            out.push(Entry {
                key: key.clone(),
                command: command.and_then(Value::as_str).map(str::to_owned),
                args,
                env,
                url,
            });
        }
    }
    out
}

/// The first entry that `pick` accepts.
pub fn find(text: &str, pick: impl Fn(&Entry) -> bool) -> Option<Entry> {
    servers(text).into_iter().find(|e| pick(e))
}

/// The env vars a README names for its server: the `env` keys of its snippets' entries, their
/// `docker run -e` flags, and `export NAME=` lines of its shell blocks.
pub fn env_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for entry in servers(text) {
        for name in &entry.env {
            push_unique(&mut names, name);
        }
    }
    for fence in fences(text) {
        if !is_shell(&fence.lang) {
            continue;
        }
        for line in &fence.body {
            let line = line.trim().trim_start_matches("$ ");
            if let Some(rest) = line.strip_prefix("export ")
                && let Some((name, _)) = rest.split_once('=')
                && is_env_name(name.trim())
            {
                push_unique(&mut names, name.trim());
            }
        }
    }
    names
}

/// Whether an argument is a placeholder the user must replace (`/path/to/dir`,
/// `<your-key>`, `YOUR_TOKEN`).
pub fn is_placeholder(arg: &str) -> bool {
    let lower = arg.to_ascii_lowercase();
    (arg.contains('<') && arg.contains('>'))
        || lower.contains("path/to")
        || lower.contains("your_")
        || lower.contains("your-")
        || lower.contains("/users/username")
        || lower.contains("${")
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn is_shell(lang: &str) -> bool {
    matches!(lang, "bash" | "sh" | "shell" | "console" | "zsh")
}

/// Shell commands from fenced shell blocks (at most 5), like Magg's README hints.
pub fn shell_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for fence in fences(text) {
        if !is_shell(&fence.lang) {
            continue;
        }
        for line in &fence.body {
            let trimmed = line.trim();
            let command = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
            let first = command.split_whitespace().next().unwrap_or_default();
            let relevant = matches!(
                first,
                "npm"
                    | "npx"
                    | "pnpm"
                    | "yarn"
                    | "pip"
                    | "pip3"
                    | "uv"
                    | "uvx"
                    | "python"
                    | "python3"
                    | "node"
                    | "go"
                    | "cargo"
                    | "make"
            );
            if relevant && command.len() < 200 && !out.iter().any(|c| c == command) {
                out.push(command.to_string());
                if out.len() == 5 {
                    return out;
                }
            }
        }
    }
    out
}

/// JSON as READMEs write it: with `//` comments, trailing commas, or as a fragment
/// (`"mcpServers": {...}`) without the outer braces.
fn parse_lenient(text: &str) -> Option<Value> {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            clean.push(c);
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        clean.push(next);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                clean.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        clean.push('\n');
                        break;
                    }
                }
            }
            _ => clean.push(c),
        }
    }
    // Trailing commas: a comma followed (past whitespace) by a closing bracket.
    let mut out = String::with_capacity(clean.len());
    let bytes: Vec<char> = clean.chars().collect();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(next) = bytes.get(i + 1) {
                    out.push(*next);
                    i += 1;
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == ',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some('}') | Some(']')) {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    let trimmed = out.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return v.is_object().then_some(v);
    }
    if trimmed.starts_with('"') {
        let wrapped = format!("{{{}}}", trimmed.trim_end_matches(','));
        return serde_json::from_str(&wrapped).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = r#"# Memory

```bash
export MEMORY_API_KEY=xyz
npx -y @acme/memory
```

Add this to `claude_desktop_config.json`:

```json
{
  // Claude Desktop
  "mcpServers": {
    "memory": {
      "command": "npx",
      "args": ["-y", "@acme/memory@1.2.0", "/path/to/store"],
      "env": {"MEMORY_FILE_PATH": "/Users/me/mem.json", "ACME_TOKEN": "<your token>"},
    },
  }
}
```

```jsonc
"servers": {
  "memory-docker": {"command": "docker", "args": ["run", "-i", "--rm", "-e", "ACME_TOKEN", "--env=REGION=eu", "acme/memory"]}
}
```
"#;

    #[test]
    fn snippets_give_entries_and_env_names() {
        let entries = servers(README);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].command.as_deref(), Some("npx"));
        assert!(entries[0].mentions("@acme/memory"));
        assert_eq!(entries[0].env, ["MEMORY_FILE_PATH", "ACME_TOKEN"]);
        assert_eq!(entries[1].env, ["ACME_TOKEN", "REGION"]);
        assert_eq!(
            env_names(README),
            ["MEMORY_FILE_PATH", "ACME_TOKEN", "REGION", "MEMORY_API_KEY"]
        );
        assert_eq!(shell_commands(README), ["npx -y @acme/memory"]);
        assert!(is_placeholder("/path/to/store"));
        assert!(!is_placeholder("-y"));
    }

    #[test]
    fn nested_fences_and_prose_are_not_snippets() {
        assert!(servers("no code here").is_empty());
        assert!(servers("```json\n{\"name\": \"x\"}\n```").is_empty());
        assert!(servers("```json\n{ not json\n```").is_empty());
    }
}
