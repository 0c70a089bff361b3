//! The Kusto Query Language subset the emulated Log Analytics workspaces understand: enough to
//! validate and evaluate log search alert queries over the Entra log tables, with Kusto's
//! documented semantics (each construct cites its learn.microsoft.com Kusto reference page in
//! `eval.rs` / `value.rs` / `lexer.rs`).
//!
//! Supported (anything else is a syntax error in Log Analytics' shape, `SYN0002`):
//!
//! ```text
//! query      := (let ';')* tabular ';'?
//! let        := 'let' Name '=' (tabular | scalar)
//! tabular    := source ('|' operator)*
//! source     := Table | table('Table') | (tabular)
//!             | union [kind=inner|outer] [isfuzzy=true|false] [withsource=Col] leg (',' leg)*
//! leg        := Table | table('Table') | (tabular)
//! operator   := where|filter scalar
//!             | project item (',' item)*        item := [Name '='] scalar
//!             | extend item (',' item)*
//!             | summarize [agg (',' agg)*] [by item (',' item)*]
//!                 agg := [Name '='] count() | countif(p) | dcount(x) | sum(x) | min(x)
//!                        | max(x) | avg(x) | make_set(x) | make_list(x) | take_any(x)
//!             | take N | limit N | count | distinct item (',' item)*
//!             | sort by scalar [asc|desc] (',' …)* | order by … | top N by scalar [asc|desc]
//! scalar     := or-chains of and-chains of comparisons:
//!               == != =~ !~ < <= > >=, in (…) in~ (…) !in (…) !in~ (…), has_any (…),
//!               has !has has_cs !has_cs contains !contains contains_cs !contains_cs
//!               startswith !startswith startswith_cs endswith !endswith endswith_cs;
//!               + - * / %; unary -; x.member, x['member'], x[index]; calls: ago now
//!               tostring tolower toupper strlen isempty isnotempty isnull isnotnull not
//!               iif iff strcat tolong toint todouble toreal tobool todatetime parse_json
//!               todynamic array_length coalesce bin; literals: 'str' "str" @'verbatim'
//!               h'str', 123, 1.5, 5m 1h 30s 100ms 2d, datetime(…), true false,
//!               dynamic([…] | {…} | scalar); ['Column name'] quoting; // comments.
//! ```
//!
//! No input makes the lexer, parser or evaluator panic: nesting is bounded, arithmetic is
//! checked, and every failure is a [`QueryError`] (see the exhaustive-garbage and property
//! tests below).

mod eval;
mod lexer;
mod parser;
mod value;

pub use eval::{bind, run, string_op, Catalog, Schema, Table};
pub use parser::{parse, Query};
pub use value::{ColumnType, Value};

use serde_json::{json, Value as Json};

/// Why Log Analytics refused a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// `SYN0002`: "Query could not be parsed at '<token>' on line [<line>,<pos>]".
    Syntax {
        line: usize,
        pos: usize,
        token: String,
    },
    /// `SEM…`: a name that does not resolve, and similar.
    Semantic { code: String, message: String },
}

impl QueryError {
    pub fn syntax(line: usize, pos: usize, token: &str) -> QueryError {
        QueryError::Syntax {
            line,
            pos,
            token: token.to_owned(),
        }
    }

