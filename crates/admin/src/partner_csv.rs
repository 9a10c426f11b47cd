//! The partner-code CSV: one code per line, an optional `code` header, `\n` or `\r\n` endings.
//! A code is 4–64 characters of `A-Z a-z 0-9 _ -` (a quoted field is unquoted first). Every line
//! that cannot be stored is counted with its reason, and the first [`REPORT_MAX`] are listed with
//! their numbers: the report's size does not grow with the file (a 64 MiB file of empty lines
//! is 67 million rejections). A malformed code is shown escaped (`AB\u{0}CD`), so a NUL or another
//! control character never reaches the stored report.

use std::collections::HashMap;

use serde::Serialize;

/// Most rejected lines listed in a report (the count is always exact).
pub const REPORT_MAX: usize = 10_000;

/// A line that holds a code (borrowed from the file: no copy per line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeLine<'a> {
    /// 1-based line number in the file.
    pub line: usize,
    /// The code.
    pub code: &'a str,
}

/// Rejected lines: the exact count, and the first [`REPORT_MAX`] by line number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejections {
    /// How many lines were rejected.
    pub count: usize,
    /// The first of them, by line.
    pub listed: Vec<Rejection>,
}

impl Rejections {
    /// Counts a rejected line and lists it while there is room. Lines must come in order.
    pub fn push(&mut self, line: usize, reason: Reason, code: Option<&str>, message: impl Into<String>) {
        self.count += 1;
        if self.listed.len() < REPORT_MAX {
            self.listed.push(Rejection {
                line,
                code: code.map(printable),
                reason,
                message: message.into(),
            });
        }
    }

    /// Both sets of rejections, listed in line order (first [`REPORT_MAX`]).
    pub fn merge(mut self, other: Rejections) -> Rejections {
        self.count += other.count;
        self.listed.extend(other.listed);
        self.listed.sort_by_key(|r| r.line);
        self.listed.truncate(REPORT_MAX);
        self
    }
}

/// The text with control characters escaped (`\u{0}`), as a report can show and store it.
fn printable(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for c in code.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Why a line was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// Not a code.
    Malformed,
    /// The same code appears on an earlier line.
    DuplicateInFile,
    /// The code exists already (in any batch).
    AlreadyExists,
    /// The batch is full (`issueCount` codes).
    OverCapacity,
}

/// A rejected line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejection {
    /// 1-based line number.
    pub line: usize,
    /// The code, when the line had one.
    pub code: Option<String>,
    /// Why.
    pub reason: Reason,
    /// Detail for a person.
    pub message: String,
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(n, l)| !(*n == 1 && l.trim().trim_matches('"').eq_ignore_ascii_case("code")))
}

/// Lines that count as work (every line but a header); 0 for an empty file. A file of blank
/// lines is work too: each is reported.
pub fn count_lines(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    lines(text).count()
}

fn well_formed(code: &str) -> bool {
    (4..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits the file into codes to try and lines rejected as malformed or repeated.
pub fn parse(text: &str) -> (Vec<CodeLine<'_>>, Rejections) {
    let mut codes = Vec::new();
    let mut rejected = Rejections::default();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (line, raw) in lines(text) {
        let mut fields = raw.split(',').map(|f| f.trim().trim_matches('"'));
        let code = fields.next().unwrap_or_default();
        let extra = fields.count();
        if extra > 0 {
            rejected.push(
                line,
                Reason::Malformed,
                None,
                format!("expected one column, found {}", extra + 1),
            );
            continue;
        }
        if code.is_empty() {
            rejected.push(line, Reason::Malformed, None, "empty line");
            continue;
        }
        if !well_formed(code) {
            let message = if code.chars().any(char::is_control) {
                "a control character (shown escaped) is not part of a code"
            } else {
                "a code is 4-64 characters of A-Z, a-z, 0-9, '-' and '_'"
            };
            rejected.push(line, Reason::Malformed, Some(code), message);
            continue;
        }
        if let Some(first) = first_line.get(code) {
            rejected.push(
                line,
                Reason::DuplicateInFile,
                Some(code),
                format!("same code as line {first}"),
            );
            continue;
        }
        first_line.insert(code, line);
        codes.push(CodeLine { line, code });
    }
    (codes, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_crlf_quotes_and_reports_bad_lines() {
        let text = "code\r\nABCD-1\r\n\"EFGH_2\"\r\n\r\nx\r\nA,B\r\nABCD-1\r\n";
        let (codes, rejected) = parse(text);
        assert_eq!(
            codes,
            vec![
                CodeLine {
                    line: 2,
                    code: "ABCD-1"
                },
                CodeLine {
                    line: 3,
                    code: "EFGH_2"
                },
            ]
        );
        let summary: Vec<(usize, Reason)> = rejected.listed.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(
            summary,
            vec![
                (4, Reason::Malformed),
                (5, Reason::Malformed),
                (6, Reason::Malformed),
                (7, Reason::DuplicateInFile),
            ]
        );
        assert_eq!(rejected.listed[3].message, "same code as line 2");
        assert_eq!(count_lines(text), 6);
    }

    #[test]
    fn no_header_and_no_trailing_newline() {
        let (codes, rejected) = parse("AAAA\nBBBB");
        assert_eq!(codes.len(), 2);
        assert_eq!(rejected.count, 0);
        assert_eq!(count_lines("AAAA\nBBBB"), 2);
        assert_eq!(count_lines("\n"), 1);
        assert_eq!(count_lines(""), 0);
    }

    #[test]
    fn control_characters_are_malformed_and_shown_escaped() {
        let (codes, rejected) = parse("AB\u{0}CD\nEF\u{7}GH\nGOOD1\n");
        assert_eq!(codes.len(), 1);
        assert_eq!(rejected.count, 2);
        let shown: Vec<&str> = rejected.listed.iter().filter_map(|r| r.code.as_deref()).collect();
        assert_eq!(shown, vec!["AB\\u{0}CD", "EF\\u{7}GH"]);
        assert!(rejected.listed.iter().all(|r| r.reason == Reason::Malformed));
    }

    #[test]
    fn the_report_is_bounded_and_the_count_exact() {
        let text = "\n".repeat(3 * REPORT_MAX);
        let (codes, rejected) = parse(&text);
        assert!(codes.is_empty());
        assert_eq!(rejected.count, 3 * REPORT_MAX);
        assert_eq!(rejected.listed.len(), REPORT_MAX);
        let dupes = "SAME1\n".repeat(2 * REPORT_MAX);
        let (codes, rejected) = parse(&dupes);
        assert_eq!((codes.len(), rejected.count), (1, 2 * REPORT_MAX - 1));
    }
}
