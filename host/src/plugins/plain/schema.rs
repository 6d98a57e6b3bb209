//! JSON Schemas derived from WIT types, and the WIT spelling of a type for generated
//! descriptions.
//!
//! How each WIT type is written in JSON (the same for arguments and results):
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool` | `true` / `false` |
//! | `u8` … `s64` | an integer within the type's range |
//! | `f32`, `f64` | a number (`"NaN"`, `"Infinity"`, `"-Infinity"` for the others) |
//! | `char` | a string of one character |
//! | `string` | a string |
//! | `list<T>` (also `list<u8>`) | an array of T |
//! | `list<T, N>` | an array of exactly N T |
//! | `map<string, V>` | an object; other keys: an array of `[key, value]` pairs |
//! | `record` | an object with the record's field names; option fields may be omitted or null |
//! | `tuple<…>` | an array, one item per element |
//! | `variant` | `{"case": payload}`, or `"case"` for a case without payload |
//! | `enum` | the case's name |
//! | `option<T>` | T, or null |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` (`null` for a missing payload) |
//! | `flags` | an array of the names of the flags that are set |
//!
//! Resources, futures, streams and error contexts have no JSON form: a function that takes or
//! returns one is not offered as a tool.

use serde_json::{Map, Value, json};
use wasmtime::component::Type;

use super::docs::InterfaceDocs;

/// Derives schemas, using an interface's docs (when the component carries them) for the
/// descriptions of record fields and variant cases.
pub(crate) struct Deriver<'a> {
    pub(crate) docs: Option<&'a InterfaceDocs>,
}

impl Deriver<'_> {
    /// The JSON Schema of `ty`, or why it has none.
    pub(crate) fn schema(&self, ty: &Type) -> Result<Value, String> {
        Ok(match ty {
            Type::Bool => json!({"type": "boolean"}),
            Type::U8 => int(0, u8::MAX),
            Type::S8 => int(i8::MIN, i8::MAX),
            Type::U16 => int(0, u16::MAX),
            Type::S16 => int(i16::MIN, i16::MAX),
            Type::U32 => int(0, u32::MAX),
            Type::S32 => int(i32::MIN, i32::MAX),
            Type::U64 => int(0, u64::MAX),
            Type::S64 => int(i64::MIN, i64::MAX),
            Type::Float32 | Type::Float64 => json!({"type": "number"}),
            Type::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
            Type::String => json!({"type": "string"}),
            Type::List(list) => json!({"type": "array", "items": self.schema(&list.ty())?}),
            Type::FixedLengthList(list) => json!({
                "type": "array",
                "items": self.schema(&list.ty())?,
                "minItems": list.len(),
                "maxItems": list.len(),
            }),
            Type::Map(map) => {
                let value = self.schema(&map.value())?;
                if map.key() == Type::String {
                    json!({"type": "object", "additionalProperties": value})
                } else {
                    let key = self.schema(&map.key())?;
                    json!({"type": "array", "items": pair(key, value)})
                }
            }
            Type::Record(record) => {
                let docs = self
                    .docs
                    .and_then(|d| d.type_with_items(record.fields().map(|f| f.name)));
                let mut properties = Map::new();
                let mut required = Vec::new();
                for field in record.fields() {
                    let mut schema = self.schema(&field.ty)?;
                    if let Some(text) = docs.and_then(|d| d.items.get(field.name)) {
                        describe(&mut schema, text);
                    }
                    if !matches!(field.ty, Type::Option(_)) {
                        required.push(field.name.to_owned());
                    }
                    properties.insert(field.name.to_owned(), schema);
                }
                let mut schema = object(properties, required);
                if let Some(text) = docs.and_then(|d| d.docs.as_deref()) {
                    describe(&mut schema, text);
                }
                schema
            }
            Type::Tuple(tuple) => {
                let items = tuple
                    .types()
                    .map(|t| self.schema(&t))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = items.len();
                json!({
                    "type": "array",
                    "prefixItems": items,
                    "items": false,
                    "minItems": n,
                    "maxItems": n,
                })
            }
            Type::Variant(variant) => {
                let docs = self
                    .docs
                    .and_then(|d| d.type_with_items(variant.cases().map(|c| c.name)));
                let mut one_of = Vec::new();
                for case in variant.cases() {
                    let mut schema = match &case.ty {
                        Some(ty) => {
                            let mut properties = Map::new();
                            properties.insert(case.name.to_owned(), self.schema(ty)?);
                            object(properties, vec![case.name.to_owned()])
                        }
                        None => json!({"type": "string", "enum": [case.name]}),
                    };
                    if let Some(text) = docs.and_then(|d| d.items.get(case.name)) {
                        describe(&mut schema, text);
                    }
                    one_of.push(schema);
                }
                let mut schema = json!({"oneOf": one_of});
                if let Some(text) = docs.and_then(|d| d.docs.as_deref()) {
                    describe(&mut schema, text);
                }
                schema
            }
            Type::Enum(e) => {
                let mut schema = json!({"type": "string", "enum": e.names().collect::<Vec<_>>()});
                if let Some(text) = self
                    .docs
                    .and_then(|d| d.type_with_items(e.names()))
                    .and_then(|d| d.docs.as_deref())
                {
                    describe(&mut schema, text);
                }
                schema
            }
            Type::Flags(flags) => {
                let mut schema = json!({
                    "type": "array",
                    "items": {"type": "string", "enum": flags.names().collect::<Vec<_>>()},
                    "uniqueItems": true,
                });
                if let Some(text) = self
                    .docs
                    .and_then(|d| d.type_with_items(flags.names()))
                    .and_then(|d| d.docs.as_deref())
                {
                    describe(&mut schema, text);
                }
                schema
            }
            Type::Option(option) => nullable(self.schema(&option.ty())?),
            Type::Result(result) => {
                let ok = match result.ok() {
                    Some(ty) => self.schema(&ty)?,
                    None => json!({"type": "null"}),
                };
                let err = match result.err() {
                    Some(ty) => self.schema(&ty)?,
                    None => json!({"type": "null"}),
                };
                let mut ok_props = Map::new();
                ok_props.insert("ok".into(), ok);
                let mut err_props = Map::new();
                err_props.insert("err".into(), err);
                json!({"oneOf": [
                    object(ok_props, vec!["ok".into()]),
                    object(err_props, vec!["err".into()]),
                ]})
            }
            Type::Own(_) | Type::Borrow(_) => {
                return Err(format!(
                    "{} is a resource handle, which has no JSON form",
                    wit(ty)
                ));
            }
            Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
                return Err(format!("{} has no JSON form", wit(ty)));
            }
        })
    }
}

