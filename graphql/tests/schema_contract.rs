//! The served schema is the checked-in `schema.graphql` (no drift) and a superset of the
//! contracts in `contract/` (minimum.graphql, privacy.graphql): every type, field, argument and
//! enum value they name, with a compatible type. Regenerate `schema.graphql` after a deliberate
//! change with `UPDATE_SCHEMA=1 cargo test -p clinic-graphql --test schema_contract`.
#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use async_graphql_parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

/// A type's shape: its fields (with argument types) or its enum values.
#[derive(Default, Debug)]
struct Shape {
    kind: &'static str,
    /// field → (type, argument → type)
    fields: BTreeMap<String, (Type, BTreeMap<String, Type>)>,
    values: BTreeSet<String>,
}

fn shapes(sdl: &str) -> BTreeMap<String, Shape> {
    let document = async_graphql_parser::parse_schema(sdl).expect("valid SDL");
    let mut shapes: BTreeMap<String, Shape> = BTreeMap::new();
    for definition in document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let definition = definition.node;
        let shape = shapes.entry(definition.name.node.to_string()).or_default();
        match definition.kind {
            TypeKind::Scalar => shape.kind = "scalar",
            TypeKind::Object(object) => {
                shape.kind = "object";
                for field in object.fields {
                    let field = field.node;
                    let args = field
                        .arguments
                        .into_iter()
                        .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                        .collect();
                    shape
                        .fields
                        .insert(field.name.node.to_string(), (field.ty.node, args));
                }
            }
            TypeKind::InputObject(input) => {
                shape.kind = "input";
                for field in input.fields {
                    let field = field.node;
                    shape.fields.insert(
                        field.name.node.to_string(),
                        (field.ty.node, BTreeMap::new()),
                    );
                }
            }
            TypeKind::Enum(enumeration) => {
                shape.kind = "enum";
                for value in enumeration.values {
                    shape.values.insert(value.node.value.node.to_string());
                }
            }
            TypeKind::Interface(_) => shape.kind = "interface",
            TypeKind::Union(_) => shape.kind = "union",
        }
    }
    shapes
}

/// An output the server returns may be stricter (non-null) than the contract's.
fn output_compatible(contract: &Type, served: &Type) -> bool {
    (contract.nullable || !served.nullable)
        && base_compatible(&contract.base, &served.base, output_compatible)
}

/// An argument the client sends may be looser (nullable) on the server than in the contract.
fn input_compatible(contract: &Type, served: &Type) -> bool {
    (!contract.nullable || served.nullable)
        && base_compatible(&contract.base, &served.base, input_compatible)
}

fn base_compatible(
    contract: &BaseType,
    served: &BaseType,
    inner: fn(&Type, &Type) -> bool,
) -> bool {
    match (contract, served) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => inner(a, b),
        _ => false,
    }
}

fn missing_from(contract: &str, served: &BTreeMap<String, Shape>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, want) in shapes(contract) {
        let Some(have) = served.get(&name) else {
            problems.push(format!("type {name} is missing"));
            continue;
        };
        for value in want.values.difference(&have.values) {
            problems.push(format!("enum value {name}.{value} is missing"));
        }
        for (field, (want_type, want_args)) in &want.fields {
            let Some((have_type, have_args)) = have.fields.get(field) else {
                problems.push(format!("field {name}.{field} is missing"));
                continue;
            };
            let compatible = if want.kind == "input" {
                input_compatible(want_type, have_type)
            } else {
                output_compatible(want_type, have_type)
            };
            if !compatible {
                problems.push(format!(
                    "{name}.{field}: contract {want_type}, served {have_type}"
                ));
            }
            for (arg, want_arg) in want_args {
                match have_args.get(arg) {
                    None => problems.push(format!("argument {name}.{field}({arg}) is missing")),
                    Some(have_arg) if !input_compatible(want_arg, have_arg) => problems.push(
                        format!("{name}.{field}({arg}): contract {want_arg}, served {have_arg}"),
                    ),
                    Some(_) => {}
                }
            }
            for (arg, have_arg) in have_args {
                if !want_args.contains_key(arg) && !have_arg.nullable {
                    problems.push(format!("{name}.{field}({arg}) is a new required argument"));
                }
            }
        }
    }
    problems
}

#[test]
fn the_served_schema_is_the_checked_in_one() {
    let served = clinic_graphql::schema::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &served).expect("write schema.graphql");
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == served,
        "schema.graphql differs from the served schema; if the change is deliberate run \
         UPDATE_SCHEMA=1 cargo test -p clinic-graphql --test schema_contract and commit it"
    );
}

#[test]
fn the_served_schema_contains_the_minimum_contract() {
    let served = shapes(&clinic_graphql::schema::sdl());
    let problems = missing_from(include_str!("../contract/minimum.graphql"), &served);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_what_is_missing() {
    let served = shapes("type Query { a(x: Int): String! } enum E { A }");
    let problems = missing_from(
        "type Query { a(x: Int!, y: Int): String b: Int } enum E { A B } type T { f: Int }",
        &served,
    );
    assert_eq!(
        problems,
        [
            "enum value E.B is missing",
            "argument Query.a(y) is missing",
            "field Query.b is missing",
            "type T is missing",
        ]
    );
    let stricter_output_is_fine = missing_from(
        "type Query { a: String }",
        &shapes("type Query { a: String! }"),
    );
    assert!(stricter_output_is_fine.is_empty());
    let new_required_argument = missing_from(
        "type Query { a: Int }",
        &shapes("type Query { a(x: Int!): Int }"),
    );
    assert_eq!(
        new_required_argument,
        ["Query.a(x) is a new required argument"]
    );
}

#[test]
fn the_served_schema_contains_the_privacy_contract() {
    let served = shapes(&clinic_graphql::schema::sdl());
    let problems = missing_from(include_str!("../contract/privacy.graphql"), &served);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
