//! The partner-code CSV: one code per line, an optional `code` header, `\n` or `\r\n` endings.
//! A code is 4–64 characters of `A-Z a-z 0-9 _ -` (a quoted field is unquoted first). Every line
//! that cannot be stored is reported with its number and why.

use std::collections::HashMap;

use serde::Serialize;

/// A line that holds a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// The code.
    pub code: String,
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

/// Lines that count as work (every line but a header); 0 for an empty file.
pub fn count_lines(text: &str) -> usize {
    if text.trim().is_empty() {
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
pub fn parse(text: &str) -> (Vec<CodeLine>, Vec<Rejection>) {
    let mut codes = Vec::new();
    let mut rejected = Vec::new();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (line, raw) in lines(text) {
        let fields: Vec<&str> = raw.split(',').map(|f| f.trim().trim_matches('"')).collect();
        let reject = |reason, code: Option<&str>, message: String| Rejection {
            line,
            code: code.map(str::to_owned),
            reason,
            message,
        };
        if fields.iter().all(|f| f.is_empty()) {
            rejected.push(reject(Reason::Malformed, None, "empty line".into()));
            continue;
        }
        if fields.len() > 1 {
            rejected.push(reject(
                Reason::Malformed,
                None,
                format!("expected one column, found {}", fields.len()),
            ));
            continue;
        }
        let code = fields[0];
        if !well_formed(code) {
            rejected.push(reject(
                Reason::Malformed,
                Some(code),
                "a code is 4-64 characters of A-Z, a-z, 0-9, '-' and '_'".into(),
            ));
            continue;
        }
        if let Some(first) = first_line.get(code) {
            rejected.push(reject(
                Reason::DuplicateInFile,
                Some(code),
                format!("same code as line {first}"),
            ));
            continue;
        }
        first_line.insert(code, line);
        codes.push(CodeLine {
            line,
            code: code.to_owned(),
        });
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
                    code: "ABCD-1".into()
                },
                CodeLine {
                    line: 3,
                    code: "EFGH_2".into()
                },
            ]
        );
        let summary: Vec<(usize, Reason)> = rejected.iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(
            summary,
            vec![
                (4, Reason::Malformed),
                (5, Reason::Malformed),
                (6, Reason::Malformed),
                (7, Reason::DuplicateInFile),
            ]
        );
        assert_eq!(rejected[3].message, "same code as line 2");
        assert_eq!(count_lines(text), 6);
    }

    #[test]
    fn no_header_and_no_trailing_newline() {
        let (codes, rejected) = parse("AAAA\nBBBB");
        assert_eq!(codes.len(), 2);
        assert!(rejected.is_empty());
        assert_eq!(count_lines("AAAA\nBBBB"), 2);
        assert_eq!(count_lines("\n"), 0);
    }
}
