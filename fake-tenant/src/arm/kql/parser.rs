//! Parser for the KQL subset (grammar in `super`'s module docs). Recursive descent with a
//! nesting limit, so deeply nested or adversarial input ends in a syntax error, never in a stack
//! overflow or a panic.

use super::lexer::{tokenize, Tok, Token};
use super::value::Value;
use super::QueryError;

/// How deep parentheses, nested expressions and operator chains (`a + b + c` nests to the
/// left) may go. Parsing, binding and evaluation recurse as deep as this, so it is kept well
/// inside a 2 MiB thread stack even unoptimized (alert queries nest a handful of levels).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub lets: Vec<Let>,
    pub body: Tabular,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Let {
    pub name: String,
    pub value: LetValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LetValue {
    Scalar(Expr),
    Tabular(Tabular),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tabular {
    pub source: Source,
    pub ops: Vec<Op>,
}

/// Where a name appeared, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A table or a `let`-bound tabular name (`T`, `table('T')`).
    Name(String, Pos),
    Union {
        /// `isfuzzy=true`: legs naming missing tables are dropped (at least one must exist).
        fuzzy: bool,
        /// `kind=inner`: only the columns every leg has.
        inner: bool,
        /// `withsource=Col`: a column naming each row's table.
        with_source: Option<String>,
        legs: Vec<Tabular>,
    },
    Nested(Box<Tabular>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Where(Expr),
    Project(Vec<(String, Expr)>),
    Extend(Vec<(String, Expr)>),
    Summarize {
        aggregates: Vec<(String, Aggregate)>,
        by: Vec<(String, Expr)>,
    },
    Take(i64),
    Count,
    Distinct(Vec<(String, Expr)>),
    Sort(Vec<(Expr, bool)>),
    Top {
        n: i64,
        by: Expr,
        descending: bool,
    },
}

impl Op {
    /// The operator's name, as Kusto names it in semantic errors (`'where' operator: …`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Where(_) => "where",
            Op::Project(_) => "project",
            Op::Extend(_) => "extend",
            Op::Summarize { .. } => "summarize",
            Op::Take(_) => "take",
            Op::Count => "count",
            Op::Distinct(_) => "distinct",
            Op::Sort(_) => "sort",
            Op::Top { .. } => "top",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    Count,
    CountIf,
    DCount,
    Sum,
    Min,
    Max,
    Avg,
    MakeSet,
    MakeList,
    TakeAny,
}

impl AggregateFn {
    fn from_name(name: &str) -> Option<AggregateFn> {
        Some(match name {
            "count" => AggregateFn::Count,
            "countif" => AggregateFn::CountIf,
            "dcount" => AggregateFn::DCount,
            "sum" => AggregateFn::Sum,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            "avg" => AggregateFn::Avg,
            "make_set" => AggregateFn::MakeSet,
            "make_list" => AggregateFn::MakeList,
            "take_any" | "any" => AggregateFn::TakeAny,
            _ => return None,
        })
    }

    /// Kusto's default result column name (`count_`, `dcount_X`, `set_X`, …) — the
    /// "summarize operator" reference.
    fn default_name(self, argument: Option<&Expr>) -> String {
        let column = argument.and_then(Expr::column_name).unwrap_or_default();
        match self {
            AggregateFn::Count => "count_".into(),
            AggregateFn::CountIf => "countif_".into(),
            AggregateFn::DCount => format!("dcount_{column}"),
            AggregateFn::Sum => format!("sum_{column}"),
            AggregateFn::Min => format!("min_{column}"),
            AggregateFn::Max => format!("max_{column}"),
            AggregateFn::Avg => format!("avg_{column}"),
            AggregateFn::MakeSet => format!("set_{column}"),
            AggregateFn::MakeList => format!("list_{column}"),
            AggregateFn::TakeAny => format!("any_{column}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub function: AggregateFn,
    pub argument: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringOp {
    Has,
    HasCs,
    Contains,
    ContainsCs,
    StartsWith,
    StartsWithCs,
    EndsWith,
    EndsWithCs,
}

impl StringOp {
    fn from_word(word: &str) -> Option<StringOp> {
        Some(match word {
            "has" => StringOp::Has,
            "has_cs" => StringOp::HasCs,
            "contains" => StringOp::Contains,
            "contains_cs" => StringOp::ContainsCs,
            "startswith" => StringOp::StartsWith,
            "startswith_cs" => StringOp::StartsWithCs,
            "endswith" => StringOp::EndsWith,
            "endswith_cs" => StringOp::EndsWithCs,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// A column, or a `let`-bound scalar.
    Name(String, Pos),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>, Pos),
    Negate(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Str {
        op: StringOp,
        negated: bool,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    In {
        left: Box<Expr>,
        list: Vec<Expr>,
        case_insensitive: bool,
        negated: bool,
    },
    HasAny {
        left: Box<Expr>,
        list: Vec<Expr>,
    },
}

impl Expr {
    /// The column an expression names directly (`X`, `['X']`), for result column names.
    pub fn column_name(&self) -> Option<String> {
        match self {
            Expr::Name(name, _) => Some(name.clone()),
            _ => None,
        }
    }
}

pub fn parse(query: &str) -> Result<Query, QueryError> {
    let tokens = tokenize(query)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
        end: end_position(query),
    };
    p.query()
}

/// Where "end of input" is, for errors at the end.
fn end_position(query: &str) -> Pos {
    let line = query.matches('\n').count() + 1;
    let col = query
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0);
    Pos { line, col }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    end: Pos,
}

/// Words that begin a tabular operator after `|`.
const OPERATORS: &[&str] = &[
    "where",
    "filter",
    "project",
    "extend",
    "summarize",
    "take",
    "limit",
    "count",
    "distinct",
    "sort",
    "order",
    "top",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.at + offset).map(|t| &t.tok)
    }

    fn pos(&self) -> Pos {
        self.tokens
            .get(self.at)
            .map(|t| Pos {
                line: t.line,
                col: t.col,
            })
            .unwrap_or(self.end)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.at).map(|t| t.tok.clone());
        if t.is_some() {
            self.at += 1;
        }
        t
    }

    /// A syntax error at the current token (or at the end of input).
    fn error(&self) -> QueryError {
        match self.tokens.get(self.at) {
            Some(t) => QueryError::syntax(t.line, t.col, &t.tok.text()),
            None => QueryError::syntax(self.end.line, self.end.col, "<EOF>"),
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), QueryError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn ident(&mut self) -> Result<String, QueryError> {
        match self.peek() {
            Some(Tok::Ident(w)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            // `['Column name']` quoting.
            Some(Tok::LBracket) if matches!(self.peek_at(1), Some(Tok::Str(_))) => {
                self.at += 1;
                let Some(Tok::Str(name)) = self.next() else {
                    return Err(self.error());
                };
                self.expect(&Tok::RBracket)?;
                Ok(name)
            }
            _ => Err(self.error()),
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error());
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        let mut lets = Vec::new();
        let mut body = None;
        loop {
            while self.eat(&Tok::Semi) {}
            if self.peek().is_none() {
                break;
            }
            if body.is_some() {
                // One tabular expression per query; anything after it is unexpected.
                return Err(self.error());
            }
            if self.eat_word("let") {
                let name = self.ident()?;
                self.expect(&Tok::Assign)?;
                let value = if self.let_body_is_tabular() {
                    LetValue::Tabular(self.tabular()?)
                } else {
                    LetValue::Scalar(self.expr()?)
                };
                lets.push(Let { name, value });
                if !self.eat(&Tok::Semi) {
                    return Err(self.error());
                }
                continue;
            }
            body = Some(self.tabular()?);
        }
        match body {
            Some(body) => Ok(Query { lets, body }),
            None => Err(self.error()),
        }
    }

    /// `let x = SigninLogs | …` binds a table; `let x = 5m`, `let x = dynamic([…])`,
    /// `let x = ago(1h)` bind scalars.
    fn let_body_is_tabular(&self) -> bool {
        match self.peek() {
            Some(Tok::Ident(w)) if w == "union" => true,
            Some(Tok::Ident(w)) if w == "table" => matches!(self.peek_at(1), Some(Tok::LParen)),
            Some(Tok::Ident(w)) if ["true", "false", "dynamic", "null"].contains(&w.as_str()) => {
                false
            }
            Some(Tok::Ident(_)) => {
                matches!(self.peek_at(1), None | Some(Tok::Pipe) | Some(Tok::Semi))
            }
            Some(Tok::LParen) => true,
            _ => false,
        }
    }

    fn tabular(&mut self) -> Result<Tabular, QueryError> {
        self.enter()?;
        let source = self.source()?;
        let mut ops = Vec::new();
        while self.eat(&Tok::Pipe) {
            ops.push(self.operator()?);
        }
        self.leave();
        Ok(Tabular { source, ops })
    }

    fn source(&mut self) -> Result<Source, QueryError> {
        if self.eat(&Tok::LParen) {
            let inner = self.tabular()?;
            self.expect(&Tok::RParen)?;
            return Ok(Source::Nested(Box::new(inner)));
        }
        if self.is_word("union") {
            self.at += 1;
            return self.union();
        }
        self.table_reference()
    }

    fn table_reference(&mut self) -> Result<Source, QueryError> {
        let pos = self.pos();
        if self.is_word("table") && matches!(self.peek_at(1), Some(Tok::LParen)) {
            self.at += 2;
            let Some(Tok::Str(name)) = self.next() else {
                self.at = self.at.saturating_sub(1);
                return Err(self.error());
            };
            self.expect(&Tok::RParen)?;
            return Ok(Source::Name(name, pos));
        }
        match self.peek() {
            Some(Tok::Ident(w)) if !OPERATORS.contains(&w.as_str()) && w != "let" => {
                let name = w.clone();
                self.at += 1;
                Ok(Source::Name(name, pos))
            }
            _ => Err(self.error()),
        }
    }

    fn union(&mut self) -> Result<Source, QueryError> {
        let mut fuzzy = false;
        let mut inner = false;
        let mut with_source = None;
        // Parameters come first: `kind=inner|outer`, `isfuzzy=true|false`, `withsource=Col`.
        loop {
            let is_param = matches!(
                (self.peek(), self.peek_at(1)),
                (Some(Tok::Ident(w)), Some(Tok::Assign)) if ["kind", "isfuzzy", "withsource"].contains(&w.as_str())
            );
            if !is_param {
                break;
            }
            let param = self.ident()?;
            self.expect(&Tok::Assign)?;
            let value = self.ident()?;
            match (param.as_str(), value.as_str()) {
                ("kind", "inner") => inner = true,
                ("kind", "outer") => inner = false,
                ("isfuzzy", "true") => fuzzy = true,
                ("isfuzzy", "false") => fuzzy = false,
                ("withsource", column) => with_source = Some(column.to_owned()),
                _ => {
                    self.at = self.at.saturating_sub(1);
                    return Err(self.error());
                }
            }
        }
        let mut legs = Vec::new();
        loop {
            let source = if self.eat(&Tok::LParen) {
                let inner = self.tabular()?;
                self.expect(&Tok::RParen)?;
                Source::Nested(Box::new(inner))
            } else {
                self.table_reference()?
            };
            legs.push(Tabular {
                source,
                ops: Vec::new(),
            });
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        Ok(Source::Union {
            fuzzy,
            inner,
            with_source,
            legs,
        })
    }

    fn operator(&mut self) -> Result<Op, QueryError> {
        let Some(Tok::Ident(word)) = self.peek().cloned() else {
            return Err(self.error());
        };
        self.at += 1;
        match word.as_str() {
            "where" | "filter" => Ok(Op::Where(self.expr()?)),
            "project" => Ok(Op::Project(self.named_list()?)),
            "extend" => Ok(Op::Extend(self.named_list()?)),
            "summarize" => self.summarize(),
            "take" | "limit" => Ok(Op::Take(self.count_literal()?)),
            "count" => Ok(Op::Count),
            "distinct" => Ok(Op::Distinct(self.named_list()?)),
            "sort" | "order" => {
                if !self.eat_word("by") {
                    return Err(self.error());
                }
                let mut keys = Vec::new();
                loop {
                    let e = self.expr()?;
                    keys.push((e, self.direction()));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                Ok(Op::Sort(keys))
            }
            "top" => {
                let n = self.count_literal()?;
                if !self.eat_word("by") {
                    return Err(self.error());
                }
                let by = self.expr()?;
                let descending = self.direction();
                Ok(Op::Top { n, by, descending })
            }
            _ => {
                self.at -= 1;
                Err(self.error())
            }
        }
    }

    /// `asc` / `desc` (sort defaults to descending in Kusto).
    fn direction(&mut self) -> bool {
        if self.eat_word("asc") {
            false
        } else {
            self.eat_word("desc");
            true
        }
    }

    fn count_literal(&mut self) -> Result<i64, QueryError> {
        match self.peek() {
            Some(Tok::Long(n)) if *n >= 0 => {
                let n = *n;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.error()),
        }
    }

    /// `a, b = expr, expr` for project/extend/distinct; unnamed non-column expressions get
    /// Kusto's `Column1`, `Column2`, … names.
    fn named_list(&mut self) -> Result<Vec<(String, Expr)>, QueryError> {
        let mut items = Vec::new();
        let mut unnamed = 0;
        loop {
            let named = matches!(
                (self.peek(), self.peek_at(1)),
                (Some(Tok::Ident(_)), Some(Tok::Assign))
            ) || (matches!(self.peek(), Some(Tok::LBracket))
                && matches!(self.peek_at(1), Some(Tok::Str(_)))
                && matches!(self.peek_at(2), Some(Tok::RBracket))
                && matches!(self.peek_at(3), Some(Tok::Assign)));
            if named {
                let name = self.ident()?;
                self.expect(&Tok::Assign)?;
                items.push((name, self.expr()?));
            } else {
                let e = self.expr()?;
                let name = match e.column_name() {
                    Some(n) => n,
                    None => {
                        unnamed += 1;
                        format!("Column{unnamed}")
                    }
                };
                items.push((name, e));
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        Ok(items)
    }

    fn summarize(&mut self) -> Result<Op, QueryError> {
        let mut aggregates = Vec::new();
        if !self.is_word("by") {
            loop {
                let explicit = if matches!(
                    (self.peek(), self.peek_at(1)),
                    (Some(Tok::Ident(_)), Some(Tok::Assign))
                ) {
                    let name = self.ident()?;
                    self.expect(&Tok::Assign)?;
                    Some(name)
                } else {
                    None
                };
                let Some(Tok::Ident(function)) = self.peek().cloned() else {
                    return Err(self.error());
                };
                let Some(function) = AggregateFn::from_name(&function) else {
                    return Err(self.error());
                };
                self.at += 1;
                self.expect(&Tok::LParen)?;
                let argument = if self.eat(&Tok::RParen) {
                    None
                } else {
                    let e = self.expr()?;
                    self.expect(&Tok::RParen)?;
                    Some(e)
                };
                let needs_argument = !matches!(function, AggregateFn::Count);
                if needs_argument != argument.is_some() {
                    return Err(self.error());
                }
                let name = explicit.unwrap_or_else(|| function.default_name(argument.as_ref()));
                aggregates.push((name, Aggregate { function, argument }));
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let by = if self.eat_word("by") {
            self.named_list()?
        } else {
            Vec::new()
        };
        if aggregates.is_empty() && by.is_empty() {
            return Err(self.error());
        }
        Ok(Op::Summarize { aggregates, by })
    }

    // Expressions, loosest first: or, and, comparisons, additive, multiplicative, unary,
    // postfix (member, index, call).

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.enter()?;
        let e = self.or();
        self.leave();
        e
    }

    /// Runs a left-nested chain: every link adds a level to the tree, so it counts against
    /// the depth limit until the chain is done.
    fn chain(
        &mut self,
        operand: fn(&mut Parser) -> Result<Expr, QueryError>,
        link: fn(&mut Parser) -> Option<BinOp>,
    ) -> Result<Expr, QueryError> {
        let mut left = operand(self)?;
        let mut links = 0;
        let result = loop {
            let Some(op) = link(self) else {
                break Ok(left);
            };
            if let Err(e) = self.enter() {
                break Err(e);
            }
            links += 1;
            match operand(self) {
                Ok(right) => left = Expr::Binary(op, Box::new(left), Box::new(right)),
                Err(e) => break Err(e),
            }
        };
        for _ in 0..links {
            self.leave();
        }
        result
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        self.chain(Parser::and, |p| p.eat_word("or").then_some(BinOp::Or))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        self.chain(Parser::comparison, |p| {
            p.eat_word("and").then_some(BinOp::And)
        })
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.additive()?;
        let binary = match self.peek() {
            Some(Tok::EqEq) => Some(BinOp::Eq),
            Some(Tok::NotEq) => Some(BinOp::Ne),
            Some(Tok::EqTilde) => Some(BinOp::EqCi),
            Some(Tok::NotTilde) => Some(BinOp::NeCi),
            Some(Tok::Lt) => Some(BinOp::Lt),
            Some(Tok::Le) => Some(BinOp::Le),
            Some(Tok::Gt) => Some(BinOp::Gt),
            Some(Tok::Ge) => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = binary {
            self.at += 1;
            let right = self.additive()?;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
        }
        let (in_op, negated) = match self.peek() {
            Some(Tok::Ident(w)) if w == "in" => (Some(false), false),
            Some(Tok::InCi) => (Some(true), false),
            Some(Tok::NotWord(w)) if w == "in" => (Some(false), true),
            Some(Tok::NotInCi) => (Some(true), true),
            _ => (None, false),
        };
        if let Some(case_insensitive) = in_op {
            self.at += 1;
            let list = self.paren_list()?;
            return Ok(Expr::In {
                left: Box::new(left),
                list,
                case_insensitive,
                negated,
            });
        }
        if self.is_word("has_any") {
            self.at += 1;
            let list = self.paren_list()?;
            return Ok(Expr::HasAny {
                left: Box::new(left),
                list,
            });
        }
        let string_op = match self.peek() {
            Some(Tok::Ident(w)) => StringOp::from_word(w).map(|op| (op, false)),
            Some(Tok::NotWord(w)) => StringOp::from_word(w).map(|op| (op, true)),
            _ => None,
        };
        if let Some((op, negated)) = string_op {
            self.at += 1;
            let right = self.additive()?;
            return Ok(Expr::Str {
                op,
                negated,
                left: Box::new(left),
                right: Box::new(right),
            });
        }
        Ok(left)
    }

    /// `( expr, expr, … )` — the right-hand side of `in`, `in~`, `has_any`.
    fn paren_list(&mut self) -> Result<Vec<Expr>, QueryError> {
        self.expect(&Tok::LParen)?;
        let mut list = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(list);
        }
        loop {
            list.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RParen)?;
        Ok(list)
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        self.chain(Parser::multiplicative, |p| {
            let op = match p.peek() {
                Some(Tok::Plus) => BinOp::Add,
                Some(Tok::Minus) => BinOp::Sub,
                _ => return None,
            };
            p.at += 1;
            Some(op)
        })
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        self.chain(Parser::unary, |p| {
            let op = match p.peek() {
                Some(Tok::Star) => BinOp::Mul,
                Some(Tok::Slash) => BinOp::Div,
                Some(Tok::Percent) => BinOp::Mod,
                _ => return None,
            };
            p.at += 1;
            Some(op)
        })
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat(&Tok::Minus) {
            self.enter()?;
            let inner = self.unary();
            self.leave();
            return Ok(Expr::Negate(Box::new(inner?)));
        }
        self.eat(&Tok::Plus);
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.primary()?;
        let mut links = 0;
        let result = loop {
            let step = if self.eat(&Tok::Dot) {
                self.ident()
                    .map(|member| Expr::Member(Box::new(e.clone()), member))
            } else if self.eat(&Tok::LBracket) {
                self.expr().and_then(|index| {
                    self.expect(&Tok::RBracket)?;
                    Ok(Expr::Index(Box::new(e.clone()), Box::new(index)))
                })
            } else {
                break Ok(e);
            };
            if let Err(err) = self.enter() {
                break Err(err);
            }
            links += 1;
            match step {
                Ok(next) => e = next,
                Err(err) => break Err(err),
            }
        };
        for _ in 0..links {
            self.leave();
        }
        result
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let pos = self.pos();
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Ok(Expr::Literal(Value::Str(s)))
            }
            Some(Tok::Long(n)) => {
                self.at += 1;
                Ok(Expr::Literal(Value::Long(n)))
            }
            Some(Tok::Real(r)) => {
                self.at += 1;
                Ok(Expr::Literal(Value::Real(r)))
            }
            Some(Tok::TimeSpan(ns)) => {
                self.at += 1;
                Ok(Expr::Literal(Value::TimeSpan(ns)))
            }
            Some(Tok::DateTime(raw)) => {
                let Some(value) = Value::parse_datetime(&raw) else {
                    return Err(self.error());
                };
                self.at += 1;
                Ok(Expr::Literal(value))
            }
            Some(Tok::LParen) => {
                self.at += 1;
                let e = self.expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::LBracket) if matches!(self.peek_at(1), Some(Tok::Str(_))) => {
                let name = self.ident()?;
                Ok(Expr::Name(name, pos))
            }
            Some(Tok::Ident(word)) => {
                self.at += 1;
                match word.as_str() {
                    "true" => return Ok(Expr::Literal(Value::Bool(true))),
                    "false" => return Ok(Expr::Literal(Value::Bool(false))),
                    "dynamic" => {
                        self.expect(&Tok::LParen)?;
                        let value = self.dynamic_literal()?;
                        self.expect(&Tok::RParen)?;
                        return Ok(Expr::Literal(Value::from_json(value)));
                    }
                    _ => {}
                }
                if self.eat(&Tok::LParen) {
                    let mut args = Vec::new();
                    if !self.eat(&Tok::RParen) {
                        loop {
                            args.push(self.expr()?);
                            if !self.eat(&Tok::Comma) {
                                break;
                            }
                        }
                        self.expect(&Tok::RParen)?;
                    }
                    return Ok(Expr::Call(word, args, pos));
                }
                if OPERATORS.contains(&word.as_str())
                    || ["and", "or", "by", "let", "union"].contains(&word.as_str())
                {
                    self.at -= 1;
                    return Err(self.error());
                }
                Ok(Expr::Name(word, pos))
            }
            _ => Err(self.error()),
        }
    }

    /// The JSON-like literal inside `dynamic(…)`: arrays, property bags, strings, numbers,
    /// booleans, null.
    fn dynamic_literal(&mut self) -> Result<serde_json::Value, QueryError> {
        self.enter()?;
        let value = self.dynamic_value();
        self.leave();
        value
    }

    fn dynamic_value(&mut self) -> Result<serde_json::Value, QueryError> {
        use serde_json::Value as J;
        let negative = self.eat(&Tok::Minus);
        let value = match self.next() {
            Some(Tok::Str(s)) if !negative => J::String(s),
            Some(Tok::Long(n)) => J::from(if negative { -n } else { n }),
            Some(Tok::Real(r)) => serde_json::Number::from_f64(if negative { -r } else { r })
                .map(J::Number)
                .unwrap_or(J::Null),
            Some(Tok::Ident(w)) if !negative && w == "true" => J::Bool(true),
            Some(Tok::Ident(w)) if !negative && w == "false" => J::Bool(false),
            Some(Tok::Ident(w)) if !negative && w == "null" => J::Null,
            Some(Tok::LBracket) if !negative => {
                let mut items = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        items.push(self.dynamic_literal()?);
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(&Tok::RBracket)?;
                }
                J::Array(items)
            }
            Some(Tok::LBrace) if !negative => {
                let mut map = serde_json::Map::new();
                if !self.eat(&Tok::RBrace) {
                    loop {
                        let Some(Tok::Str(key)) = self.next() else {
                            self.at = self.at.saturating_sub(1);
                            return Err(self.error());
                        };
                        self.expect(&Tok::Colon)?;
                        map.insert(key, self.dynamic_literal()?);
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(&Tok::RBrace)?;
                }
                J::Object(map)
            }
            _ => {
                self.at = self.at.saturating_sub(1);
                return Err(self.error());
            }
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_provider_shaped_sign_in_query() {
        let q = parse(
            "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs\n\
             | where UserId in~ (\"a\", \"b\") or UserPrincipalName in~ ('x@y')\n\
             | summarize count() by UserPrincipalName",
        )
        .unwrap();
        let Source::Union { fuzzy, legs, .. } = &q.body.source else {
            panic!("union expected");
        };
        assert!(*fuzzy);
        assert_eq!(legs.len(), 2);
        assert_eq!(q.body.ops.len(), 2);
        let Op::Summarize { aggregates, by } = &q.body.ops[1] else {
            panic!("summarize expected");
        };
        assert_eq!(aggregates[0].0, "count_");
        assert_eq!(by[0].0, "UserPrincipalName");
    }

    #[test]
    fn lets_bind_scalars_and_tables() {
        let q = parse("let ids = dynamic(['a']); let recent = SigninLogs | where TimeGenerated > ago(5m); recent | where UserId in (ids)").unwrap();
        assert!(matches!(q.lets[0].value, LetValue::Scalar(_)));
        assert!(matches!(q.lets[1].value, LetValue::Tabular(_)));
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let e = parse("completely invalid syntax").unwrap_err();
        assert_eq!(
            e,
            QueryError::syntax(1, 11, "invalid"),
            "Log Analytics' own example"
        );
        assert!(parse("").is_err());
        assert!(parse("T | where").is_err());
        assert!(parse("T | summarize").is_err());
        assert!(parse(&"(".repeat(10_000)).is_err());
        assert!(parse(&format!("T | where {}1", "-".repeat(10_000))).is_err());
        // Long left-nested chains are bounded too (evaluation recurses as deep as the tree).
        assert!(parse(&format!("T | where 1{}", " + 1".repeat(10_000))).is_err());
        assert!(parse(&format!("T | where a{}", " or a".repeat(10_000))).is_err());
        assert!(parse(&format!("T | where d{}", ".x".repeat(10_000))).is_err());
        assert!(parse(&format!("T | where 1{}", " + 1".repeat(50))).is_ok());
    }
}
