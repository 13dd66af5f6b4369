//! How a member is or was known, and whether a text that outlives their data key
//! (an erasure's reason) says who they were.
//!
//! The comparison is made on a folded form of both texts: compatibility-normalised (NFKC),
//! lower-cased, accents removed, so "JOSE NUNEZ" names "José Núñez". Words are split on
//! whitespace and punctuation but not on apostrophes ("O'Brien" is one word, and "don't" does
//! not contain "don"). Scripts written without spaces between words (Han, kana, Hangul, Thai)
//! are matched inside the text instead.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The member's name, email address and phone number as their referral, or a later change of
/// their details, gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
}

/// What in a text identified the member (said in the refusal; the text itself is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    Name,
    Email,
    Phone,
}

impl Naming {
    /// In words, for the refusal.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Name => "a word of their name",
            Self::Email => "their email address",
            Self::Phone => "their phone number",
        }
    }
}

/// The shortest word of a name matched on its own in scripts with spaces: shorter ones ("Al",
/// "Jo", an initial) are too often parts of ordinary words and abbreviations.
const MIN_NAME_WORD: usize = 3;

/// The shortest name word matched in scripts without spaces, where a name is often two signs.
const MIN_SPACELESS_WORD: usize = 2;

/// Words of a name that are particles, not the person ("Ludwig van Beethoven").
const PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "del", "della", "dos", "das", "bin", "ibn", "bint", "ben",
];

/// The trailing digits of a phone number matched: the local number, however the country and
/// area codes are written.
const PHONE_DIGITS: usize = 7;

impl Identity {
    /// What in `text` names the member, if anything: a word of their name, their email address,
    /// or the last digits of their phone number within one number of the text.
    pub(crate) fn named_in(&self, text: &str) -> Option<Naming> {
        let folded = fold(text);
        let words: Vec<&str> = words(&folded).collect();
        let name = fold(&self.name);
        let by_name = words_of_name(&name).any(|word| {
            if word.chars().any(spaceless_script) {
                folded.contains(word)
            } else {
                words.contains(&word)
            }
        });
        if by_name {
            return Some(Naming::Name);
        }
        let email = self.email.as_deref().map(fold).unwrap_or_default();
        if !email.is_empty() && folded.contains(&email) {
            return Some(Naming::Email);
        }
        let phone: String = self
            .phone
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if phone.len() >= PHONE_DIGITS {
            let local = &phone[phone.len() - PHONE_DIGITS..];
            if numbers(text).any(|digits| digits.contains(local)) {
                return Some(Naming::Phone);
            }
        }
        None
    }
}

/// NFKC, lower case (ß as ss), no accents, one apostrophe (O’Brien, typed on a phone, is
/// O'Brien).
fn fold(text: &str) -> String {
    let lower = text
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .replace('ß', "ss")
        .replace(['\u{2018}', '\u{2019}', '\u{2bc}'], "'");
    lower
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .nfc()
        .collect()
}

/// The words of a folded text: split on anything but letters, digits and apostrophes.
fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}'))
        .filter(|word| !word.is_empty())
}

/// The words of a folded name that are matched: long enough, and not particles.
fn words_of_name(name: &str) -> impl Iterator<Item = &str> {
    words(name).filter(|word| {
        let min = if word.chars().any(spaceless_script) {
            MIN_SPACELESS_WORD
        } else {
            MIN_NAME_WORD
        };
        word.chars().count() >= min && !PARTICLES.contains(word)
    })
}

/// Each number written in `text` (digits with the separators phone numbers use between them),
/// as its ASCII digits.
fn numbers(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_digit() || " -.()+/".contains(c)))
        .map(|number| {
            number
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .filter(|digits| !digits.is_empty())
}

/// Whether `c` belongs to a script written without spaces between words.
fn spaceless_script(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'     // hiragana, katakana
        | '\u{3400}'..='\u{4DBF}'   // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
        | '\u{AC00}'..='\u{D7AF}'   // Hangul syllables
        | '\u{1100}'..='\u{11FF}'   // Hangul jamo
        | '\u{0E00}'..='\u{0E7F}'   // Thai
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: &str, email: Option<&str>, phone: Option<&str>) -> Identity {
        Identity {
            name: name.into(),
            email: email.map(Into::into),
            phone: phone.map(Into::into),
        }
    }

    #[test]
    fn a_name_is_found_whatever_its_case_and_accents() {
        let jose = identity("José Núñez", None, None);
        assert_eq!(jose.named_in("asked by JOSE NUNEZ"), Some(Naming::Name));
        assert_eq!(
            jose.named_in("asked by nu\u{303}n\u{303}ez"),
            Some(Naming::Name)
        );
        let strauss = identity("Anna Strauß", None, None);
        assert_eq!(strauss.named_in("ＳＴＲＡＵß family"), Some(Naming::Name));
        assert_eq!(strauss.named_in("the STRAUSS family"), Some(Naming::Name));
        let obrien = identity("Liam O'Brien", None, None);
        assert_eq!(obrien.named_in("per o'brien"), Some(Naming::Name));
        // The apostrophe a phone or a word processor types is the same one.
        assert_eq!(
            obrien.named_in("requested by O\u{2019}Brien family"),
            Some(Naming::Name)
        );
        let curly = identity("Liam O\u{2019}Brien", None, None);
        assert_eq!(curly.named_in("per O'Brien"), Some(Naming::Name));
    }

    #[test]
    fn names_in_scripts_without_spaces_are_found_inside_the_text() {
        assert_eq!(
            identity("王小明", None, None).named_in("王小明要求删除"),
            Some(Naming::Name)
        );
        assert_eq!(
            identity("佐藤 花子", None, None).named_in("佐藤さんの依頼"),
            Some(Naming::Name)
        );
        assert_eq!(
            identity("김민준", None, None).named_in("김민준이 요청"),
            Some(Naming::Name)
        );
    }

    #[test]
    fn parts_of_words_particles_and_short_words_are_not_names() {
        let don = identity("Don van Ek", None, None);
        assert_eq!(don.named_in("don't keep the records"), None);
        assert_eq!(don.named_in("transferred to van services"), None);
        assert_eq!(don.named_in("ek"), None, "two letters");
        assert_eq!(
            identity("Ann Lee", None, None).named_in("annual review"),
            None
        );
    }

    #[test]
    fn an_email_is_found_in_any_case() {
        let zq = identity("Zoe Quinn", Some("zq1987@example.org"), None);
        assert_eq!(zq.named_in("from ZQ1987@Example.org"), Some(Naming::Email));
        assert_eq!(
            identity("Zoe Quinn", Some(""), None).named_in("member request"),
            None
        );
    }

    #[test]
    fn a_phone_is_found_in_one_number_however_written() {
        let caller = identity("Zoe Quinn", None, Some("+1 (555) 010-4477"));
        assert_eq!(
            caller.named_in("called from 555-010-4477"),
            Some(Naming::Phone)
        );
        assert_eq!(caller.named_in("called 5550104477"), Some(Naming::Phone));
        // Two numbers whose digits only together end like the phone's.
        assert_eq!(caller.named_in("ticket 55501, dated 04477"), None);
    }
}
