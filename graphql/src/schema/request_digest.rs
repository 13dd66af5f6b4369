//! What makes a mutation with an idempotency key a retry: the same field with the same
//! arguments. The digest is stored with the mutation's first event
//! ([`clinic_infra::commands::CommandContext::request_digest`]); a later request with the key
//! and another digest is refused instead of answered with what the first one recorded.

use async_graphql::{Context, Value};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};

/// SHA-256 (hex) of the field's name and its arguments as resolved: variables substituted,
/// arguments and input-object fields in name order, null ones left out, enum values read as
/// their names. So a retry that sends a value inline instead of as a variable (an enum arrives
/// from variables as a string), its fields in another order, or a null instead of nothing, is
/// the same request: no argument of this schema tells null from absent, and an argument is
/// either an enum or a string, never both. The selection (what the answer shows) and the alias
/// (already in the key's scope) are not part of it.
pub(super) fn of(ctx: &Context<'_>) -> ApiResult<String> {
    let field = ctx.field();
    let mut arguments = field
        .arguments()
        .map_err(|error| ApiError::BadInput(error.message))?;
    arguments.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
    let mut text = String::from(field.name());
    for (name, value) in arguments.iter().filter(|(_, value)| !is_null(value)) {
        text.push(' ');
        text.push_str(name);
        text.push('=');
        canonical(value, &mut text);
    }
    Ok(hex::encode(Sha256::digest(text.as_bytes())))
}

fn is_null(value: &Value) -> bool {
    matches!(value, Value::Null)
}

/// `value` as text with one spelling per value: JSON's for scalars (an enum value as the string
/// of its name), lists in order, objects with their non-null fields in name order.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
        Value::Enum(name) => out.push_str(&serde_json::Value::from(name.as_str()).to_string()),
        Value::Binary(bytes) => {
            out.push_str("0x");
            out.push_str(&hex::encode(bytes));
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().filter(|(_, v)| !is_null(v)).collect();
            fields.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
            out.push('{');
            for (i, (name, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push(':');
                canonical(value, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Name;

    fn text(value: Value) -> String {
        let mut out = String::new();
        canonical(&value, &mut out);
        out
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (Name::new(k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn an_input_object_reads_the_same_however_it_is_spelled() {
        let inline = object(&[
            ("mood", Value::from(3)),
            ("note", Value::Null),
            ("status", Value::Enum(Name::new("PRESENT"))),
            ("name", Value::from("Ann")),
        ]);
        // From variables: an enum as a string, fields in the JSON's order, a null left out.
        let from_variables = object(&[
            ("status", Value::from("PRESENT")),
            ("name", Value::from("Ann")),
            ("mood", Value::from(3)),
        ]);
        assert_eq!(text(inline.clone()), text(from_variables));
        assert_eq!(text(inline), r#"{mood:3,name:"Ann",status:"PRESENT"}"#);
    }

    #[test]
    fn values_that_differ_read_differently() {
        // A string is quoted and escaped, so it never reads as a number, a list or null.
        assert_ne!(text(Value::from("3")), text(Value::from(3)));
        assert_ne!(
            text(Value::from("a\",b")),
            text(Value::List(vec![Value::from("a"), Value::from("b")]))
        );
        assert_ne!(text(Value::Null), text(Value::from("null")));
        assert_ne!(
            text(object(&[("name", Value::from("Ann"))])),
            text(object(&[("name", Value::from("Bob"))]))
        );
        assert_eq!(text(Value::from("a\"b")), r#""a\"b""#);
    }
}
