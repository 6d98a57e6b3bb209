//! JSON arguments to component values, and component values to JSON, in the forms
//! [`super::schema`] describes. A JSON value that does not fit its type is an [`ArgError`]
//! naming where it is (`arguments.drawing.shapes[1]`) and what was expected there.

use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

use super::schema::wit_short;

/// An argument that does not fit its WIT type: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ArgError {
    /// Where the value is, e.g. `arguments.shape.circle`.
    pub path: String,
    /// What was expected there, and what was found.
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> ArgError {
    ArgError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn expected(path: &str, what: &str, got: &Value) -> ArgError {
    err(path, format!("expected {what}, got {}", describe(got)))
}

/// A short description of a JSON value for an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                format!("the string {:?}…", shown)
            } else {
                format!("the string {s:?}")
            }
        }
        Value::Array(a) => format!("an array of {} item(s)", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts `value` at `path` to a value of `ty`.
pub(crate) fn to_val(ty: &Type, value: &Value, path: &str) -> Result<Val, ArgError> {
    Ok(match ty {
        Type::Bool => Val::Bool(
            value
                .as_bool()
                .ok_or_else(|| expected(path, "true or false", value))?,
        ),
        Type::U8 => Val::U8(uint(value, path, u8::MAX.into())? as u8),
        Type::U16 => Val::U16(uint(value, path, u16::MAX.into())? as u16),
        Type::U32 => Val::U32(uint(value, path, u32::MAX.into())? as u32),
        Type::U64 => Val::U64(uint(value, path, u64::MAX)?),
        Type::S8 => Val::S8(sint(value, path, i8::MIN.into(), i8::MAX.into())? as i8),
        Type::S16 => Val::S16(sint(value, path, i16::MIN.into(), i16::MAX.into())? as i16),
        Type::S32 => Val::S32(sint(value, path, i32::MIN.into(), i32::MAX.into())? as i32),
        Type::S64 => Val::S64(sint(value, path, i64::MIN, i64::MAX)?),
        Type::Float32 => {
            let f = float(value, path)?;
            if f.is_finite() && (f as f32).is_infinite() {
                return Err(err(
                    path,
                    format!("{} is out of range for an f32", describe(value)),
                ));
            }
            Val::Float32(f as f32)
        }
        Type::Float64 => Val::Float64(float(value, path)?),
        Type::Char => {
            let s = value
                .as_str()
                .ok_or_else(|| expected(path, "a string of one character", value))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(expected(path, "a string of one character", value)),
            }
        }
        Type::String => Val::String(
            value
                .as_str()
                .ok_or_else(|| expected(path, "a string", value))?
                .to_owned(),
        ),
        Type::List(list) => {
            let items = array(value, path, "an array")?;
            let ty = list.ty();
            Val::List(items_to_vals(&ty, items, path)?)
        }
        Type::FixedLengthList(list) => {
            let what = format!("an array of {} item(s)", list.len());
            let items = array(value, path, &what)?;
            if items.len() != list.len() as usize {
                return Err(expected(path, &what, value));
            }
            Val::FixedLengthList(items_to_vals(&list.ty(), items, path)?)
        }
        Type::Map(map) => {
            let (key_ty, value_ty) = (map.key(), map.value());
            let mut pairs = Vec::new();
            if key_ty == Type::String {
                let object = value
                    .as_object()
                    .ok_or_else(|| expected(path, "an object", value))?;
                for (k, v) in object {
                    let at = format!("{path}.{k}");
                    pairs.push((Val::String(k.clone()), to_val(&value_ty, v, &at)?));
                }
            } else {
                let items = array(value, path, "an array of [key, value] pairs")?;
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    match item.as_array().map(Vec::as_slice) {
                        Some([k, v]) => pairs.push((
                            to_val(&key_ty, k, &format!("{at}[0]"))?,
                            to_val(&value_ty, v, &format!("{at}[1]"))?,
                        )),
                        _ => return Err(expected(&at, "a [key, value] pair", item)),
                    }
                }
            }
            Val::Map(pairs)
        }
        Type::Record(record) => {
            let object = value.as_object().ok_or_else(|| {
                expected(
                    path,
                    &format!("an object with {}", names(record.fields().map(|f| f.name))),
                    value,
                )
            })?;
            Val::Record(fields(
                record.fields().map(|f| (f.name, f.ty)),
                object,
                path,
            )?)
        }
        Type::Tuple(tuple) => {
            let n = tuple.types().len();
            let what = format!("an array of {n} item(s)");
            let items = array(value, path, &what)?;
            if items.len() != n {
                return Err(expected(path, &what, value));
            }
            let vals = tuple
                .types()
                .zip(items)
                .enumerate()
                .map(|(i, (ty, item))| to_val(&ty, item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            Val::Tuple(vals)
        }
        Type::Variant(variant) => {
            let cases = || names(variant.cases().map(|c| c.name));
            let (name, payload) = tagged(value).ok_or_else(|| {
                expected(
                    path,
                    &format!(
                        "one of {} (a case with a value as {{\"case\": value}})",
                        cases()
                    ),
                    value,
                )
            })?;
            let Some(case) = variant.cases().find(|c| c.name == name) else {
                return Err(err(
                    path,
                    format!("expected one of {}, got {name:?}", cases()),
                ));
            };
            let at = format!("{path}.{name}");
            let payload = match (&case.ty, payload) {
                (Some(ty), Some(v)) => Some(Box::new(to_val(ty, v, &at)?)),
                (Some(ty), None) => {
                    return Err(err(
                        path,
                        format!(
                            "case {name:?} needs a value: {{{name:?}: {}}}",
                            wit_short(ty)
                        ),
                    ));
                }
                (None, None | Some(Value::Null)) => None,
                (None, Some(v)) => return Err(expected(&at, "no value (null)", v)),
            };
            Val::Variant(name.to_owned(), payload)
        }
        Type::Enum(e) => {
            let what = || format!("one of {}", names(e.names()));
            let name = value
                .as_str()
                .ok_or_else(|| expected(path, &what(), value))?;
            if !e.names().any(|n| n == name) {
                return Err(expected(path, &what(), value));
            }
            Val::Enum(name.to_owned())
        }
        Type::Flags(flags) => {
            let what = || format!("an array of flags from {}", names(flags.names()));
            let items = array(value, path, &what())?;
            let mut set = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                let name = item
                    .as_str()
                    .filter(|n| flags.names().any(|f| f == *n))
                    .ok_or_else(|| {
                        expected(&at, &format!("one of {}", names(flags.names())), item)
                    })?;
                if !set.iter().any(|s| s == name) {
                    set.push(name.to_owned());
                }
            }
            Val::Flags(set)
        }
        Type::Option(option) => match value {
            Value::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(to_val(&option.ty(), v, path)?))),
        },
        Type::Result(result) => {
            let what = "{\"ok\": value} or {\"err\": value}";
            let object = value
                .as_object()
                .filter(|o| o.len() == 1)
                .ok_or_else(|| expected(path, what, value))?;
            let (key, inner) = object
                .iter()
                .next()
                .ok_or_else(|| expected(path, what, value))?;
            let side = match key.as_str() {
                "ok" => result.ok(),
                "err" => result.err(),
                _ => return Err(expected(path, what, value)),
            };
            let at = format!("{path}.{key}");
            let payload = match side {
                Some(ty) => Some(Box::new(to_val(&ty, inner, &at)?)),
                None if inner.is_null() => None,
                None => return Err(expected(&at, "null", inner)),
            };
            Val::Result(if key == "ok" {
                Ok(payload)
            } else {
                Err(payload)
            })
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(err(
                path,
                format!("{} cannot be given as JSON", wit_short(ty)),
            ));
        }
    })
}

