//! The WIT docs a component carries: a `package-docs` custom section, in the format wit-parser
//! writes (a version byte, 0 or 1, then JSON), as tools such as wit-docs-inject add it to a
//! built component or a guest's build embeds it in its core module.
//!
//! The section names interfaces and functions, not the component's export names, so docs are
//! looked up by the last part of an export name (`example:geometry/shapes@0.1.0` → `shapes`).
//! Types are described by name only, and the component model erases type names; the docs of a
//! record's fields (or a variant's, enum's or flags' cases) are used when exactly one
//! documented type of the interface has those names.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// The name of the custom section.
const SECTION: &str = "package-docs";

/// The docs of one package, as far as magg uses them.
#[derive(Debug, Default)]
pub(crate) struct PackageDocs {
    /// Docs of functions exported by a world (top-level functions), by name.
    world_funcs: HashMap<String, String>,
    /// Docs of interfaces, by interface name.
    interfaces: HashMap<String, InterfaceDocs>,
}

/// The docs of one interface.
#[derive(Debug, Default)]
pub(crate) struct InterfaceDocs {
    /// Its functions' docs, by function name.
    funcs: HashMap<String, String>,
    /// Its documented types.
    types: Vec<TypeDocs>,
}

/// The docs of one type: its own and its items' (fields or cases).
#[derive(Debug, Default)]
pub(crate) struct TypeDocs {
    /// The type's own docs.
    pub(crate) docs: Option<String>,
    /// Docs of its fields or cases, by name.
    pub(crate) items: HashMap<String, String>,
}

impl PackageDocs {
    /// Reads the docs of `wasm` (a component), if it carries a `package-docs` section (at any
    /// depth: in the component or in one of its core modules). A malformed section is logged
    /// and ignored: the component still loads, with generated descriptions.
    pub(crate) fn read(wasm: &[u8], component: &str) -> Option<PackageDocs> {
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            let Ok(payload) = payload else {
                return None;
            };
            if let wasmparser::Payload::CustomSection(section) = payload
                && section.name() == SECTION
            {
                return match PackageDocs::decode(section.data()) {
                    Ok(docs) => Some(docs),
                    Err(e) => {
                        tracing::warn!(
                            "{component}: its {SECTION} section is unusable ({e}); tools are \
                             described from their signatures"
                        );
                        None
                    }
                };
            }
        }
        None
    }

    /// Decodes a section's contents.
    pub(crate) fn decode(data: &[u8]) -> Result<PackageDocs, String> {
        match data.first() {
            Some(0 | 1) => {}
            Some(v) => return Err(format!("format version {v} is not one magg reads (0 or 1)")),
            None => return Err("it is empty".to_owned()),
        }
        let raw: RawPackage =
            serde_json::from_slice(&data[1..]).map_err(|e| format!("bad JSON: {e}"))?;
        let mut docs = PackageDocs::default();
        for world in raw.worlds.into_values() {
            for (name, func) in world.funcs.into_iter().chain(world.func_exports) {
                if let Some(text) = func.docs() {
                    docs.world_funcs.insert(name, text);
                }
            }
            for (name, iface) in world.interfaces.into_iter().chain(world.interface_exports) {
                docs.interfaces.insert(name, iface.into_docs());
            }
        }
        for (name, iface) in raw.interfaces {
            docs.interfaces.insert(name, iface.into_docs());
        }
        Ok(docs)
    }

    /// The docs of the interface exported as `export` (a full export name such as
    /// `example:geometry/shapes@0.1.0`, or a plain name).
    pub(crate) fn interface(&self, export: &str) -> Option<&InterfaceDocs> {
        self.interfaces.get(super::interface_name(export))
    }

    /// The docs of the top-level function `name`.
    pub(crate) fn world_func(&self, name: &str) -> Option<&str> {
        self.world_funcs.get(name).map(String::as_str)
    }
}

impl InterfaceDocs {
    /// The docs of the function `name`.
    pub(crate) fn func(&self, name: &str) -> Option<&str> {
        self.funcs.get(name).map(String::as_str)
    }

