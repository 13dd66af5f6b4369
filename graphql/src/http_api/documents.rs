//! Parsed GraphQL documents, kept by their query text.
//!
//! Dashboards send the same few query texts over and over, and parsing one (async-graphql's
//! pest grammar) cost about a tenth of the server's CPU per request for the pipeline board.
//! A document is a pure function of its text, so a cached one can never be stale: nothing
//! from the database is kept. Nor is anything a caller wrote about a person: a text with a
//! string literal or a comment (`referMember(name: "…")`) is parsed every time and not kept,
//! so a name or an email does not outlive the request in memory (nor an erasure); dashboards
//! pass such values as variables. Validation, limits and execution still run on every
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Request;

/// How many documents are kept. Past it the cache starts again empty: a steady set of
/// dashboard queries stays cached, and a client sending ever new texts costs a parse each,
/// as without a cache, and at most this many documents of memory.
pub const MAX_DOCUMENTS: usize = 256;

/// Longer query texts are parsed every time (they are rare, and would weigh on memory).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Documents by query text.
#[derive(Debug, Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    /// The process-wide cache (documents do not depend on the schema or the database).
    pub fn global() -> &'static Self {
        static CACHE: OnceLock<DocumentCache> = OnceLock::new();
        CACHE.get_or_init(Self::default)
    }

    /// Gives `request` its parsed document, from the cache or parsed now and kept. A text
    /// that does not parse is left to the schema, which reports the error as usual.
    pub fn prepare(&self, request: &mut Request) {
        if request.query.len() > MAX_QUERY_BYTES || request.query.contains(['"', '#']) {
            return;
        }
        let cached = self.lock().get(&request.query).cloned();
        if let Some(document) = cached {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return;
        }
        let Ok(document) = request.parsed_query() else {
            return;
        };
        let document = Arc::new(document.clone());
        let mut documents = self.lock();
        if documents.len() >= MAX_DOCUMENTS {
            documents.clear();
        }
        documents.insert(request.query.clone(), document);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExecutableDocument>>> {
        // The map is valid whatever a panicking holder did (inserts and clears are atomic).
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many documents are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_served_again() {
        let cache = DocumentCache::default();
        let query = "query Board { pipeline { stages { count } } }";
        let mut first = Request::new(query);
        cache.prepare(&mut first);
        assert_eq!(cache.len(), 1);
        // A request with the same text gets the kept document, not a parse of its own: plant
        // another document under the text and the next request gets that one.
        let planted =
            async_graphql::parser::parse_query("query Planted { pipeline { stages { stage } } }")
                .unwrap();
        cache
            .lock()
            .insert(query.to_owned(), Arc::new(planted.clone()));
        let mut second = Request::new(query);
        cache.prepare(&mut second);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            format!("{:?}", second.parsed_query().unwrap()),
            format!("{planted:?}")
        );
    }

    #[test]
    fn texts_that_do_not_parse_or_are_long_are_not_kept() {
        let cache = DocumentCache::default();
        cache.prepare(&mut Request::new("query {"));
        let long = format!(
            "{{ pipeline {{ stages {{ count }} }} }} #{}",
            "x".repeat(MAX_QUERY_BYTES)
        );
        cache.prepare(&mut Request::new(long));
        assert!(cache.is_empty());
    }

    #[test]
    fn texts_with_string_literals_or_comments_are_not_kept() {
        let cache = DocumentCache::default();
        for query in [
            "mutation { referMember(name: \"Robin Example\", source: SELF) { id } }",
            "mutation { referMember(name: \"\"\"Robin\"\"\", source: SELF) { id } }",
            "# asked for Robin Example\n{ pipeline { stages { count } } }",
        ] {
            let mut request = Request::new(query);
            cache.prepare(&mut request);
            assert!(cache.is_empty(), "kept: {query}");
        }
        cache.prepare(&mut Request::new(
            "mutation($name: String!) { referMember(name: $name, source: SELF) { id } }",
        ));
        assert_eq!(cache.len(), 1, "values in variables are not in the text");
    }

    #[test]
    fn a_full_cache_starts_again() {
        let cache = DocumentCache::default();
        for i in 0..=MAX_DOCUMENTS {
            cache.prepare(&mut Request::new(format!(
                "query Q{i} {{ pipeline {{ stages {{ count }} }} }}"
            )));
        }
        assert_eq!(cache.len(), 1);
    }
}