    pub fn semantic(code: &str, message: impl Into<String>) -> QueryError {
        QueryError::Semantic {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The innermost message (what the portal shows).
    pub fn message(&self) -> String {
        match self {
            QueryError::Syntax { line, pos, token } => {
                format!("Query could not be parsed at '{token}' on line [{line},{pos}]")
            }
            QueryError::Semantic { message, .. } => message.clone(),
        }
    }

    /// The Log Analytics query API's error body, as the scheduled-query-rules service embeds
    /// it (serialized) in its own 400 `BadRequest`. Shape as the service sends it
    /// (`BadArgumentError` → `SyntaxError`/`SemanticError` → `SYN0002`/`SEM0100`), e.g. in
    /// the Azure SDK for JS monitor-query test recordings.
    pub fn to_log_analytics(&self, correlation_id: &str) -> Json {
        let innermost = match self {
            QueryError::Syntax { line, pos, token } => json!({
                "code": "SYN0002",
                "message": self.message(),
                "line": line,
                "pos": pos,
                "token": token,
            }),
            QueryError::Semantic { code, message } => json!({"code": code, "message": message}),
        };
        let (code, message) = match self {
            QueryError::Syntax { .. } => {
                ("SyntaxError", "A recognition error occurred in the query.")
            }
            QueryError::Semantic { .. } => ("SemanticError", "A semantic error occurred."),
        };
        json!({
            "error": {
                "message": "The request had some invalid properties",
                "code": "BadArgumentError",
                "correlationId": correlation_id,
                "innererror": {"code": code, "message": message, "innererror": innermost},
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    type TableData = (Vec<(String, ColumnType)>, Vec<Vec<Value>>);

    /// Two sign-in tables and AuditLogs with a few typed rows.
    struct Fixture {
        tables: HashMap<&'static str, TableData>,
    }

    const NOW: i64 = 1_714_564_800_000_000_000; // 2024-05-01T12:00:00Z

    fn signin(id: &str, upn: &str, result: &str) -> Vec<Value> {
        vec![
            Value::DateTime(NOW - 60_000_000_000),
            Value::Str(id.into()),
            Value::Str(upn.into()),
            Value::Str(result.into()),
        ]
    }

    impl Fixture {
        fn new() -> Fixture {
            let signin_columns = vec![
                ("TimeGenerated".to_owned(), ColumnType::DateTime),
                ("UserId".to_owned(), ColumnType::Str),
                ("UserPrincipalName".to_owned(), ColumnType::Str),
                ("ResultType".to_owned(), ColumnType::Str),
            ];
            let audit_columns = vec![
                ("TimeGenerated".to_owned(), ColumnType::DateTime),
                ("OperationName".to_owned(), ColumnType::Str),
                ("TargetResources".to_owned(), ColumnType::Dynamic),
            ];
            let mut tables = HashMap::new();
            tables.insert(
                "SigninLogs",
                (
                    signin_columns.clone(),
                    vec![
                        signin("id-1", "BG-01@Contoso.com", "0"),
                        signin("id-9", "alice@contoso.com", "0"),
                    ],
                ),
            );
            tables.insert(
                "AADNonInteractiveUserSignInLogs",
                (
                    signin_columns,
                    vec![signin("id-2", "bg-02@contoso.com", "50126")],
                ),
            );
            tables.insert(
                "AuditLogs",
                (
                    audit_columns,
                    vec![vec![
                        Value::DateTime(NOW - 1),
                        Value::Str("Reset password".into()),
                        Value::Dynamic(serde_json::json!([{
                            "id": "id-1", "userPrincipalName": "bg-01@contoso.com", "type": "User"
                        }])),
                    ]],
                ),
            );
            Fixture { tables }
        }

        fn without(mut self, table: &str) -> Fixture {
            self.tables.remove(table);
            self
        }
    }

    impl Catalog for Fixture {
        fn schema(&self, table: &str) -> Option<Schema> {
            self.tables
                .get(table)
                .map(|(columns, _)| Schema::Known(columns.clone()))
        }
        fn rows(&self, table: &str) -> Vec<Vec<Value>> {
            self.tables
                .get(table)
                .map(|(_, rows)| rows.clone())
                .unwrap_or_default()
        }
    }

    fn rows(query: &str, fixture: &Fixture) -> Vec<Vec<Value>> {
        let q = parse(query).unwrap_or_else(|e| panic!("{query}: {e:?}"));
        run(&q, fixture, NOW)
            .unwrap_or_else(|e| panic!("{query}: {e:?}"))
            .rows
    }

    #[test]
    fn the_provider_sign_in_query_counts_per_account() {
        let q = "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs\n\
                 | where UserId in~ (\"id-1\", \"id-2\") or UserPrincipalName in~ (\"bg-01@contoso.com\", \"bg-02@contoso.com\")\n\
                 | summarize count() by UserPrincipalName";
        let result = rows(q, &Fixture::new());
        assert_eq!(
            result,
            vec![
                vec![Value::Str("BG-01@Contoso.com".into()), Value::Long(1)],
                vec![Value::Str("bg-02@contoso.com".into()), Value::Long(1)],
            ]
        );
    }

    #[test]
    fn fuzzy_union_tolerates_a_missing_table_but_not_all() {
        let fixture = Fixture::new().without("AADNonInteractiveUserSignInLogs");
        let q = "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs | count";
        assert_eq!(rows(q, &fixture), vec![vec![Value::Long(2)]]);
        let strict = parse("union SigninLogs, AADNonInteractiveUserSignInLogs | count").unwrap();
        assert!(bind(&strict, &fixture).is_err());
        let none = Fixture::new()
            .without("SigninLogs")
            .without("AADNonInteractiveUserSignInLogs");
        assert!(bind(&parse(q).unwrap(), &none).is_err());
    }

    #[test]
    fn equality_operators_follow_kusto_case_rules() {
        let f = Fixture::new();
        assert_eq!(
            rows(
                "SigninLogs | where UserPrincipalName == 'bg-01@contoso.com'",
                &f
            )
            .len(),
            0
        );
        assert_eq!(
            rows(
                "SigninLogs | where UserPrincipalName =~ 'bg-01@contoso.com'",
                &f
            )
            .len(),
            1
        );
        assert_eq!(
            rows(
                "SigninLogs | where UserPrincipalName in ('bg-01@contoso.com')",
                &f
            )
            .len(),
            0
        );
        assert_eq!(
            rows(
                "SigninLogs | where UserPrincipalName in~ ('bg-01@contoso.com')",
                &f
            )
            .len(),
            1
        );
        assert_eq!(
            rows(
                "SigninLogs | where UserPrincipalName !in~ ('bg-01@contoso.com')",
                &f
            )
            .len(),
            1
        );
        assert_eq!(
            rows(
                "let ids = dynamic(['id-1', 'id-9']); SigninLogs | where UserId in (ids) | count",
                &f
            ),
            vec![vec![Value::Long(2)]]
        );
    }

    #[test]
    fn audit_queries_match_operation_and_target() {
        let f = Fixture::new();
        let q = "AuditLogs\n\
                 | where OperationName in ('Reset password', 'Delete user')\n\
                 | where TargetResources has 'bg-01@contoso.com' or tostring(TargetResources[0].id) == 'id-1'\n\
                 | extend Target = tostring(TargetResources[0].userPrincipalName)\n\
                 | summarize count() by Target, OperationName";
        assert_eq!(
            rows(q, &f),
            vec![vec![
                Value::Str("bg-01@contoso.com".into()),
                Value::Str("Reset password".into()),
                Value::Long(1)
            ]]
        );
    }

    #[test]
    fn time_filters_use_the_evaluation_time() {
        let f = Fixture::new();
        assert_eq!(
            rows("SigninLogs | where TimeGenerated > ago(5m) | count", &f),
            vec![vec![Value::Long(2)]]
        );
        assert_eq!(
            rows("SigninLogs | where TimeGenerated > ago(30s) | count", &f),
            vec![vec![Value::Long(0)]]
        );
    }

    #[test]
    fn unknown_names_are_semantic_errors_in_the_service_shape() {
        let f = Fixture::new();
        let e = bind(&parse("SigninLogs | where Nope == 1").unwrap(), &f).unwrap_err();
        assert_eq!(
            e.message(),
            "'where' operator: Failed to resolve scalar expression named 'Nope'"
        );
        let e = bind(&parse("Missing | take 1").unwrap(), &f).unwrap_err();
        assert_eq!(
            e.message(),
            "'take' operator: Failed to resolve table or column expression named 'Missing'"
        );
        let body = e.to_log_analytics("c");
        assert_eq!(body["error"]["code"], "BadArgumentError");
        assert_eq!(body["error"]["innererror"]["innererror"]["code"], "SEM0100");
        let syntax = parse("SigninLogs | whre x")
            .unwrap_err()
            .to_log_analytics("c");
        assert_eq!(syntax["error"]["innererror"]["code"], "SyntaxError");
        assert_eq!(syntax["error"]["innererror"]["innererror"]["token"], "whre");
    }

    #[test]
    fn lets_see_only_earlier_names_so_they_cannot_loop() {
        let f = Fixture::new();
        // Shadowing a table with a filtered view of itself is ordinary KQL.
        assert_eq!(
            rows(
                "let SigninLogs = SigninLogs | where UserId == 'id-1'; SigninLogs | count",
                &f
            ),
            vec![vec![Value::Long(1)]]
        );
        // A let cannot see itself or later lets: this one names the real table again.
        let q = parse("let a = SigninLogs; let SigninLogs = a; SigninLogs | count").unwrap();
        assert_eq!(run(&q, &f, NOW).unwrap().rows, vec![vec![Value::Long(2)]]);
        assert!(bind(&parse("let a = b; let b = a; a").unwrap(), &f).is_err());
        // Long let chains end in an error, not a stack overflow.
        let mut chain = String::from("let t0 = SigninLogs; ");
        for i in 1..500 {
            chain.push_str(&format!("let t{i} = t{}; ", i - 1));
        }
        chain.push_str("t499 | count");
        let e = bind(&parse(&chain).unwrap(), &f).unwrap_err();
        assert!(e.message().contains("too deeply"), "{e:?}");
        // Lets used twice at every level would double the work per level: bounded too.
        let mut doubling = String::from("let t0 = SigninLogs; ");
        for i in 1..40 {
            doubling.push_str(&format!("let t{i} = union t{0}, t{0}; ", i - 1));
        }
        doubling.push_str("t39 | count");
        assert!(bind(&parse(&doubling).unwrap(), &f).is_err());
    }

    #[test]
    fn summarize_without_by_yields_one_row_even_over_nothing() {
        let f = Fixture::new();
        assert_eq!(
            rows("SigninLogs | where false | summarize n = count()", &f),
            vec![vec![Value::Long(0)]]
        );
        assert!(rows("SigninLogs | where false | summarize count() by UserId", &f).is_empty());
    }

    /// The deepest trees the parser accepts still parse, bind and evaluate on a test thread's
    /// default stack (2 MiB, unoptimized build); deeper ones are syntax errors.
    #[test]
    fn the_deepest_accepted_queries_evaluate_without_overflowing_the_stack() {
        let f = Fixture::new();
        let mut accepted = 0;
        for depth in [10, 30, 50, 60, 63] {
            let parens = format!(
                "SigninLogs | where {}true{}",
                "(".repeat(depth),
                ")".repeat(depth)
            );
            let chain = format!("SigninLogs | extend x = 1{} | count", " + 1".repeat(depth));
            let nots = format!(
                "SigninLogs | where {}true{}",
                "not(".repeat(depth),
                ")".repeat(depth)
            );
            let tables = format!(
                "{}SigninLogs{} | count",
                "(".repeat(depth),
                ")".repeat(depth)
            );
            for q in [parens, chain, nots, tables] {
                if let Ok(parsed) = parse(&q) {
                    accepted += 1;
                    let _ = run(&parsed, &f, NOW);
                }
            }
        }
        assert!(accepted >= 16, "deep but valid queries parse: {accepted}");
    }

    /// Every string of up to three tokens from a vocabulary that exercises each production
    /// (and its misuse): none may panic, whether it parses or not, and whatever parses must
    /// also bind and run without panicking.
    #[test]
    fn exhaustive_garbage_never_panics() {
        let vocabulary = [
            "SigninLogs",
            "|",
            "where",
            "union",
            "isfuzzy=true",
            ",",
            "(",
            ")",
            "[",
            "]",
            "'x'",
            "\"",
            "@'",
            "in~",
            "!in",
            "==",
            "=~",
            "and",
            "or",
            "summarize",
            "count()",
            "by",
            "let",
            "=",
            ";",
            "5m",
            "1e999",
            "9223372036854775808",
            "-",
            "dynamic(",
            "{",
            "}",
            ":",
            ".",
            "ago(",
            "datetime(",
            "has",
            "!",
            "//",
            "\n",
            "take",
            "-1",
            "extend",
        ];
        let f = Fixture::new();
        let n = vocabulary.len();
        for a in 0..n {
            for b in 0..n {
                for c in 0..n {
                    let q = format!("{} {} {}", vocabulary[a], vocabulary[b], vocabulary[c]);
                    if let Ok(parsed) = parse(&q) {
                        let _ = run(&parsed, &f, NOW);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary text never panics the parser, binder or evaluator.
        #[test]
        fn arbitrary_text_never_panics(q in "\\PC{0,200}") {
            if let Ok(parsed) = parse(&q) {
                let _ = run(&parsed, &Fixture::new(), NOW);
            }
        }

        /// Queries assembled from real fragments, so more of them get past the parser.
        #[test]
        fn structured_queries_never_panic(
            parts in proptest::collection::vec(prop_oneof![
                Just("SigninLogs"), Just("AuditLogs"), Just(" | where "), Just(" | summarize count() by "),
                Just("UserPrincipalName"), Just(" =~ "), Just(" in~ ("), Just(")"), Just("'a@b'"),
                Just(" or "), Just(" and "), Just("union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs"),
                Just(" | extend x = "), Just("tostring(TargetResources[0].id)"), Just(" has "),
                Just(" | take 1"), Just("ago(5m)"), Just(" > "), Just("TimeGenerated"), Just(", "),
                Just("dynamic(['x', 1, {'k': [true, null]}])"), Just(" | project "), Just("-"),
            ], 0..16)
        ) {
            let q: String = parts.concat();
            if let Ok(parsed) = parse(&q) {
                let _ = run(&parsed, &Fixture::new(), NOW);
            }
        }
    }

    /// A table with one column of every type, for queries over arbitrary data.
    struct AnyData {
        rows: Vec<Vec<Value>>,
    }

    const ANY_COLUMNS: [(&str, ColumnType); 7] = [
        ("B", ColumnType::Bool),
        ("L", ColumnType::Long),
        ("R", ColumnType::Real),
        ("S", ColumnType::Str),
        ("D", ColumnType::DateTime),
        ("T", ColumnType::TimeSpan),
        ("J", ColumnType::Dynamic),
    ];

    impl Catalog for AnyData {
        fn schema(&self, table: &str) -> Option<Schema> {
            (table == "T0").then(|| {
                Schema::Known(
                    ANY_COLUMNS
                        .iter()
                        .map(|(n, t)| ((*n).to_owned(), *t))
                        .collect(),
                )
            })
        }
        fn rows(&self, table: &str) -> Vec<Vec<Value>> {
            if table == "T0" {
                self.rows.clone()
            } else {
                Vec::new()
            }
        }
    }

    fn extreme_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(0),
            Just(-1),
            Just(NOW)
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            extreme_i64().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "\\PC{0,6}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// One row: a value of the column's type, or null, in each column.
    fn any_row() -> impl Strategy<Value = Vec<Value>> {
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(extreme_i64()),
            proptest::option::of(prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0)
            ]),
            prop_oneof![
                "\\PC{0,12}",
                Just("1e999".to_owned()),
                Just("[1,{".to_owned())
            ],
            proptest::option::of(extreme_i64()),
            proptest::option::of(extreme_i64()),
            proptest::option::of(json_value()),
        )
            .prop_map(|(b, l, r, s, d, t, j)| {
                vec![
                    b.map_or(Value::Null, Value::Bool),
                    l.map_or(Value::Null, Value::Long),
                    r.map_or(Value::Null, Value::Real),
                    Value::Str(s),
                    d.map_or(Value::Null, Value::DateTime),
                    t.map_or(Value::Null, Value::TimeSpan),
                    j.map_or(Value::Null, Value::Dynamic),
                ]
            })
    }

    /// A scalar expression over the columns: every function and operator, nested.
    fn any_scalar() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![proptest::sample::select(vec![
            "B",
            "L",
            "R",
            "S",
            "D",
            "T",
            "J",
            "J[0]",
            "J[-1]",
            "J.a",
            "J['b']",
            "J[0].a",
            "9223372036854775807",
            "-9223372036854775807",
            "0",
            "0.0",
            "1e308",
            "5m",
            "1d",
            "100ms",
            "datetime(2024-05-01)",
            "datetime(9999-12-31)",
            "now()",
            "ago(1d)",
            "'x'",
            "''",
            "true",
            "dynamic([1, 'a', null])",
            "dynamic({})",
        ])
        .prop_map(str::to_owned),];
        leaf.prop_recursive(3, 16, 3, |inner| {
            let unary = proptest::sample::select(vec![
                "tostring",
                "tolower",
                "toupper",
                "strlen",
                "isempty",
                "isnotempty",
                "isnull",
                "isnotnull",
                "not",
                "tolong",
                "toint",
                "todouble",
                "toreal",
                "tobool",
                "todatetime",
                "parse_json",
                "todynamic",
                "array_length",
                "-",
            ]);
            let binary = proptest::sample::select(vec![
                "+",
                "-",
                "*",
                "/",
                "%",
                "==",
                "!=",
                "=~",
                "!~",
                "<",
                "<=",
                ">",
                ">=",
                "has",
                "!has",
                "contains",
                "startswith",
                "endswith_cs",
                "and",
                "or",
            ]);
            prop_oneof![
                (unary, inner.clone()).prop_map(|(f, a)| if f == "-" {
                    format!("-({a})")
                } else {
                    format!("{f}({a})")
                }),
                (inner.clone(), binary, inner.clone())
                    .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("bin({a}, {b})")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(a, b, c)| format!("iif({a}, {b}, {c})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("strcat({a}, {b})")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) in~ ({b}, 'x', 1)")),
            ]
        })
    }

    fn any_operator() -> impl Strategy<Value = String> {
        let agg = proptest::sample::select(vec![
            "count()",
            "dcount",
            "sum",
            "min",
            "max",
            "avg",
            "make_set",
            "make_list",
            "take_any",
            "countif",
        ]);
        prop_oneof![
            any_scalar().prop_map(|s| format!("| where {s}")),
            any_scalar().prop_map(|s| format!("| extend x = {s}")),
            any_scalar().prop_map(|s| format!("| project y = {s}, L")),
            (agg, any_scalar(), any_scalar()).prop_map(|(a, x, by)| if a == "count()" {
                format!("| summarize {a} by k = {by}")
            } else {
                format!("| summarize v = {a}({x}) by k = {by}")
            }),
            any_scalar().prop_map(|s| format!("| sort by {s} asc")),
            (extreme_i64(), any_scalar()).prop_map(|(n, s)| format!("| top {n} by {s}")),
            extreme_i64().prop_map(|n| format!("| take {n}")),
            Just("| count".to_owned()),
            any_scalar().prop_map(|s| format!("| distinct {s}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: fuzz_cases(256), failure_persistence: None, ..ProptestConfig::default() })]

        /// Every function, operator and aggregate over every column type, on rows holding
        /// extreme values (i64 bounds, NaN and infinities, far datetimes, deep dynamics), and
        /// evaluated at extreme instants: an answer or a query error, never a panic.
        #[test]
        fn every_construct_over_extreme_data_never_panics(
            rows in proptest::collection::vec(any_row(), 0..6),
            operators in proptest::collection::vec(any_operator(), 1..4),
        ) {
            let query = format!("T0 {}", operators.join(" "));
            let data = AnyData { rows };
            if let Ok(parsed) = parse(&query) {
                let _ = run(&parsed, &data, NOW);
                let _ = run(&parsed, &data, i64::MAX);
                let _ = run(&parsed, &data, i64::MIN);
            }
        }
    }

    /// `BREAKGLASS_SOAK=1` (`make soak`) multiplies the case count by 50;
    /// `BREAKGLASS_FUZZ_CASES` sets it.
    fn fuzz_cases(ci: u32) -> u32 {
        if let Some(n) = std::env::var("BREAKGLASS_FUZZ_CASES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            return n;
        }
        match std::env::var("BREAKGLASS_SOAK") {
            Ok(v) if !v.is_empty() && v != "0" => ci * 50,
            _ => ci,
        }
    }
}