/// The fields of a record (or a function's parameters) from a JSON object: every field that
/// is not an option is required, and no other key is accepted.
pub(crate) fn fields<'a>(
    fields: impl Iterator<Item = (&'a str, Type)>,
    object: &Map<String, Value>,
    path: &str,
) -> Result<Vec<(String, Val)>, ArgError> {
    let fields: Vec<(&str, Type)> = fields.collect();
    if let Some(extra) = object.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
        return Err(err(
            &format!("{path}.{extra}"),
            format!(
                "unknown; expected only {}",
                names(fields.iter().map(|(n, _)| *n))
            ),
        ));
    }
    let mut vals = Vec::with_capacity(fields.len());
    for (name, ty) in &fields {
        let at = format!("{path}.{name}");
        let val = match object.get(*name) {
            Some(v) => to_val(ty, v, &at)?,
            None if matches!(ty, Type::Option(_)) => Val::Option(None),
            None => {
                return Err(err(&at, format!("missing (expected {})", wit_short(ty))));
            }
        };
        vals.push(((*name).to_owned(), val));
    }
    Ok(vals)
}

fn items_to_vals(ty: &Type, items: &[Value], path: &str) -> Result<Vec<Val>, ArgError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| to_val(ty, item, &format!("{path}[{i}]")))
        .collect()
}

fn array<'v>(value: &'v Value, path: &str, what: &str) -> Result<&'v [Value], ArgError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| expected(path, what, value))
}

