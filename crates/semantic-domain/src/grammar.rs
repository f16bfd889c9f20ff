//! A sampling constraint in llama.cpp's GBNF notation, held as text.
//!
//! The domain only carries and composes grammars; compiling them (and
//! turning JSON schemas into them) is the engine's job, so this crate stays
//! free of llama.cpp.

use serde::{Deserialize, Serialize};

/// The rule generation starts from when none is named.
pub const DEFAULT_ROOT: &str = "root";

/// A GBNF grammar and the rule generation must match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grammar {
    pub gbnf: String,
    pub root: String,
}

impl Grammar {
    /// A grammar that starts from its `root` rule.
    pub fn new(gbnf: impl Into<String>) -> Self {
        Self {
            gbnf: gbnf.into(),
            root: DEFAULT_ROOT.to_owned(),
        }
    }
}

/// Prefix every rule name of `gbnf` (definitions and references) with
/// `prefix`, so grammars generated separately can live in one file.
///
/// GBNF names are runs of `[A-Za-z0-9_-]` outside string literals (`"…"`),
/// character classes (`[…]`), repetition counts (`{m,n}`), token
/// references (`<…>`) and comments (`# …`); everything else is copied.
pub fn prefix_rules(gbnf: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(gbnf.len() + gbnf.len() / 8);
    let mut chars = gbnf.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => copy_delimited(&mut out, c, '"', &mut chars),
            '[' => copy_delimited(&mut out, c, ']', &mut chars),
            '<' => copy_delimited(&mut out, c, '>', &mut chars),
            '{' => copy_delimited(&mut out, c, '}', &mut chars),
            '#' => {
                out.push(c);
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    out.push(n);
                    chars.next();
                }
            }
            c if is_name_char(c) => {
                out.push_str(prefix);
                out.push(c);
                while let Some(&n) = chars.peek().filter(|n| is_name_char(**n)) {
                    out.push(n);
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Copy `open`, then everything up to and including the unescaped `close`.
fn copy_delimited(
    out: &mut String,
    open: char,
    close: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) {
    out.push(open);
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        } else if c == close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_names_but_not_literals_classes_or_counts() {
        let gbnf = concat!(
            "root ::= \"{\" space name-kv \"}\" space # a comment with root\n",
            "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4})\n",
            "integral-part ::= [0] | [1-9] [0-9]{0,15}\n",
            "space ::= | \" \" | \"\\n\"{1,2} [ \\t]{0,20}\n",
            "name-kv ::= \"\\\"name\\\"\" space \":\" space <think> .\n",
        );
        let expected = concat!(
            "t0-root ::= \"{\" t0-space t0-name-kv \"}\" t0-space # a comment with root\n",
            "t0-char ::= [^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4})\n",
            "t0-integral-part ::= [0] | [1-9] [0-9]{0,15}\n",
            "t0-space ::= | \" \" | \"\\n\"{1,2} [ \\t]{0,20}\n",
            "t0-name-kv ::= \"\\\"name\\\"\" t0-space \":\" t0-space <think> .\n",
        );
        assert_eq!(prefix_rules(gbnf, "t0-"), expected);
    }

    #[test]
    fn default_root_is_root() {
        let g = Grammar::new("root ::= \"a\"");
        assert_eq!(g.root, "root");
    }
}
