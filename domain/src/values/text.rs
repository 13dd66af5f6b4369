//! Free text typed by staff: reasons, goals, topics, recipients.

use std::fmt;

use super::ValueError;

/// A required free text: trimmed, not empty, at most a limit of characters, no control
/// characters other than line breaks and tabs, and no bidirectional overrides.
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
            .any(|c| (c.is_control() && c != '\n' && c != '\t' && c != '\r') || reorders_display(c))
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

/// Whether `c` is a bidirectional embedding, override or isolate (U+202A-U+202E,
/// U+2066-U+2069): invisible, it reorders how the text around it is shown, so a name or a
/// reason could read differently on a dashboard from what is stored ("Trojan Source").
/// Right-to-left names need none of them (nor are the plain marks U+200E/U+200F refused).
pub(crate) const fn reorders_display(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
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
    fn bidirectional_overrides_are_refused_and_right_to_left_text_is_not() {
        for sneaky in ["abc\u{202E}fed", "\u{2066}x\u{2069}", "a\u{202A}b"] {
            assert_eq!(
                Text::parse("reason", sneaky),
                Err(ValueError::ControlCharacters { field: "reason" }),
                "{sneaky:?}"
            );
        }
        assert!(Text::parse("reason", "שלום עולם").is_ok());
        assert!(Text::parse("reason", "مرحبا\u{200F} 2026").is_ok());
    }

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