/// A variant's case: `"case"`, or `{"case": payload}`.
fn tagged(value: &Value) -> Option<(&str, Option<&Value>)> {
    match value {
        Value::String(name) => Some((name, None)),
        Value::Object(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), Some(v))),
        _ => None,
    }
}

fn uint(value: &Value, path: &str, max: u64) -> Result<u64, ArgError> {
    let what = || format!("an integer from 0 to {max}");
    match value.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(expected(path, &what(), value)),
    }
}

fn sint(value: &Value, path: &str, min: i64, max: i64) -> Result<i64, ArgError> {
    let what = || format!("an integer from {min} to {max}");
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(expected(path, &what(), value)),
    }
}

fn float(value: &Value, path: &str) -> Result<f64, ArgError> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| expected(path, "a number", value)),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => Err(expected(path, "a number", value)),
    }
}

/// `val` (of type `ty`) as JSON.
pub(crate) fn to_json(ty: &Type, val: &Val) -> Value {
    match (ty, val) {
        (_, Val::Bool(b)) => Value::Bool(*b),
        (_, Val::U8(n)) => (*n).into(),
        (_, Val::U16(n)) => (*n).into(),
        (_, Val::U32(n)) => (*n).into(),
        (_, Val::U64(n)) => (*n).into(),
        (_, Val::S8(n)) => (*n).into(),
        (_, Val::S16(n)) => (*n).into(),
        (_, Val::S32(n)) => (*n).into(),
        (_, Val::S64(n)) => (*n).into(),
        // Through its shortest decimal form, so 1.1f32 is 1.1 and not 1.100000023841858.
        (_, Val::Float32(f)) => float_json(f.to_string().parse().unwrap_or(f64::from(*f))),
        (_, Val::Float64(f)) => float_json(*f),
        (_, Val::Char(c)) => Value::String(c.to_string()),
        (_, Val::String(s)) => Value::String(s.clone()),
        (Type::List(list), Val::List(items)) => {
            let ty = list.ty();
            Value::Array(items.iter().map(|v| to_json(&ty, v)).collect())
        }
        (Type::FixedLengthList(list), Val::FixedLengthList(items)) => {
            let ty = list.ty();
            Value::Array(items.iter().map(|v| to_json(&ty, v)).collect())
        }
        (Type::Map(map), Val::Map(pairs)) => {
            let (key_ty, value_ty) = (map.key(), map.value());
            if key_ty == Type::String {
                let mut object = Map::new();
                for (k, v) in pairs {
                    if let Val::String(k) = k {
                        object.insert(k.clone(), to_json(&value_ty, v));
                    }
                }
                Value::Object(object)
            } else {
                Value::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| {
                            Value::Array(vec![to_json(&key_ty, k), to_json(&value_ty, v)])
                        })
                        .collect(),
                )
            }
        }
        (Type::Record(record), Val::Record(fields)) => {
            let mut object = Map::new();
            for (field, (name, v)) in record.fields().zip(fields) {
                object.insert(name.clone(), to_json(&field.ty, v));
            }
            Value::Object(object)
        }
        (Type::Tuple(tuple), Val::Tuple(items)) => Value::Array(
            tuple
                .types()
                .zip(items)
                .map(|(ty, v)| to_json(&ty, v))
                .collect(),
        ),
        (Type::Variant(variant), Val::Variant(name, payload)) => {
            let case_ty = variant.cases().find(|c| c.name == name).and_then(|c| c.ty);
            match (case_ty, payload) {
                (Some(ty), Some(v)) => {
                    let mut object = Map::new();
                    object.insert(name.clone(), to_json(&ty, v));
                    Value::Object(object)
                }
                _ => Value::String(name.clone()),
            }
        }
        (_, Val::Enum(name)) => Value::String(name.clone()),
        (_, Val::Flags(set)) => Value::Array(set.iter().cloned().map(Value::String).collect()),
        (Type::Option(option), Val::Option(Some(v))) => to_json(&option.ty(), v),
        (_, Val::Option(None)) => Value::Null,
        (Type::Result(result), Val::Result(r)) => {
            let (key, ty, payload) = match r {
                Ok(p) => ("ok", result.ok(), p),
                Err(p) => ("err", result.err(), p),
            };
            let inner = match (ty, payload) {
                (Some(ty), Some(v)) => to_json(&ty, v),
                _ => Value::Null,
            };
            let mut object = Map::new();
            object.insert(key.into(), inner);
            Value::Object(object)
        }
        // A value that does not match its type, or one without a JSON form (functions
        // using those are not offered as tools).
        _ => Value::Null,
    }
}

fn float_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}
