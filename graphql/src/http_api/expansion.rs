//! How much a document stands for once its fragments are spread in, counted before
//! async-graphql validates it.
//!
//! async-graphql's validation (the complexity and depth limits among it) walks every fragment
//! spread again where it stands, with each copy's directives and argument values. A fragment
//! that spreads another eight times, twelve levels deep, is a one-kilobyte document that stands
//! for 8^12 fields: validating it holds a worker thread for hours, and the request timeout
//! cannot stop work that never yields. Counting here takes one pass over the document (each
//! fragment counted once, then reused), so such a document is refused at once, as too large,
//! before anything walks it.
//!
//! What is counted is what validation visits: every field, fragment spread and inline fragment
//! (an unknown or cyclic spread too: validation refuses it, but only after walking the rest),
//! every directive and every argument value, in the operations and in every fragment
//! definition (validation checks unused ones too).

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::Positioned;
use async_graphql_value::Value;

use crate::error::ApiError;

/// The most nodes (fields, spreads, directives, argument values) a document may stand for
/// with its fragments spread in. The standard introspection query stands for a few hundred,
/// a dashboard for fewer; a full page of 500 members with every field is a few thousand values
/// *in the answer*, but its document names each field once.
pub const MAX_EXPANDED_NODES: usize = 10_000;

/// How deep selection sets and fragment spreads may nest while counting: past the depth limit
/// (15) for fields, and far past any real chain of fragments. Deeper documents count as too
/// large (and counting them does not recurse without bound).
const MAX_NESTING: usize = 200;

/// Refuses `document` when it stands for more than [`MAX_EXPANDED_NODES`] nodes.
pub fn check(document: &ExecutableDocument) -> Result<(), ApiError> {
    if expanded_nodes(document) > MAX_EXPANDED_NODES {
        return Err(ApiError::BadInput(format!(
            "the query stands for more than {MAX_EXPANDED_NODES} fields, directives and \
             arguments once its fragments are spread in; ask for less, or spread fragments \
             fewer times"
        )));
    }
    Ok(())
}

/// The nodes of every operation and every fragment definition in `document`, with fragments
/// spread in (saturating).
pub fn expanded_nodes(document: &ExecutableDocument) -> usize {
    let mut counter = Counter {
        document,
        fragments: HashMap::new(),
        spreading: HashSet::new(),
    };
    let operations = document
        .operations
        .iter()
        .map(|(_, operation)| counter.selections(&operation.node.selection_set.node, 0))
        .fold(0usize, usize::saturating_add);
    let definitions = document
        .fragments
        .keys()
        .map(|name| counter.fragment(name.as_str(), 0))
        .fold(0usize, usize::saturating_add);
    operations.saturating_add(definitions)
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    /// Each fragment's count, once known.
    fragments: HashMap<&'a str, usize>,
    /// The fragments being counted now: spreading one of them again is a cycle, which
    /// validation refuses by itself; here its content counts nothing more.
    spreading: HashSet<&'a str>,
}

impl<'a> Counter<'a> {
    fn selections(&mut self, set: &'a SelectionSet, nesting: usize) -> usize {
        if nesting > MAX_NESTING {
            return usize::MAX;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    let arguments = field
                        .node
                        .arguments
                        .iter()
                        .map(|(_, value)| values(&value.node))
                        .fold(0usize, usize::saturating_add);
                    1usize
                        .saturating_add(directives(&field.node.directives))
                        .saturating_add(arguments)
                        .saturating_add(
                            self.selections(&field.node.selection_set.node, nesting + 1),
                        )
                }
                Selection::InlineFragment(fragment) => 1usize
                    .saturating_add(directives(&fragment.node.directives))
                    .saturating_add(
                        self.selections(&fragment.node.selection_set.node, nesting + 1),
                    ),
                Selection::FragmentSpread(spread) => 1usize
                    .saturating_add(directives(&spread.node.directives))
                    .saturating_add(
                        self.fragment(spread.node.fragment_name.node.as_str(), nesting + 1),
                    ),
            })
            .fold(0usize, usize::saturating_add)
    }

    fn fragment(&mut self, name: &'a str, nesting: usize) -> usize {
        if let Some(&count) = self.fragments.get(name) {
            return count;
        }
        let Some((key, fragment)) = self.document.fragments.get_key_value(name) else {
            return 0; // An unknown fragment: validation names it.
        };
        if !self.spreading.insert(key.as_str()) {
            return 0;
        }
        let count = directives(&fragment.node.directives)
            .saturating_add(self.selections(&fragment.node.selection_set.node, nesting));
        self.spreading.remove(key.as_str());
        self.fragments.insert(key.as_str(), count);
        count
    }
}

