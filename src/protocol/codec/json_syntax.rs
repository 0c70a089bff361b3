//! JSON text to a tree that borrows from the input. serde_json is not used for reading values:
//! without its `float_roundtrip` feature its float parsing may land one unit in the last place
//! off, and a float in state that shifts on every read is a perpetual diff. Number literals are
//! kept as text here (cty also keeps the literal when a number is read into a string) and
//! parsed with Rust's correctly rounded parser later.

use std::borrow::Cow;

use super::{CodecError, Problem, MAX_DEPTH};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node<'a> {
    Null,
    Bool(bool),
    /// Literal text, already checked against the JSON number grammar.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Fields in document order; duplicates are left for the decoder to judge.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A dynamic value costs two JSON levels per value level (`{"value": …}`), so the syntax limit
/// is twice the value limit, with a little room for the type descriptors.
const MAX_NESTING: usize = 2 * MAX_DEPTH + 8;

pub(super) fn parse(bytes: &[u8]) -> Result<Node<'_>, CodecError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CodecError::new(Problem::InvalidUtf8))?;
    let mut parser = Parser { text, pos: 0 };
    let node = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != text.len() {
        return Err(parser.syntax_error());
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// 1-based line and byte column of the current position; the input itself stays out of
    /// the error.
    fn syntax_error(&self) -> CodecError {
        let before = &self.text.as_bytes()[..self.pos];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        CodecError::new(Problem::JsonSyntax {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: self.pos - line_start + 1,
        })
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), CodecError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, CodecError> {
        if depth > MAX_NESTING {
            return Err(Problem::TooDeep.into());
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'n') => self.literal("null", Node::Null),
            Some(b't') => self.literal("true", Node::Bool(true)),
            Some(b'f') => self.literal("false", Node::Bool(false)),
            Some(b'"') => self.string().map(Node::String),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax_error()),
        }
    }

    fn literal(&mut self, word: &str, node: Node<'a>) -> Result<Node<'a>, CodecError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(node)
        } else {
            Err(self.syntax_error())
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node<'a>, CodecError> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node::Array(items));
                }
                _ => return Err(self.syntax_error()),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node<'a>, CodecError> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Object(fields));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.syntax_error());
            }
            let key = self.string()?;
            self.skip_whitespace();
            self.expect(b':')?;
            let value = self.value(depth + 1)?;
            fields.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Object(fields));
                }
                _ => return Err(self.syntax_error()),
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<Node<'a>, CodecError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax_error()),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(Node::Number(&self.text[start..self.pos]))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), CodecError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(self.syntax_error());
        }
        Ok(())
    }

    /// A string literal; borrowed unless it contains escapes. Positions only ever stop at
    /// ASCII bytes, so every slice falls on a character boundary.
    fn string(&mut self) -> Result<Cow<'a, str>, CodecError> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(0x00..=0x1f) | None => return Err(self.syntax_error()),
                Some(_) => self.pos += 1,
            }
        }
        let mut owned = String::from(&self.text[start..self.pos]);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek().ok_or_else(|| self.syntax_error())?;
                    self.pos += 1;
                    owned.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => {
                            self.pos -= 1;
                            return Err(self.syntax_error());
                        }
                    });
                }
                Some(0x00..=0x1f) | None => return Err(self.syntax_error()),
                Some(_) => {
                    let run = self.pos;
                    while !matches!(self.peek(), Some(b'"' | b'\\' | 0x00..=0x1f) | None) {
                        self.pos += 1;
                    }
                    owned.push_str(&self.text[run..self.pos]);
                }
            }
        }
    }

    /// The code point of `\uXXXX` (the `\u` already read), joining a UTF-16 surrogate pair.
    /// A lone surrogate becomes U+FFFD, as Go's decoder (and so Terraform) does.
    fn unicode_escape(&mut self) -> Result<char, CodecError> {
        let unit = self.hex4()?;
        if !(0xd800..0xdc00).contains(&unit) {
            return Ok(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        if self.text[self.pos..].starts_with("\\u") {
            let resume = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xdc00..0xe000).contains(&low) {
                let combined = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                return Ok(char::from_u32(combined).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            // Not a low surrogate: it is an escape of its own, read on the next turn.
            self.pos = resume;
        }
        Ok(char::REPLACEMENT_CHARACTER)
    }

    fn hex4(&mut self) -> Result<u32, CodecError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.syntax_error())?;
        // Checked first because from_str_radix would also take a leading '+'.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.syntax_error());
        }
        let unit = u32::from_str_radix(digits, 16).map_err(|_| self.syntax_error())?;
        self.pos += 4;
        Ok(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Node<'_> {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn syntax_error_at(text: &str) -> (usize, usize) {
        match parse(text.as_bytes()).unwrap_err().problem {
            Problem::JsonSyntax { line, column } => (line, column),
            other => panic!("{text:?}: expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn reads_every_kind_of_node() {
        assert_eq!(
            parsed(r#" {"a": [null, true, false, -1.5e3, "x"], "b": {}} "#),
            Node::Object(vec![
                (
                    "a".into(),
                    Node::Array(vec![
                        Node::Null,
                        Node::Bool(true),
                        Node::Bool(false),
                        Node::Number("-1.5e3"),
                        Node::String("x".into()),
                    ])
                ),
                ("b".into(), Node::Object(vec![])),
            ])
        );
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        assert!(matches!(
            parsed(r#""plain é""#),
            Node::String(Cow::Borrowed("plain é"))
        ));
        assert_eq!(
            parsed(r#""q\"b\\s\/\b\f\n\r\t\u00e9""#),
            Node::String("q\"b\\s/\u{8}\u{c}\n\r\té".into())
        );
        assert_eq!(parsed(r#""\ud83d\ude00!""#), Node::String("😀!".into()));
        // Lone surrogates become U+FFFD; the escape after an unpaired high one still counts.
        assert_eq!(parsed(r#""\ud83dx""#), Node::String("\u{fffd}x".into()));
        assert_eq!(
            parsed(r#""\ud83d\u0041""#),
            Node::String("\u{fffd}A".into())
        );
        assert_eq!(parsed(r#""\ude00""#), Node::String("\u{fffd}".into()));
    }

    #[test]
    fn numbers_keep_their_literal_text() {
        for literal in [
            "0",
            "-0",
            "12",
            "1.50",
            "1e400",
            "-2.5E-3",
            "123456789012345678901",
        ] {
            assert_eq!(parsed(literal), Node::Number(literal));
        }
    }

    #[test]
    fn malformed_text_reports_line_and_column() {
        assert_eq!(syntax_error_at(""), (1, 1));
        assert_eq!(syntax_error_at("{\"a\": [1,\n  2,]}"), (2, 5));
        assert_eq!(syntax_error_at("01"), (1, 2));
        assert_eq!(syntax_error_at("1."), (1, 3));
        assert_eq!(syntax_error_at("-"), (1, 2));
        assert_eq!(syntax_error_at("+1"), (1, 1));
        assert_eq!(syntax_error_at("nul"), (1, 1));
        assert_eq!(syntax_error_at(r#""abc"#), (1, 5));
        assert_eq!(syntax_error_at("\"a\nb\""), (1, 3));
        assert_eq!(syntax_error_at(r#""\x""#), (1, 3));
        assert_eq!(syntax_error_at(r#""\u12g4""#), (1, 4));
        assert_eq!(syntax_error_at(r#""\u+123""#), (1, 4));
        assert_eq!(syntax_error_at("{1: 2}"), (1, 2));
        assert_eq!(syntax_error_at("[1 2]"), (1, 4));
        assert_eq!(syntax_error_at("{} {}"), (1, 4));
        assert_eq!(
            parse(b"\"\xff\"").unwrap_err().problem,
            Problem::InvalidUtf8
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().problem,
            Problem::TooDeep
        );
        let fine = format!("{}{}", "[".repeat(50), "]".repeat(50));
        assert!(parse(fine.as_bytes()).is_ok());
    }
}
