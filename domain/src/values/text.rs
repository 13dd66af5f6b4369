//! Free text typed by staff: reasons, goals, topics, recipients.

use std::fmt;

use super::ValueError;

/// A required free text: trimmed, not empty, at most a limit of characters, no control
/// characters other than line breaks and tabs.
///
/// Carries the name of its field so errors say which text was wrong without repeating it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(String);

impl Text {
    /// The default limit: long enough for a reason or a goal, short enough for a column.
    pub const DEFAULT_MAX: usize = 2000;

    /// Parses `text` for `field` with the default limit.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, ValueError> {
        Self::parse_with_max(field, text, Self::DEFAULT_MAX)
    }

    /// Parses `text` for `field` with a limit of `max` characters.
    pub fn parse_with_max(field: &'static str, text: &str, max: usize) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Empty { field });
        }
        if trimmed.chars().count() > max {
            return Err(ValueError::TooLong { field, max });
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(ValueError::ControlCharacters { field });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A text of this crate's own constants, which `tests` check are valid.
    pub(crate) fn from_static(text: &'static str) -> Self {
        Self(text.to_owned())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, moved out (to put into an event).
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn free_text_is_trimmed() {
        assert_eq!(
            Text::parse("reason", "  moved away \n").unwrap().as_str(),
            "moved away"
        );
    }

    #[test]
    fn blank_free_text_is_refused_naming_the_field() {
        let err = Text::parse("reason", "   ").unwrap_err();
        assert_eq!(err.to_string(), "reason must not be empty");
    }

    #[test]
    fn overlong_free_text_is_refused() {
        assert_eq!(
            Text::parse_with_max("topic", "abcdef", 5),
            Err(ValueError::TooLong {
                field: "topic",
                max: 5
            })
        );
    }

    #[test]
    fn free_text_may_span_lines_but_not_hold_escapes() {
        assert!(Text::parse("goal", "one\ntwo").is_ok());
        assert_eq!(
            Text::parse("goal", "a\u{1b}[31m"),
            Err(ValueError::ControlCharacters { field: "goal" })
        );
    }
}
