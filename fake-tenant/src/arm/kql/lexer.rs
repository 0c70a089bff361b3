//! Tokens of the KQL subset, with the line and column Log Analytics reports in its syntax errors
//! (`Query could not be parsed at 'x' on line [1,11]`: lines count from 1, columns from 0).
//!
//! Literal forms follow the Kusto reference pages "The string data type" (single or double
//! quotes with backslash escapes, `@'…'` verbatim strings with doubled quotes, `h'…'`
//! obfuscated strings), "The timespan data type" (`5m`, `1h`, `30s`, `100ms`, `2d`, `1.5h`) and
//! "The datetime data type" (`datetime(2024-01-01T00:00:00Z)`). Comments are `//` to the end of
//! the line. Every function here returns an error instead of panicking: no input can crash
//! the lexer.

use super::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Long(i64),
    Real(f64),
    /// Nanoseconds.
    TimeSpan(i64),
    /// The raw text between `datetime(` and `)`.
    DateTime(String),
    /// `!in`, `!has`, `!contains`, `!startswith`, … (the word without `!`).
    NotWord(String),
    /// `in~` / `!in~`.
    InCi,
    NotInCi,
    Pipe,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Dot,
    Colon,
    Assign,
    EqEq,
    NotEq,
    EqTilde,
    NotTilde,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn text(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Long(n) => n.to_string(),
            Tok::Real(r) => r.to_string(),
            Tok::TimeSpan(_) => "timespan".into(),
            Tok::DateTime(s) => format!("datetime({s})"),
            Tok::NotWord(w) => format!("!{w}"),
            Tok::InCi => "in~".into(),
            Tok::NotInCi => "!in~".into(),
            other => punct_text(other).to_owned(),
        }
    }
}

fn punct_text(tok: &Tok) -> &'static str {
    match tok {
        Tok::Pipe => "|",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::Comma => ",",
        Tok::Semi => ";",
        Tok::Dot => ".",
        Tok::Colon => ":",
        Tok::Assign => "=",
        Tok::EqEq => "==",
        Tok::NotEq => "!=",
        Tok::EqTilde => "=~",
        Tok::NotTilde => "!~",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        _ => "?",
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// 1-based line.
    pub line: usize,
    /// 0-based column (characters).
    pub col: usize,
}

/// Longest accepted query, in characters; alert queries are small (the service caps the whole
/// rule at 64 KB).
pub const MAX_QUERY_CHARS: usize = 65_536;

