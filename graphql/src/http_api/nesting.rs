//! How deep a document nests its brackets, measured on its text before anything parses it.
//!
//! async-graphql's parser descends recursively into nested lists, input objects and selection
//! sets, and its own depth limit applies only after that first pass. On a worker thread's
//! 2 MiB stack, a 6 KB argument of 3,000 nested lists (`{a(b:[[[...]]])}`) overflows the stack,
//! and a stack overflow aborts the whole process, every request in flight with it. One pass
//! over the bytes, skipping strings and comments, refuses such a document before the parser
//! sees it.

use crate::error::ApiError;

/// The deepest `(`, `[` and `{` may nest in a document. A real one nests a few levels of
/// input values inside a selection at most as deep as the depth limit (15); the parser's
/// recursion at this depth uses a small part of the stack.
pub const MAX_BRACKET_DEPTH: usize = 64;

/// Refuses `query` when its brackets, outside strings and comments, nest deeper than
/// [`MAX_BRACKET_DEPTH`]. A document this scan cannot follow (an unterminated string) is left
/// to the parser, which refuses it with its own message.
pub fn check(query: &str) -> Result<(), ApiError> {
    if bracket_depth(query.as_bytes()) > MAX_BRACKET_DEPTH {
        return Err(ApiError::BadInput(format!(
            "the query nests lists, objects, arguments or selections more than \
             {MAX_BRACKET_DEPTH} levels deep"
        )));
    }
    Ok(())
}

/// The deepest nesting of brackets in `text` outside strings, block strings and comments
/// (stopping early once past the limit).
fn bracket_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < text.len() && deepest <= MAX_BRACKET_DEPTH {
        match text[i] {
            b'#' => {
                while i < text.len() && !matches!(text[i], b'\n' | b'\r') {
                    i += 1;
                }
            }
            b'"' if text[i..].starts_with(b"\"\"\"") => {
                // A block string ends at the next `"""` that is not escaped as `\"""`.
                i += 3;
                while i < text.len() && !text[i..].starts_with(b"\"\"\"") {
                    i += if text[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                // A string ends at an unescaped `"` (or, unterminated, at the line's end).
                i += 1;
                while i < text.len() && !matches!(text[i], b'"' | b'\n' | b'\r') {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_of_every_kind() {
        assert_eq!(bracket_depth(b"{ members { edges { node { id } } } }"), 4);
        assert_eq!(bracket_depth(b"mutation { a(x: [{b: [1]}]) { id } }"), 5);
        assert_eq!(bracket_depth(b"{ a } { b { c } }"), 2);
    }

    #[test]
    fn skips_strings_block_strings_and_comments() {
        assert_eq!(bracket_depth(br#"{ a(s: "[[[{{{((( \" [[[") }"#), 2);
        assert_eq!(bracket_depth(b"{ a(s: \"\"\"[[[ \\\"\"\" [[[\"\"\") }"), 2);
        assert_eq!(bracket_depth(b"# {{{{{{\n{ a }"), 1);
    }

    #[test]
    fn refuses_a_document_nested_past_the_limit() {
        let within = format!("{{a(b:{}{})}}", "[".repeat(62), "]".repeat(62));
        assert!(check(&within).is_ok());
        let past = format!("{{a(b:{}{})}}", "[".repeat(63), "]".repeat(63));
        assert!(check(&past).is_err());
        // What overflowed the parser's stack: 3,000 lists, 6 KB.
        let bomb = format!("{{a(b:{}{})}}", "[".repeat(3_000), "]".repeat(3_000));
        let Err(ApiError::BadInput(message)) = check(&bomb) else {
            panic!("refused as bad input");
        };
        assert!(message.contains("64 levels"), "{message}");
    }
}