/// An object schema with these properties, all others refused.
pub(crate) fn object(properties: Map<String, Value>, required: Vec<String>) -> Value {
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema["additionalProperties"] = json!(false);
    schema
}

fn int(min: impl Into<Value>, max: impl Into<Value>) -> Value {
    json!({"type": "integer", "minimum": min.into(), "maximum": max.into()})
}

fn pair(key: Value, value: Value) -> Value {
    json!({
        "type": "array",
        "prefixItems": [key, value],
        "items": false,
        "minItems": 2,
        "maxItems": 2,
    })
}

/// `schema`, or null. A schema of one simple type gets `null` added to its types; any other
/// becomes `anyOf` with `{"type": "null"}`.
fn nullable(mut schema: Value) -> Value {
    let simple = schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match simple {
        Some(ty) if schema.get("enum").is_none() && schema.get("const").is_none() => {
            schema["type"] = json!([ty, "null"]);
            schema
        }
        _ => json!({"anyOf": [schema, {"type": "null"}]}),
    }
}

fn describe(schema: &mut Value, text: &str) {
    if let Value::Object(map) = schema {
        map.insert("description".into(), Value::String(text.trim().to_owned()));
    }
}

/// `ty` as WIT spells it, with `record`, `variant`, `enum`, `flags` and resources shown by
/// kind (the component model keeps no type names).
pub(crate) fn wit(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", wit(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", wit(&m.key()), wit(&m.value())),
        Type::Record(r) => format!(
            "record {{ {} }}",
            r.fields()
                .map(|f| format!("{}: {}", f.name, wit(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types().map(|t| wit(&t)).collect::<Vec<_>>().join(", ")
        ),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            v.cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, wit(t)),
                    None => c.name.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", wit(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", wit(&ok)),
            (None, Some(err)) => format!("result<_, {}>", wit(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", wit(&ok), wit(&err)),
        },
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// A short spelling of `ty` for a one-line signature: compound named types by kind only.
pub(crate) fn wit_short(ty: &Type) -> String {
    match ty {
        Type::Record(_) => "record".into(),
        Type::Variant(_) => "variant".into(),
        Type::Enum(_) => "enum".into(),
        Type::Flags(_) => "flags".into(),
        Type::List(l) => format!("list<{}>", wit_short(&l.ty())),
        Type::Option(o) => format!("option<{}>", wit_short(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", wit_short(&ok)),
            (None, Some(err)) => format!("result<_, {}>", wit_short(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", wit_short(&ok), wit_short(&err)),
        },
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types()
                .map(|t| wit_short(&t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => wit(other),
    }
}