struct Cursor {
    chars: Vec<char>,
    at: usize,
    line: usize,
    col: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 0;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn error(&self, line: usize, col: usize, token: &str) -> QueryError {
        QueryError::syntax(line, col, token)
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Timespan units (the Kusto "timespan" reference), in nanoseconds.
fn unit_nanos(unit: &str) -> Option<i64> {
    Some(match unit {
        "d" | "day" | "days" => 86_400_000_000_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
        "m" | "min" | "minute" | "minutes" => 60_000_000_000,
        "s" | "sec" | "second" | "seconds" => 1_000_000_000,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "microsecond" | "microseconds" => 1_000,
        "tick" | "ticks" => 100,
        _ => return None,
    })
}

pub fn tokenize(query: &str) -> Result<Vec<Token>, QueryError> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::semantic(
            "QueryTooLong",
            format!("The query is longer than {MAX_QUERY_CHARS} characters."),
        ));
    }
    let mut c = Cursor {
        chars: query.chars().collect(),
        at: 0,
        line: 1,
        col: 0,
    };
    let mut out = Vec::new();
    while let Some(ch) = c.peek() {
        let (line, col) = (c.line, c.col);
        if ch.is_whitespace() {
            c.bump();
            continue;
        }
        if ch == '/' && c.peek_at(1) == Some('/') {
            while let Some(x) = c.peek() {
                if x == '\n' {
                    break;
                }
                c.bump();
            }
            continue;
        }
        let push = |out: &mut Vec<Token>, tok: Tok| out.push(Token { tok, line, col });
        // Strings: '…', "…", @'…', @"…", h'…', H"…".
        let verbatim = ch == '@' && matches!(c.peek_at(1), Some('\'' | '"'));
        let obfuscated = (ch == 'h' || ch == 'H') && matches!(c.peek_at(1), Some('\'' | '"'));
        if ch == '\'' || ch == '"' || verbatim || obfuscated {
            if verbatim || obfuscated {
                c.bump();
            }
            let text = read_string(&mut c, verbatim, line, col)?;
            push(&mut out, Tok::Str(text));
            continue;
        }
        if ch.is_ascii_digit() {
            let tok = read_number(&mut c, line, col)?;
            push(&mut out, tok);
            continue;
        }
        if is_ident_start(ch) {
            let mut word = String::new();
            while let Some(x) = c.peek() {
                if !(is_ident_char(x) || word.is_empty() && x == '$') {
                    break;
                }
                word.push(x);
                c.bump();
            }
            if word == "in" && c.peek() == Some('~') {
                c.bump();
                push(&mut out, Tok::InCi);
                continue;
            }
            if word == "datetime" {
                // `datetime(...)` carries its literal raw; a bare `datetime` is a name.
                let mut look = 0;
                while c.peek_at(look).is_some_and(|x| x == ' ' || x == '\t') {
                    look += 1;
                }
                if c.peek_at(look) == Some('(') {
                    for _ in 0..=look {
                        c.bump();
                    }
                    let mut raw = String::new();
                    loop {
                        match c.bump() {
                            Some(')') => break,
                            Some('\n') | None => return Err(c.error(line, col, "datetime")),
                            Some(x) => raw.push(x),
                        }
                    }
                    push(&mut out, Tok::DateTime(raw.trim().to_owned()));
                    continue;
                }
            }
            push(&mut out, Tok::Ident(word));
            continue;
        }
        if ch == '!' {
            if c.peek_at(1).is_some_and(is_ident_start) {
                c.bump();
                let mut word = String::new();
                while let Some(x) = c.peek() {
                    if !is_ident_char(x) {
                        break;
                    }
                    word.push(x);
                    c.bump();
                }
                if word == "in" && c.peek() == Some('~') {
                    c.bump();
                    push(&mut out, Tok::NotInCi);
                } else {
                    push(&mut out, Tok::NotWord(word));
                }
                continue;
            }
            c.bump();
            let tok = match c.peek() {
                Some('=') => {
                    c.bump();
                    Tok::NotEq
                }
                Some('~') => {
                    c.bump();
                    Tok::NotTilde
                }
                _ => return Err(c.error(line, col, "!")),
            };
            push(&mut out, tok);
            continue;
        }
        c.bump();
        let tok = match ch {
            '|' => Tok::Pipe,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            ';' => Tok::Semi,
            '.' => Tok::Dot,
            ':' => Tok::Colon,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '=' => match c.peek() {
                Some('=') => {
                    c.bump();
                    Tok::EqEq
                }
                Some('~') => {
                    c.bump();
                    Tok::EqTilde
                }
                _ => Tok::Assign,
            },
            '<' => match c.peek() {
                Some('=') => {
                    c.bump();
                    Tok::Le
                }
                Some('>') => {
                    c.bump();
                    Tok::NotEq
                }
                _ => Tok::Lt,
            },
            '>' => match c.peek() {
                Some('=') => {
                    c.bump();
                    Tok::Ge
                }
                _ => Tok::Gt,
            },
            other => return Err(c.error(line, col, &other.to_string())),
        };
        push(&mut out, tok);
    }
    Ok(out)
}

fn read_string(
    c: &mut Cursor,
    verbatim: bool,
    line: usize,
    col: usize,
) -> Result<String, QueryError> {
    let Some(quote) = c.bump() else {
        return Err(c.error(line, col, "'"));
    };
    let mut text = String::new();
    loop {
        let Some(x) = c.bump() else {
            return Err(c.error(line, col, &quote.to_string()));
        };
        if x == '\n' {
            // Plain string literals cannot span lines.
            return Err(c.error(line, col, &quote.to_string()));
        }
        if x == quote {
            if verbatim && c.peek() == Some(quote) {
                c.bump();
                text.push(quote);
                continue;
            }
            return Ok(text);
        }
        if x == '\\' && !verbatim {
            let Some(e) = c.bump() else {
                return Err(c.error(line, col, &quote.to_string()));
            };
            match e {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                'r' => text.push('\r'),
                '\\' => text.push('\\'),
                '\'' => text.push('\''),
                '"' => text.push('"'),
                _ => return Err(c.error(line, col, &format!("\\{e}"))),
            }
            continue;
        }
        text.push(x);
    }
}