/// Directives, each with its argument values.
fn directives(directives: &[Positioned<Directive>]) -> usize {
    directives
        .iter()
        .map(|directive| {
            directive
                .node
                .arguments
                .iter()
                .map(|(_, value)| values(&value.node))
                .fold(1usize, usize::saturating_add)
        })
        .fold(0usize, usize::saturating_add)
}

/// A value's nodes: itself and, in a list or an object, every value inside.
fn values(value: &Value) -> usize {
    match value {
        Value::List(items) => items.iter().map(values).fold(1usize, usize::saturating_add),
        Value::Object(fields) => fields
            .values()
            .map(values)
            .fold(1usize, usize::saturating_add),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn count(query: &str) -> usize {
        expanded_nodes(&parse_query(query).unwrap())
    }

    /// A fragment spreading the next `width` times, `levels` deep, ending in one field.
    fn bomb(width: usize, levels: usize) -> String {
        let mut query = String::from("{ pipeline { ...F0 } }");
        for level in 0..levels {
            let spreads = format!("...F{} ", level + 1).repeat(width);
            query.push_str(&format!(
                " fragment F{level} on PipelineBoard {{ {spreads}}}"
            ));
        }
        query.push_str(&format!(
            " fragment F{levels} on PipelineBoard {{ stages {{ count }} }}"
        ));
        query
    }

    #[test]
    fn nodes_are_counted_with_their_fragments_spread_in() {
        assert_eq!(count("{ pipeline { stages { stage count } } }"), 4);
        // Two spreads of S (1 + 2 each, with their fields), and S's definition once.
        assert_eq!(
            count("{ a: pipeline { ...S } b: pipeline { ...S } } fragment S on PipelineBoard { stages { count } }"),
            2 * (1 + 1 + 2) + 2
        );
        assert_eq!(
            count("{ pipeline { ... on PipelineBoard { stages { count } } } }"),
            4
        );
        // Directives and argument values are visited with each copy of their field.
        assert_eq!(
            count("query($s: Boolean!) { members(first: 5, stage: IN_TREATMENT) @skip(if: $s) { totalCount } }"),
            1 + 2 + 2 + 1
        );
        assert_eq!(
            count("{ member(id: [1, [2, 3], {a: 4}]) { id } }"),
            1 + 7 + 1
        );
        // 8^12 spreads of a two-field fragment, counted in one pass.
        assert!(count(&bomb(8, 12)) > 2 * 8usize.pow(12));
    }

    #[test]
    fn a_fragment_bomb_is_refused_and_real_documents_pass() {
        assert!(check(&parse_query(bomb(8, 12)).unwrap()).is_err());
        // Ending in an unknown fragment: each spread still counts.
        let unknown_end = bomb(8, 12).replace("{ stages { count } }", "{ ...Missing }");
        assert!(check(&parse_query(unknown_end).unwrap()).is_err());
        assert!(check(&parse_query(bomb(2, 3)).unwrap()).is_ok());
        let introspection = include_str!("../../../tests/e2e/introspection.graphql");
        assert!(check(&parse_query(introspection).unwrap()).is_ok());
    }

    #[test]
    fn unused_fragment_chains_and_directive_floods_are_refused() {
        // Validation walks unused definitions too: a long chain of them is refused.
        let mut chain = String::from("{ pipeline { stages { count } } }");
        for n in 0..300 {
            chain.push_str(&format!(
                " fragment A{n} on PipelineBoard {{ ...A{} }}",
                n + 1
            ));
        }
        chain.push_str(" fragment A300 on PipelineBoard { stages { count } }");
        assert!(check(&parse_query(chain).unwrap()).is_err());
        let flood = format!(
            "{{ pipeline {}{{ stages {{ count }} }} }}",
            "@skip(if: false) ".repeat(6_000)
        );
        assert!(check(&parse_query(flood).unwrap()).is_err());
    }

    #[test]
    fn cycles_and_unknown_fragments_end() {
        // A: 2 fields + a spread of B (1 + B); B: a spread of A, whose content is not counted
        // again (1). The operation spreads A once (1 + 4); the definitions count 4 + 1.
        assert_eq!(
            count("{ pipeline { ...A } } fragment A on PipelineBoard { stages { count } ...B } fragment B on PipelineBoard { ...A }"),
            1 + (1 + 4) + 4 + 1
        );
        assert_eq!(count("{ pipeline { ...Missing } }"), 2);
    }
}
