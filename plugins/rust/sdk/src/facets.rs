//! Facet tags: the `tags` of a search result that tell magg what the result is, beside its
//! labels. `magg_search_servers` reads them to merge one server found by several providers
//! (the same repository or the same package) and to rank results, shows them as fields of the
//! merged result (`repository`, `packages`, `stars`) and drops them from its `tags`.
//!
//! | tag | meaning |
//! |---|---|
//! | `repository:<url>` | the server's source repository (e.g. `repository:https://github.com/a/b`) |
//! | `package:<registry>:<id>` | a package that runs it: `package:npm:time-mcp`, `package:pypi:mcp-server-time`, `package:oci:docker.io/a/b` |
//! | `stars:<n>` | its popularity (GitHub stars) |
//!
//! A provider that does not write them still merges: magg also reads the package of a
//! result's `install` config (`npx -y ID`, `uvx ID`, `docker run ... IMAGE`) and a `url` that
//! is a GitHub, GitLab, Codeberg or Bitbucket repository.

/// The tag naming the server's source repository.
pub fn repository(url: &str) -> String {
    format!("repository:{}", url.trim())
}

/// The tag naming a package that runs the server; `registry` is `npm`, `pypi`, `oci`, ...
pub fn package(registry: &str, id: &str) -> String {
    format!(
        "package:{}:{}",
        registry.trim().to_ascii_lowercase(),
        id.trim()
    )
}

/// The tag giving the server's star count.
pub fn stars(count: u64) -> String {
    format!("stars:{count}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_tags() {
        assert_eq!(
            repository(" https://github.com/a/b "),
            "repository:https://github.com/a/b"
        );
        assert_eq!(package("NPM", "@a/b"), "package:npm:@a/b");
        assert_eq!(stars(12), "stars:12");
    }
}