fn read_number(c: &mut Cursor, line: usize, col: usize) -> Result<Tok, QueryError> {
    let mut digits = String::new();
    let mut real = false;
    while let Some(x) = c.peek() {
        if x.is_ascii_digit() {
            digits.push(x);
        } else if x == '.' && !real && c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            real = true;
            digits.push(x);
        } else {
            break;
        }
        c.bump();
    }
    // Exponent: 1e3, 2.5E-2.
    if matches!(c.peek(), Some('e' | 'E'))
        && (c.peek_at(1).is_some_and(|d| d.is_ascii_digit())
            || (matches!(c.peek_at(1), Some('+' | '-'))
                && c.peek_at(2).is_some_and(|d| d.is_ascii_digit())))
    {
        real = true;
        if let Some(e) = c.bump() {
            digits.push(e);
        }
        if let Some(sign @ ('+' | '-')) = c.peek() {
            digits.push(sign);
            c.bump();
        }
        while let Some(x) = c.peek().filter(char::is_ascii_digit) {
            digits.push(x);
            c.bump();
        }
    }
    // A unit right after the number makes it a timespan.
    let mut unit = String::new();
    while let Some(x) = c.peek().filter(|x| x.is_ascii_alphabetic()) {
        unit.push(x);
        c.bump();
    }
    let bad = |c: &Cursor| c.error(line, col, &format!("{digits}{unit}"));
    if unit.is_empty() {
        if real {
            return digits
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite())
                .map(Tok::Real)
                .ok_or_else(|| bad(c));
        }
        return digits.parse::<i64>().map(Tok::Long).map_err(|_| bad(c));
    }
    let Some(per_unit) = unit_nanos(&unit) else {
        return Err(bad(c));
    };
    let amount: f64 = digits.parse().map_err(|_| bad(c))?;
    let nanos = amount * per_unit as f64;
    if !nanos.is_finite() || nanos.abs() > i64::MAX as f64 {
        return Err(bad(c));
    }
    Ok(Tok::TimeSpan(nanos as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(q: &str) -> Vec<Tok> {
        tokenize(q).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_escape_and_verbatim() {
        assert_eq!(
            toks(r#"'a\'b' "c\"d" @'e''f' h'g'"#),
            vec![
                Tok::Str("a'b".into()),
                Tok::Str("c\"d".into()),
                Tok::Str("e'f".into()),
                Tok::Str("g".into())
            ]
        );
    }

    #[test]
    fn operators_and_timespans() {
        assert_eq!(
            toks("x in~ ('a') and y !in~ ('b') or z !has 'c' | where t > ago(5m)"),
            vec![
                Tok::Ident("x".into()),
                Tok::InCi,
                Tok::LParen,
                Tok::Str("a".into()),
                Tok::RParen,
                Tok::Ident("and".into()),
                Tok::Ident("y".into()),
                Tok::NotInCi,
                Tok::LParen,
                Tok::Str("b".into()),
                Tok::RParen,
                Tok::Ident("or".into()),
                Tok::Ident("z".into()),
                Tok::NotWord("has".into()),
                Tok::Str("c".into()),
                Tok::Pipe,
                Tok::Ident("where".into()),
                Tok::Ident("t".into()),
                Tok::Gt,
                Tok::Ident("ago".into()),
                Tok::LParen,
                Tok::TimeSpan(300_000_000_000),
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn positions_are_line_and_column() {
        let t = tokenize("A\n| where x").unwrap();
        assert_eq!((t[2].line, t[2].col), (2, 2));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for q in [
            "'open",
            "5parsecs",
            "a ? b",
            "datetime(2024",
            "\"\\q\"",
            "!",
        ] {
            assert!(tokenize(q).is_err(), "{q}");
        }
    }
}
