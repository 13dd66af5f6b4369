//! How many fields a document asks for once its fragments are spread in, counted before
//! async-graphql validates it.
//!
//! async-graphql's validation (the complexity and depth limits among it) walks every fragment
//! spread again where it stands. A fragment that spreads another eight times, twelve levels
//! deep, is a one-kilobyte document that stands for 8^12 fields: validating it holds a worker
//! thread for hours, and the request timeout cannot stop work that never yields. Counting here
//! takes one pass over the document (each fragment counted once, then reused), so such a
//! document is refused at once, as too large, before anything walks it.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::error::ApiError;

/// The most fields a document may stand for with its fragments spread in. The standard
/// introspection query stands for a few hundred, a dashboard for fewer; a full page of 500
/// members with every field is a few thousand fields *in the answer*, but its document names
/// each field once.
pub const MAX_EXPANDED_FIELDS: usize = 10_000;

/// How deep selection sets and fragment spreads may nest while counting: past the depth limit
/// (15) for fields, and far past any real chain of fragments. Deeper documents count as too
/// large (and counting them does not recurse without bound).
const MAX_NESTING: usize = 200;

/// Refuses `document` when it stands for more than [`MAX_EXPANDED_FIELDS`] fields.
pub fn check(document: &ExecutableDocument) -> Result<(), ApiError> {
    if expanded_fields(document) > MAX_EXPANDED_FIELDS {
        return Err(ApiError::BadInput(format!(
            "the query stands for more than {MAX_EXPANDED_FIELDS} fields once its fragments \
             are spread in; ask for less, or spread fragments fewer times"
        )));
    }
    Ok(())
}

/// The fields of every operation in `document`, with fragments spread in (saturating).
pub fn expanded_fields(document: &ExecutableDocument) -> usize {
    let mut counter = Counter {
        document,
        fragments: HashMap::new(),
        spreading: HashSet::new(),
    };
    document
        .operations
        .iter()
        .fold(0usize, |total, (_, operation)| {
            total.saturating_add(counter.selections(&operation.node.selection_set.node, 0))
        })
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    /// Each fragment's count, once known.
    fragments: HashMap<&'a str, usize>,
    /// The fragments being counted now: spreading one of them again is a cycle, which
    /// validation refuses by itself; here it counts nothing.
    spreading: HashSet<&'a str>,
}

impl<'a> Counter<'a> {
    fn selections(&mut self, set: &'a SelectionSet, nesting: usize) -> usize {
        if nesting > MAX_NESTING {
            return usize::MAX;
        }
        set.items.iter().fold(0usize, |total, item| {
            let count = match &item.node {
                Selection::Field(field) => 1usize
                    .saturating_add(self.selections(&field.node.selection_set.node, nesting + 1)),
                Selection::InlineFragment(fragment) => {
                    self.selections(&fragment.node.selection_set.node, nesting + 1)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), nesting + 1)
                }
            };
            total.saturating_add(count)
        })
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
        let count = self.selections(&fragment.node.selection_set.node, nesting);
        self.spreading.remove(key.as_str());
        self.fragments.insert(key.as_str(), count);
        count
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn count(query: &str) -> usize {
        expanded_fields(&parse_query(query).unwrap())
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
    fn fields_are_counted_with_their_fragments_spread_in() {
        assert_eq!(count("{ pipeline { stages { stage count } } }"), 4);
        assert_eq!(
            count("{ a: pipeline { ...S } b: pipeline { ...S } } fragment S on PipelineBoard { stages { count } }"),
            6
        );
        assert_eq!(
            count("{ pipeline { ... on PipelineBoard { stages { count } } } }"),
            3
        );
        // 8^12 spreads of a two-field fragment, counted in one pass.
        assert_eq!(count(&bomb(8, 12)), 1 + 2 * 8usize.pow(12));
    }

    #[test]
    fn a_fragment_bomb_is_refused_and_real_documents_pass() {
        assert!(check(&parse_query(bomb(8, 12)).unwrap()).is_err());
        assert!(check(&parse_query(bomb(2, 3)).unwrap()).is_ok());
        let introspection = include_str!("../../../tests/e2e/introspection.graphql");
        assert!(check(&parse_query(introspection).unwrap()).is_ok());
    }

    #[test]
    fn cycles_and_unknown_fragments_count_nothing_and_end() {
        assert_eq!(
            count("{ pipeline { ...A } } fragment A on PipelineBoard { stages { count } ...B } fragment B on PipelineBoard { ...A }"),
            3
        );
        assert_eq!(count("{ pipeline { ...Missing } }"), 1);
    }
}