    /// The one documented type whose items are all among `names` (the fields of a record,
    /// the cases of a variant, enum or flags), if exactly one is.
    pub(crate) fn type_with_items<'a>(
        &self,
        names: impl Iterator<Item = &'a str>,
    ) -> Option<&TypeDocs> {
        let names: Vec<&str> = names.collect();
        let mut found = self
            .types
            .iter()
            .filter(|t| !t.items.is_empty() && t.items.keys().all(|k| names.contains(&k.as_str())));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}

#[derive(Deserialize, Default)]
struct RawPackage {
    #[serde(default)]
    worlds: HashMap<String, RawWorld>,
    #[serde(default)]
    interfaces: HashMap<String, RawInterface>,
}

#[derive(Deserialize, Default)]
struct RawWorld {
    #[serde(default)]
    interfaces: HashMap<String, RawInterface>,
    #[serde(default)]
    interface_exports: HashMap<String, RawInterface>,
    #[serde(default)]
    funcs: HashMap<String, RawFunc>,
    #[serde(default)]
    func_exports: HashMap<String, RawFunc>,
}

#[derive(Deserialize, Default)]
struct RawInterface {
    #[serde(default)]
    funcs: HashMap<String, RawFunc>,
    #[serde(default)]
    types: HashMap<String, RawType>,
}

impl RawInterface {
    fn into_docs(self) -> InterfaceDocs {
        InterfaceDocs {
            funcs: self
                .funcs
                .into_iter()
                .filter_map(|(name, f)| Some((name, f.docs()?)))
                .collect(),
            types: self
                .types
                .into_values()
                .map(|t| TypeDocs {
                    docs: t.docs.as_deref().map(unwrap_lines),
                    items: t
                        .items
                        .into_iter()
                        .map(|(name, text)| (name, unwrap_lines(&text)))
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, Default)]
struct RawType {
    #[serde(default)]
    docs: Option<String>,
    #[serde(default)]
    items: HashMap<String, String>,
}

/// A function's docs: a string (format 0) or an object with `docs` (format 1).
#[derive(Deserialize)]
#[serde(transparent)]
struct RawFunc(Value);

impl RawFunc {
    fn docs(&self) -> Option<String> {
        let text = match &self.0 {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("docs")?.as_str()?,
            _ => return None,
        };
        let text = unwrap_lines(text);
        (!text.is_empty()).then_some(text)
    }
}

/// Doc text as one line per paragraph: WIT docs are wrapped at a width, and a tool's
/// description reads better unwrapped. Blank lines still separate paragraphs.
fn unwrap_lines(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(json: &str) -> Vec<u8> {
        let mut data = vec![1];
        data.extend_from_slice(json.as_bytes());
        data
    }

    #[test]
    fn reads_world_and_interface_docs_in_both_formats() {
        let docs = PackageDocs::decode(&section(
            r#"{"worlds":{"w":{"func_exports":{"ping":{"docs":"Answers."}},"funcs":{"old":"Format 0."}}},
                "interfaces":{"shapes":{"docs":"Shapes.","funcs":{"area":{"docs":" The area\nof a shape.\n\nIn units. "}},
                "types":{"point":{"docs":"A point.","items":{"x":"Across.","y":"Up."}}}}}}"#,
        ))
        .expect("decodes");
        assert_eq!(docs.world_func("ping"), Some("Answers."));
        assert_eq!(docs.world_func("old"), Some("Format 0."));
        let shapes = docs
            .interface("example:geometry/shapes@0.1.0")
            .expect("found by short name");
        assert_eq!(
            shapes.func("area"),
            Some("The area of a shape.\n\nIn units.")
        );
        let point = shapes
            .type_with_items(["x", "y", "z"].into_iter())
            .expect("one match");
        assert_eq!(point.items.get("y").map(String::as_str), Some("Up."));
        assert!(shapes.type_with_items(["a"].into_iter()).is_none());
    }

    #[test]
    fn refuses_an_unknown_version_and_bad_json() {
        assert!(PackageDocs::decode(&[7, b'{', b'}']).is_err_and(|e| e.contains("version 7")));
        assert!(PackageDocs::decode(&section("{nope")).is_err_and(|e| e.contains("bad JSON")));
        assert!(PackageDocs::decode(&[]).is_err());
    }
}
