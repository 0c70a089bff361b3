//! Name resolution ("binding") and evaluation of a parsed query over typed rows.
//!
//! Binding walks the query once without data, resolving every table and column the way Log
//! Analytics does before it runs a query, so a rule on a missing table or column fails at PUT
//! time with `SEM0100`. Evaluation then runs the operators in order. Semantics, each from the
//! Kusto reference page of the same name: "where operator", "project operator", "extend
//! operator", "summarize operator" (default column names `count_`, `dcount_X`; with no `by`, a
//! single row even over no input), "union operator" (`kind=outer` is the default and fills
//! missing columns; `isfuzzy=true` drops legs that do not resolve, if at least one does),
//! "take operator", "count operator", "distinct operator", "sort operator" (descending by
//! default), "top operator", "String operators" (`has` matches whole terms, `contains`
//! substrings, both case-insensitive; `_cs` variants are case-sensitive), "The case-insensitive
//! in~ string operator" / "The case-sensitive in string operator" (dynamic arrays in the list
//! are flattened), "has_any operator", and "ago()", "now()".

use std::collections::HashMap;
use std::rc::Rc;

use super::parser::{
    Aggregate, AggregateFn, BinOp, Expr, LetValue, Op, Query, Source, StringOp, Tabular,
};
use super::value::{ColumnType, Value};
use super::QueryError;

/// The columns of a table. `Open` tables (tables the emulator has no schema for, such as
/// `Heartbeat`) accept any column name.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    Known(Vec<(String, ColumnType)>),
    Open,
}

impl Schema {
    fn column(&self, name: &str) -> Option<ColumnType> {
        match self {
            Schema::Known(columns) => columns.iter().find(|(n, _)| n == name).map(|(_, t)| *t),
            Schema::Open => Some(ColumnType::Dynamic),
        }
    }

    fn columns(&self) -> Vec<(String, ColumnType)> {
        match self {
            Schema::Known(columns) => columns.clone(),
            Schema::Open => Vec::new(),
        }
    }
}

/// What a query reads: the tables of the workspaces a rule is scoped to.
pub trait Catalog {
    /// The table's schema, or `None` when no scoped workspace has it.
    fn schema(&self, table: &str) -> Option<Schema>;
    /// The rows the query sees (already limited to the query's time range), in the column
    /// order of `schema`.
    fn rows(&self, table: &str) -> Vec<Vec<Value>>;
}

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<(String, ColumnType)>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }
}

/// Bindings visible to a query: `let` names. A tabular `let` keeps the bindings of its
/// definition, so it sees only the names defined before it (`let SigninLogs = SigninLogs |
/// where …` reads the table) and no chain of lets can loop.
#[derive(Clone, Default)]
struct Env<'q> {
    scalars: HashMap<String, Value>,
    scalar_names: Vec<String>,
    tables: HashMap<String, (&'q Tabular, Rc<Env<'q>>)>,
    /// Tabular expressions bound so far, shared by every copy: lets referring to lets twice
    /// (`let b = union a, a`) would otherwise cost exponential time.
    steps: Rc<std::cell::Cell<usize>>,
}

/// At most this many tabular expressions are bound (or evaluated) per query.
const MAX_STEPS: usize = 10_000;

/// How many tabular expressions (lets, nested sources, union legs) may nest inside one
/// another; the recursion stays bounded whatever the query.
const MAX_NESTING: usize = 64;

fn too_deep() -> QueryError {
    QueryError::semantic(
        "QueryTooComplex",
        "The query nests tabular expressions (let, union, parentheses) too deeply, or uses too many.",
    )
}

const SCALAR_FUNCTIONS: &[(&str, usize, usize)] = &[
    ("ago", 1, 1),
    ("now", 0, 1),
    ("tostring", 1, 1),
    ("tolower", 1, 1),
    ("toupper", 1, 1),
    ("strlen", 1, 1),
    ("isempty", 1, 1),
    ("isnotempty", 1, 1),
    ("isnull", 1, 1),
    ("isnotnull", 1, 1),
    ("not", 1, 1),
    ("iif", 3, 3),
    ("iff", 3, 3),
    ("strcat", 1, 64),
    ("tolong", 1, 1),
    ("toint", 1, 1),
    ("todouble", 1, 1),
    ("toreal", 1, 1),
    ("tobool", 1, 1),
    ("todatetime", 1, 1),
    ("parse_json", 1, 1),
    ("todynamic", 1, 1),
    ("array_length", 1, 1),
    ("coalesce", 1, 64),
    ("bin", 2, 2),
];

fn semantic(op: &str, message: String) -> QueryError {
    QueryError::semantic("SEM0100", format!("'{op}' operator: {message}"))
}

/// Checks every name in the query against `catalog`; returns the output schema.
pub fn bind(query: &Query, catalog: &dyn Catalog) -> Result<Schema, QueryError> {
    let mut env = Env::default();
    for binding in &query.lets {
        match &binding.value {
            LetValue::Scalar(e) => {
                check_expr(e, &Schema::Known(Vec::new()), &env, "let")?;
                env.scalar_names.push(binding.name.clone());
                env.tables.remove(&binding.name);
            }
            LetValue::Tabular(t) => {
                bind_tabular(t, &env, catalog, 0)?;
                let scope = Rc::new(env.clone());
                env.scalar_names.retain(|n| n != &binding.name);
                env.tables.insert(binding.name.clone(), (t, scope));
            }
        }
    }
    bind_tabular(&query.body, &env, catalog, 0)
}

/// The operator that consumes a source, as Kusto names it in "Failed to resolve" messages.
fn consumer(t: &Tabular) -> Option<&'static str> {
    t.ops.first().map(Op::name)
}

fn unresolved_table(name: &str, operator: Option<&str>) -> QueryError {
    let message = format!("Failed to resolve table or column expression named '{name}'");
    match operator {
        Some(op) => QueryError::semantic("SEM0100", format!("'{op}' operator: {message}")),
        None => QueryError::semantic("SEM0100", message),
    }
}

fn bind_source(
    source: &Source,
    consumer: Option<&'static str>,
    env: &Env<'_>,
    catalog: &dyn Catalog,
    depth: usize,
) -> Result<Schema, QueryError> {
    match source {
        Source::Name(name, _) => {
            if let Some((t, scope)) = env.tables.get(name) {
                return bind_tabular(t, scope, catalog, depth + 1);
            }
            catalog
                .schema(name)
                .ok_or_else(|| unresolved_table(name, consumer))
        }
        Source::Nested(t) => bind_tabular(t, env, catalog, depth + 1),
        Source::Union {
            fuzzy,
            inner,
            with_source,
            legs,
        } => {
            let mut schemas = Vec::new();
            let mut first_error = None;
            for leg in legs {
                match bind_tabular(leg, env, catalog, depth + 1) {
                    Ok(s) => schemas.push(s),
                    Err(e) if *fuzzy => {
                        first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        return Err(unresolved_table(&leg_name(leg), Some("union")));
                    }
                }
            }
            if schemas.is_empty() {
                let name = legs.first().map(leg_name).unwrap_or_default();
                return Err(unresolved_table(&name, Some("union")));
            }
            Ok(union_schema(&schemas, *inner, with_source.as_deref()))
        }
    }
}

fn leg_name(leg: &Tabular) -> String {
    match &leg.source {
        Source::Name(n, _) => n.clone(),
        _ => "(subquery)".into(),
    }
}

fn union_schema(schemas: &[Schema], inner: bool, with_source: Option<&str>) -> Schema {
    if schemas.iter().any(|s| matches!(s, Schema::Open)) {
        return Schema::Open;
    }
    let mut columns: Vec<(String, ColumnType)> = Vec::new();
    if let Some(source) = with_source {
        columns.push((source.to_owned(), ColumnType::Str));
    }
    let all: Vec<Vec<(String, ColumnType)>> = schemas.iter().map(Schema::columns).collect();
    for leg in &all {
        for (name, ty) in leg {
            let everywhere = all.iter().all(|l| l.iter().any(|(n, _)| n == name));
            if (!inner || everywhere) && !columns.iter().any(|(n, _)| n == name) {
                columns.push((name.clone(), *ty));
            }
        }
    }
    Schema::Known(columns)
}

fn bind_tabular(
    t: &Tabular,
    env: &Env<'_>,
    catalog: &dyn Catalog,
    depth: usize,
) -> Result<Schema, QueryError> {
    env.steps.set(env.steps.get() + 1);
    if depth > MAX_NESTING || env.steps.get() > MAX_STEPS {
        return Err(too_deep());
    }
    let mut schema = bind_source(&t.source, consumer(t), env, catalog, depth)?;
    for op in &t.ops {
        let name = op.name();
        schema = match op {
            Op::Where(e) => {
                check_expr(e, &schema, env, name)?;
                schema
            }
            Op::Project(items) | Op::Distinct(items) => {
                let mut columns = Vec::new();
                for (column, e) in items {
                    check_expr(e, &schema, env, name)?;
                    columns.push((column.clone(), infer_type(e, &schema)));
                }
                Schema::Known(columns)
            }
            Op::Extend(items) => {
                let mut columns = schema.columns();
                for (column, e) in items {
                    check_expr(e, &schema, env, name)?;
                    let ty = infer_type(e, &schema);
                    columns.retain(|(n, _)| n != column);
                    columns.push((column.clone(), ty));
                }
                match schema {
                    Schema::Open => Schema::Open,
                    Schema::Known(_) => Schema::Known(columns),
                }
            }
            Op::Summarize { aggregates, by } => {
                let mut columns = Vec::new();
                for (column, e) in by {
                    check_expr(e, &schema, env, name)?;
                    columns.push((column.clone(), infer_type(e, &schema)));
                }
                for (column, aggregate) in aggregates {
                    if let Some(e) = &aggregate.argument {
                        check_expr(e, &schema, env, name)?;
                    }
                    columns.push((column.clone(), aggregate_type(aggregate, &schema)));
                }
                Schema::Known(columns)
            }
            Op::Take(_) => schema,
            Op::Count => Schema::Known(vec![("Count".into(), ColumnType::Long)]),
            Op::Sort(keys) => {
                for (e, _) in keys {
                    check_expr(e, &schema, env, name)?;
                }
                schema
            }
            Op::Top { by, .. } => {
                check_expr(by, &schema, env, name)?;
                schema
            }
        };
    }
    Ok(schema)
}

fn check_expr(e: &Expr, schema: &Schema, env: &Env<'_>, op: &str) -> Result<(), QueryError> {
    match e {
        Expr::Literal(_) => Ok(()),
        Expr::Name(name, _) => {
            if schema.column(name).is_some() || env.scalar_names.iter().any(|n| n == name) {
                Ok(())
            } else {
                Err(semantic(
                    op,
                    format!("Failed to resolve scalar expression named '{name}'"),
                ))
            }
        }
        Expr::Member(inner, _) | Expr::Negate(inner) => check_expr(inner, schema, env, op),
        Expr::Index(a, b) | Expr::Binary(_, a, b) => {
            check_expr(a, schema, env, op)?;
            check_expr(b, schema, env, op)
        }
        Expr::Str { left, right, .. } => {
            check_expr(left, schema, env, op)?;
            check_expr(right, schema, env, op)
        }
        Expr::In { left, list, .. } | Expr::HasAny { left, list } => {
            check_expr(left, schema, env, op)?;
            list.iter().try_for_each(|x| check_expr(x, schema, env, op))
        }
        Expr::Call(name, args, _) => {
            match SCALAR_FUNCTIONS.iter().find(|(n, _, _)| n == name) {
                Some((_, min, max)) if (*min..=*max).contains(&args.len()) => {}
                Some((_, min, max)) => {
                    return Err(semantic(
                        op,
                        format!(
                            "function '{name}' expects {min} to {max} arguments, got {}",
                            args.len()
                        ),
                    ))
                }
                None => {
                    return Err(semantic(
                        op,
                        format!("Failed to resolve scalar function named '{name}'"),
                    ))
                }
            }
            args.iter().try_for_each(|x| check_expr(x, schema, env, op))
        }
    }
}

fn infer_type(e: &Expr, schema: &Schema) -> ColumnType {
    match e {
        Expr::Literal(v) => match v {
            Value::Bool(_) => ColumnType::Bool,
            Value::Long(_) => ColumnType::Long,
            Value::Real(_) => ColumnType::Real,
            Value::Str(_) => ColumnType::Str,
            Value::DateTime(_) => ColumnType::DateTime,
            Value::TimeSpan(_) => ColumnType::TimeSpan,
            Value::Null | Value::Dynamic(_) => ColumnType::Dynamic,
        },
        Expr::Name(n, _) => schema.column(n).unwrap_or(ColumnType::Dynamic),
        Expr::Binary(
            BinOp::Or
            | BinOp::And
            | BinOp::Eq
            | BinOp::Ne
            | BinOp::EqCi
            | BinOp::NeCi
            | BinOp::Lt
            | BinOp::Le
            | BinOp::Gt
            | BinOp::Ge,
            _,
            _,
        )
        | Expr::Str { .. }
        | Expr::In { .. }
        | Expr::HasAny { .. } => ColumnType::Bool,
        Expr::Call(name, _, _) => match name.as_str() {
            "tostring" | "tolower" | "toupper" | "strcat" => ColumnType::Str,
            "strlen" | "tolong" | "toint" | "array_length" => ColumnType::Long,
            "todouble" | "toreal" => ColumnType::Real,
            "isempty" | "isnotempty" | "isnull" | "isnotnull" | "not" | "tobool" => {
                ColumnType::Bool
            }
            "ago" | "now" | "todatetime" => ColumnType::DateTime,
            _ => ColumnType::Dynamic,
        },
        _ => ColumnType::Dynamic,
    }
}

fn aggregate_type(a: &Aggregate, schema: &Schema) -> ColumnType {
    match a.function {
        AggregateFn::Count | AggregateFn::CountIf | AggregateFn::DCount => ColumnType::Long,
        AggregateFn::Avg => ColumnType::Real,
        AggregateFn::MakeSet | AggregateFn::MakeList => ColumnType::Dynamic,
        _ => a
            .argument
            .as_ref()
            .map(|e| infer_type(e, schema))
            .unwrap_or(ColumnType::Dynamic),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Runs a query that [`bind`] accepted. `now` is nanoseconds since the epoch (the evaluation
/// time, which is what `now()` and `ago()` are relative to).
pub fn run(query: &Query, catalog: &dyn Catalog, now: i64) -> Result<Table, QueryError> {
    bind(query, catalog)?;
    let mut env = Env::default();
    let mut ctx = Ctx {
        now,
        catalog,
        depth: 0,
        steps: 0,
    };
    for binding in &query.lets {
        match &binding.value {
            LetValue::Scalar(e) => {
                let empty = Row {
                    columns: &[],
                    values: &[],
                };
                let v = ctx.eval(e, &empty, &env);
                env.scalars.insert(binding.name.clone(), v);
                env.scalar_names.push(binding.name.clone());
                env.tables.remove(&binding.name);
            }
            LetValue::Tabular(t) => {
                let scope = Rc::new(env.clone());
                env.scalars.remove(&binding.name);
                env.scalar_names.retain(|n| n != &binding.name);
                env.tables.insert(binding.name.clone(), (t, scope));
            }
        }
    }
    ctx.tabular(&query.body, &env)
}

struct Ctx<'c> {
    now: i64,
    catalog: &'c dyn Catalog,
    /// Nesting of tabular expressions being evaluated (bounded like binding).
    depth: usize,
    /// Tabular expressions evaluated so far (bounded like binding).
    steps: usize,
}

/// One row being evaluated: column names and values side by side.
struct Row<'r> {
    columns: &'r [(String, ColumnType)],
    values: &'r [Value],
}

impl Row<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.columns
            .iter()
            .position(|(n, _)| n == name)
            .and_then(|i| self.values.get(i))
    }
}

impl Ctx<'_> {
    fn source(&mut self, source: &Source, env: &Env<'_>) -> Result<Table, QueryError> {
        match source {
            Source::Name(name, _) => {
                if let Some((t, scope)) = env.tables.get(name) {
                    return self.tabular(t, scope);
                }
                let columns = match self.catalog.schema(name) {
                    Some(Schema::Known(columns)) => columns,
                    Some(Schema::Open) => Vec::new(),
                    None => return Err(unresolved_table(name, None)),
                };
                let width = columns.len();
                let rows = self
                    .catalog
                    .rows(name)
                    .into_iter()
                    .map(|mut r| {
                        r.resize(width, Value::Null);
                        r
                    })
                    .collect();
                Ok(Table { columns, rows })
            }
            Source::Nested(t) => self.tabular(t, env),
            Source::Union {
                inner,
                with_source,
                legs,
                ..
            } => {
                let mut parts = Vec::new();
                for leg in legs {
                    // Fuzzy legs that did not resolve were accepted by `bind`; skip them here.
                    if let Ok(table) = self.tabular(leg, env) {
                        parts.push((leg_name(leg), table));
                    }
                }
                let schemas: Vec<Schema> = parts
                    .iter()
                    .map(|(_, t)| Schema::Known(t.columns.clone()))
                    .collect();
                let Schema::Known(columns) = union_schema(&schemas, *inner, with_source.as_deref())
                else {
                    return Ok(Table {
                        columns: Vec::new(),
                        rows: Vec::new(),
                    });
                };
                let mut rows = Vec::new();
                for (name, table) in parts {
                    let Table {
                        columns: leg_columns,
                        rows: leg_rows,
                    } = table;
                    let leg = Table {
                        columns: leg_columns,
                        rows: Vec::new(),
                    };
                    for row in leg_rows {
                        let values = columns
                            .iter()
                            .map(|(column, ty)| {
                                if with_source.as_deref() == Some(column.as_str()) {
                                    return Value::Str(name.clone());
                                }
                                leg.column_index(column)
                                    .and_then(|i| row.get(i).cloned())
                                    .unwrap_or_else(|| ty.empty())
                            })
                            .collect();
                        rows.push(values);
                    }
                }
                Ok(Table { columns, rows })
            }
        }
    }

    fn tabular(&mut self, t: &Tabular, env: &Env<'_>) -> Result<Table, QueryError> {
        self.steps += 1;
        if self.depth >= MAX_NESTING || self.steps > MAX_STEPS {
            return Err(too_deep());
        }
        self.depth += 1;
        let result = self.source(&t.source, env).map(|mut table| {
            for op in &t.ops {
                table = self.operator(op, table, env);
            }
            table
        });
        self.depth -= 1;
        result
    }

    fn operator(&mut self, op: &Op, table: Table, env: &Env<'_>) -> Table {
        let Table { columns, rows } = table;
        match op {
            Op::Where(predicate) => {
                let rows = rows
                    .into_iter()
                    .filter(|values| {
                        let row = Row {
                            columns: &columns,
                            values,
                        };
                        self.eval(predicate, &row, env).is_true()
                    })
                    .collect();
                Table { columns, rows }
            }
            Op::Project(items) => {
                let out_columns = items
                    .iter()
                    .map(|(n, e)| (n.clone(), infer_type(e, &Schema::Known(columns.clone()))))
                    .collect();
                let rows = rows
                    .iter()
                    .map(|values| {
                        let row = Row {
                            columns: &columns,
                            values,
                        };
                        items.iter().map(|(_, e)| self.eval(e, &row, env)).collect()
                    })
                    .collect();
                Table {
                    columns: out_columns,
                    rows,
                }
            }
            Op::Extend(items) => {
                let schema = Schema::Known(columns.clone());
                let mut out_columns = columns.clone();
                let mut plan = Vec::new();
                for (name, e) in items {
                    let at = match out_columns.iter().position(|(n, _)| n == name) {
                        Some(i) => i,
                        None => {
                            out_columns.push((name.clone(), infer_type(e, &schema)));
                            out_columns.len() - 1
                        }
                    };
                    plan.push((at, e));
                }
                let width = out_columns.len();
                let rows = rows
                    .into_iter()
                    .map(|values| {
                        let computed: Vec<(usize, Value)> = {
                            let row = Row {
                                columns: &columns,
                                values: &values,
                            };
                            plan.iter()
                                .map(|(at, e)| (*at, self.eval(e, &row, env)))
                                .collect()
                        };
                        let mut values = values;
                        values.resize(width, Value::Null);
                        for (at, v) in computed {
                            if let Some(slot) = values.get_mut(at) {
                                *slot = v;
                            }
                        }
                        values
                    })
                    .collect();
                Table {
                    columns: out_columns,
                    rows,
                }
            }
            Op::Summarize { aggregates, by } => self.summarize(&columns, rows, aggregates, by, env),
            Op::Take(n) => {
                let n = usize::try_from(*n).unwrap_or(usize::MAX);
                Table {
                    columns,
                    rows: rows.into_iter().take(n).collect(),
                }
            }
            Op::Count => Table {
                columns: vec![("Count".into(), ColumnType::Long)],
                rows: vec![vec![Value::Long(
                    i64::try_from(rows.len()).unwrap_or(i64::MAX),
                )]],
            },
            Op::Distinct(items) => {
                let schema = Schema::Known(columns.clone());
                let out_columns: Vec<(String, ColumnType)> = items
                    .iter()
                    .map(|(n, e)| (n.clone(), infer_type(e, &schema)))
                    .collect();
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::new();
                for values in &rows {
                    let row = Row {
                        columns: &columns,
                        values,
                    };
                    let projected: Vec<Value> =
                        items.iter().map(|(_, e)| self.eval(e, &row, env)).collect();
                    let key: Vec<String> = projected.iter().map(Value::group_key).collect();
                    if seen.insert(key) {
                        out.push(projected);
                    }
                }
                Table {
                    columns: out_columns,
                    rows: out,
                }
            }
            Op::Sort(keys) => {
                let rows = self.sorted(&columns, rows, keys, env);
                Table { columns, rows }
            }
            Op::Top { n, by, descending } => {
                let keys = [(by.clone(), *descending)];
                let mut rows = self.sorted(&columns, rows, &keys, env);
                rows.truncate(usize::try_from(*n).unwrap_or(usize::MAX));
                Table { columns, rows }
            }
        }
    }

    fn sorted(
        &mut self,
        columns: &[(String, ColumnType)],
        rows: Vec<Vec<Value>>,
        keys: &[(Expr, bool)],
        env: &Env<'_>,
    ) -> Vec<Vec<Value>> {
        let mut keyed: Vec<(Vec<Value>, Vec<Value>)> = rows
            .into_iter()
            .map(|values| {
                let k = {
                    let row = Row {
                        columns,
                        values: &values,
                    };
                    keys.iter().map(|(e, _)| self.eval(e, &row, env)).collect()
                };
                (k, values)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, y), (_, descending)) in a.iter().zip(b).zip(keys) {
                // Nulls sort last either way.
                let order = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => return std::cmp::Ordering::Greater,
                    (false, true) => return std::cmp::Ordering::Less,
                    _ => x.total_cmp(y),
                };
                let order = if *descending { order.reverse() } else { order };
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
            }
            std::cmp::Ordering::Equal
        });
        keyed.into_iter().map(|(_, v)| v).collect()
    }

    fn summarize(
        &mut self,
        columns: &[(String, ColumnType)],
        rows: Vec<Vec<Value>>,
        aggregates: &[(String, Aggregate)],
        by: &[(String, Expr)],
        env: &Env<'_>,
    ) -> Table {
        let schema = Schema::Known(columns.to_vec());
        let mut out_columns: Vec<(String, ColumnType)> = by
            .iter()
            .map(|(n, e)| (n.clone(), infer_type(e, &schema)))
            .collect();
        out_columns.extend(
            aggregates
                .iter()
                .map(|(n, a)| (n.clone(), aggregate_type(a, &schema))),
        );
        // Groups in first-seen order.
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, (Vec<Value>, Vec<Vec<Value>>)> = HashMap::new();
        for values in rows {
            let keys: Vec<Value> = {
                let row = Row {
                    columns,
                    values: &values,
                };
                by.iter().map(|(_, e)| self.eval(e, &row, env)).collect()
            };
            let key: String = keys
                .iter()
                .map(Value::group_key)
                .collect::<Vec<_>>()
                .join("\u{1f}");
            match groups.get_mut(&key) {
                Some((_, members)) => members.push(values),
                None => {
                    order.push(key.clone());
                    groups.insert(key, (keys, vec![values]));
                }
            }
        }
        if by.is_empty() && groups.is_empty() {
            order.push(String::new());
            groups.insert(String::new(), (Vec::new(), Vec::new()));
        }
        let mut out = Vec::new();
        for key in order {
            let Some((keys, members)) = groups.remove(&key) else {
                continue;
            };
            let mut row = keys;
            for (_, aggregate) in aggregates {
                row.push(self.aggregate(aggregate, columns, &members, env));
            }
            out.push(row);
        }
        Table {
            columns: out_columns,
            rows: out,
        }
    }

    fn aggregate(
        &mut self,
        aggregate: &Aggregate,
        columns: &[(String, ColumnType)],
        members: &[Vec<Value>],
        env: &Env<'_>,
    ) -> Value {
        let count = |n: usize| Value::Long(i64::try_from(n).unwrap_or(i64::MAX));
        let values: Vec<Value> = match &aggregate.argument {
            Some(e) => members
                .iter()
                .map(|values| {
                    let row = Row { columns, values };
                    self.eval(e, &row, env)
                })
                .collect(),
            None => Vec::new(),
        };
        match aggregate.function {
            AggregateFn::Count => count(members.len()),
            AggregateFn::CountIf => count(values.iter().filter(|v| v.is_true()).count()),
            AggregateFn::DCount => {
                let distinct: std::collections::HashSet<String> = values
                    .iter()
                    .filter(|v| !v.is_empty())
                    .map(Value::group_key)
                    .collect();
                count(distinct.len())
            }
            AggregateFn::Sum => {
                let mut long: Option<i64> = Some(0);
                let mut real = 0.0;
                let mut any_real = false;
                for v in &values {
                    match v {
                        Value::Long(n) => {
                            long = long.and_then(|s| s.checked_add(*n));
                            real += *n as f64;
                        }
                        Value::Real(r) => {
                            any_real = true;
                            real += r;
                        }
                        _ => {}
                    }
                }
                match (any_real, long) {
                    (false, Some(s)) => Value::Long(s),
                    _ => Value::Real(real),
                }
            }
            AggregateFn::Avg => {
                let numbers: Vec<f64> = values
                    .iter()
                    .filter_map(|v| match v {
                        Value::Long(n) => Some(*n as f64),
                        Value::Real(r) => Some(*r),
                        _ => None,
                    })
                    .collect();
                if numbers.is_empty() {
                    Value::Null
                } else {
                    Value::Real(numbers.iter().sum::<f64>() / numbers.len() as f64)
                }
            }
            AggregateFn::Min | AggregateFn::Max => {
                let want = if aggregate.function == AggregateFn::Min {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                };
                let mut best: Option<Value> = None;
                for v in values.into_iter().filter(|v| !v.is_null()) {
                    best = match best {
                        Some(b) if v.compare(&b) != Some(want) => Some(b),
                        _ => Some(v),
                    };
                }
                best.unwrap_or(Value::Null)
            }
            AggregateFn::MakeSet => {
                let mut seen = std::collections::HashSet::new();
                let items: Vec<serde_json::Value> = values
                    .iter()
                    .filter(|v| !v.is_null() && seen.insert(v.group_key()))
                    .map(Value::to_json)
                    .collect();
                Value::Dynamic(serde_json::Value::Array(items))
            }
            AggregateFn::MakeList => Value::Dynamic(serde_json::Value::Array(
                values
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(Value::to_json)
                    .collect(),
            )),
            AggregateFn::TakeAny => values
                .into_iter()
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null),
        }
    }

    fn eval(&mut self, e: &Expr, row: &Row<'_>, env: &Env<'_>) -> Value {
        match e {
            Expr::Literal(v) => v.clone(),
            Expr::Name(name, _) => row
                .get(name)
                .cloned()
                .or_else(|| env.scalars.get(name).cloned())
                .unwrap_or(Value::Null),
            Expr::Member(inner, member) => member_of(self.eval(inner, row, env), member),
            Expr::Index(inner, index) => {
                let base = self.eval(inner, row, env);
                match self.eval(index, row, env) {
                    Value::Long(i) => element_of(base, i),
                    Value::Str(key) => member_of(base, &key),
                    _ => Value::Null,
                }
            }
            Expr::Negate(inner) => match self.eval(inner, row, env) {
                Value::Long(n) => n.checked_neg().map(Value::Long).unwrap_or(Value::Null),
                Value::Real(r) => Value::Real(-r),
                Value::TimeSpan(n) => n.checked_neg().map(Value::TimeSpan).unwrap_or(Value::Null),
                _ => Value::Null,
            },
            Expr::Binary(op, a, b) => {
                let a = self.eval(a, row, env);
                let b = self.eval(b, row, env);
                binary(*op, &a, &b)
            }
            Expr::Str {
                op,
                negated,
                left,
                right,
            } => {
                let text = self.eval(left, row, env).to_text();
                let term = self.eval(right, row, env).to_text();
                Value::Bool(string_op(*op, &text, &term) != *negated)
            }
            Expr::In {
                left,
                list,
                case_insensitive,
                negated,
            } => {
                let needle = self.eval(left, row, env);
                if needle.is_null() {
                    return Value::Bool(*negated);
                }
                let items = self.flatten(list, row, env);
                let found = items.iter().any(|item| {
                    if *case_insensitive {
                        needle.equals_ignore_case(item).is_true()
                    } else {
                        needle.equals(item).is_true()
                    }
                });
                Value::Bool(found != *negated)
            }
            Expr::HasAny { left, list } => {
                let text = self.eval(left, row, env).to_text();
                let items = self.flatten(list, row, env);
                Value::Bool(
                    items
                        .iter()
                        .any(|item| string_op(StringOp::Has, &text, &item.to_text())),
                )
            }
            Expr::Call(name, args, _) => self.call(name, args, row, env),
        }
    }

    /// List items with dynamic arrays spread out, as `in` and `has_any` take them.
    fn flatten(&mut self, list: &[Expr], row: &Row<'_>, env: &Env<'_>) -> Vec<Value> {
        let mut out = Vec::new();
        for item in list {
            match self.eval(item, row, env) {
                Value::Dynamic(serde_json::Value::Array(items)) => {
                    out.extend(items.into_iter().map(Value::from_json))
                }
                other => out.push(other),
            }
        }
        out
    }

    fn call(&mut self, name: &str, args: &[Expr], row: &Row<'_>, env: &Env<'_>) -> Value {
        let mut values: Vec<Value> = Vec::with_capacity(args.len());
        // iif/coalesce evaluate lazily in Kusto too; evaluating all is equivalent here (no
        // side effects).
        for a in args {
            values.push(self.eval(a, row, env));
        }
        let first = values.first().cloned().unwrap_or(Value::Null);
        match name {
            "ago" => match first {
                Value::TimeSpan(ns) => self
                    .now
                    .checked_sub(ns)
                    .map(Value::DateTime)
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            },
            "now" => match values.first() {
                None => Value::DateTime(self.now),
                Some(Value::TimeSpan(ns)) => self
                    .now
                    .checked_add(*ns)
                    .map(Value::DateTime)
                    .unwrap_or(Value::Null),
                Some(_) => Value::Null,
            },
            "tostring" => Value::Str(first.to_text()),
            "tolower" => Value::Str(first.to_text().to_lowercase()),
            "toupper" => Value::Str(first.to_text().to_uppercase()),
            "strlen" => Value::Long(i64::try_from(first.to_text().chars().count()).unwrap_or(0)),
            "isempty" => Value::Bool(first.is_empty()),
            "isnotempty" => Value::Bool(!first.is_empty()),
            "isnull" => Value::Bool(first.is_null()),
            "isnotnull" => Value::Bool(!first.is_null()),
            "not" => match first {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            "iif" | "iff" => {
                let choice = if first.is_true() { 1 } else { 2 };
                values.get(choice).cloned().unwrap_or(Value::Null)
            }
            "strcat" => Value::Str(values.iter().map(Value::to_text).collect()),
            "tolong" | "toint" => match first {
                Value::Long(n) => Value::Long(n),
                Value::Real(r) if r.is_finite() && r.abs() < 9.2e18 => Value::Long(r as i64),
                Value::Bool(b) => Value::Long(i64::from(b)),
                Value::Str(s) => s.trim().parse().map(Value::Long).unwrap_or(Value::Null),
                _ => Value::Null,
            },
            "todouble" | "toreal" => match first {
                Value::Long(n) => Value::Real(n as f64),
                Value::Real(r) => Value::Real(r),
                Value::Str(s) => s.trim().parse().map(Value::Real).unwrap_or(Value::Null),
                _ => Value::Null,
            },
            "tobool" => match first {
                Value::Bool(b) => Value::Bool(b),
                Value::Long(n) => Value::Bool(n != 0),
                Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Null,
                },
                _ => Value::Null,
            },
            "todatetime" => match first {
                Value::DateTime(n) => Value::DateTime(n),
                Value::Str(s) => Value::parse_datetime(&s).unwrap_or(Value::Null),
                _ => Value::Null,
            },
            "parse_json" | "todynamic" => match first {
                Value::Str(s) => serde_json::from_str(&s)
                    .map(Value::from_json)
                    .unwrap_or(Value::Str(s)),
                other => other,
            },
            "array_length" => match first {
                Value::Dynamic(serde_json::Value::Array(a)) => {
                    Value::Long(i64::try_from(a.len()).unwrap_or(i64::MAX))
                }
                _ => Value::Null,
            },
            "coalesce" => values
                .into_iter()
                .find(|v| !v.is_empty())
                .unwrap_or(Value::Null),
            "bin" => match (first, values.get(1)) {
                (Value::DateTime(t), Some(Value::TimeSpan(size))) if *size > 0 => {
                    Value::DateTime(t.div_euclid(*size).saturating_mul(*size))
                }
                (Value::Long(n), Some(Value::Long(size))) if *size > 0 => {
                    Value::Long(n.div_euclid(*size).saturating_mul(*size))
                }
                (Value::Real(r), Some(Value::Real(size))) if *size > 0.0 => {
                    Value::Real((r / size).floor() * size)
                }
                _ => Value::Null,
            },
            _ => Value::Null,
        }
    }
}

fn member_of(base: Value, member: &str) -> Value {
    match base {
        Value::Dynamic(serde_json::Value::Object(mut map)) => map
            .remove(member)
            .map(Value::from_json)
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// `array[i]`; negative indexes count from the end ("The dynamic data type").
fn element_of(base: Value, index: i64) -> Value {
    let Value::Dynamic(serde_json::Value::Array(items)) = base else {
        return Value::Null;
    };
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let at = if index < 0 { len + index } else { index };
    usize::try_from(at)
        .ok()
        .and_then(|i| items.into_iter().nth(i))
        .map(Value::from_json)
        .unwrap_or(Value::Null)
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
    use std::cmp::Ordering::*;
    let ordered = |want: &[std::cmp::Ordering]| match a.compare(b) {
        _ if a.is_null() || b.is_null() => Value::Null,
        Some(o) => Value::Bool(want.contains(&o)),
        None => Value::Null,
    };
    match op {
        BinOp::And => match (a, b) {
            (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
            (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
            _ => Value::Null,
        },
        BinOp::Or => match (a, b) {
            (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
            (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
            _ => Value::Null,
        },
        BinOp::Eq => a.equals(b),
        BinOp::Ne => not(a.equals(b)),
        BinOp::EqCi => a.equals_ignore_case(b),
        BinOp::NeCi => not(a.equals_ignore_case(b)),
        BinOp::Lt => ordered(&[Less]),
        BinOp::Le => ordered(&[Less, Equal]),
        BinOp::Gt => ordered(&[Greater]),
        BinOp::Ge => ordered(&[Greater, Equal]),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => arithmetic(op, a, b),
    }
}

fn not(v: Value) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        other => other,
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Value {
    let long = |r: Option<i64>| r.map(Value::Long).unwrap_or(Value::Null);
    match (a, b) {
        (Value::Long(x), Value::Long(y)) => match op {
            BinOp::Add => long(x.checked_add(*y)),
            BinOp::Sub => long(x.checked_sub(*y)),
            BinOp::Mul => long(x.checked_mul(*y)),
            BinOp::Div => long(x.checked_div(*y)),
            BinOp::Mod => long(x.checked_rem(*y)),
            _ => Value::Null,
        },
        (Value::DateTime(t), Value::TimeSpan(d)) => match op {
            BinOp::Add => t
                .checked_add(*d)
                .map(Value::DateTime)
                .unwrap_or(Value::Null),
            BinOp::Sub => t
                .checked_sub(*d)
                .map(Value::DateTime)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        (Value::DateTime(t), Value::DateTime(u)) if op == BinOp::Sub => t
            .checked_sub(*u)
            .map(Value::TimeSpan)
            .unwrap_or(Value::Null),
        (Value::TimeSpan(x), Value::TimeSpan(y)) => match op {
            BinOp::Add => x
                .checked_add(*y)
                .map(Value::TimeSpan)
                .unwrap_or(Value::Null),
            BinOp::Sub => x
                .checked_sub(*y)
                .map(Value::TimeSpan)
                .unwrap_or(Value::Null),
            BinOp::Div if *y != 0 => Value::Real(*x as f64 / *y as f64),
            _ => Value::Null,
        },
        (Value::TimeSpan(x), Value::Long(n)) => match op {
            BinOp::Mul => x
                .checked_mul(*n)
                .map(Value::TimeSpan)
                .unwrap_or(Value::Null),
            BinOp::Div => x
                .checked_div(*n)
                .map(Value::TimeSpan)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        _ => {
            let (Some(x), Some(y)) = (real(a), real(b)) else {
                return Value::Null;
            };
            let r = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div if y != 0.0 => x / y,
                BinOp::Mod if y != 0.0 => x % y,
                _ => return Value::Null,
            };
            Value::Real(r)
        }
    }
}

fn real(v: &Value) -> Option<f64> {
    match v {
        Value::Long(n) => Some(*n as f64),
        Value::Real(r) => Some(*r),
        _ => None,
    }
}

/// The string operators. `has` looks for a whole term: the match must not continue an
/// alphanumeric run on either side ("String operators": "Kusto breaks strings into terms at
/// non-alphanumeric characters"; `has` matches a term, or, for a right side spanning several
/// terms, consecutive terms).
pub fn string_op(op: StringOp, text: &str, term: &str) -> bool {
    let fold = |s: &str| s.to_lowercase();
    match op {
        StringOp::Has => has_term(&fold(text), &fold(term)),
        StringOp::HasCs => has_term(text, term),
        StringOp::Contains => fold(text).contains(&fold(term)),
        StringOp::ContainsCs => text.contains(term),
        StringOp::StartsWith => fold(text).starts_with(&fold(term)),
        StringOp::StartsWithCs => text.starts_with(term),
        StringOp::EndsWith => fold(text).ends_with(&fold(term)),
        StringOp::EndsWithCs => text.ends_with(term),
    }
}

fn has_term(text: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let starts_word = term.chars().next().is_some_and(char::is_alphanumeric);
    let ends_word = term.chars().last().is_some_and(char::is_alphanumeric);
    text.match_indices(term).any(|(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().last());
        let after = text.get(at + term.len()..).and_then(|s| s.chars().next());
        !(starts_word && alnum(before) || ends_word && alnum(after))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_matches_whole_terms_only() {
        assert!(string_op(
            StringOp::Has,
            "Reset password (by admin)",
            "password"
        ));
        assert!(!string_op(
            StringOp::Has,
            "passwordless sign-in",
            "password"
        ));
        assert!(string_op(
            StringOp::Has,
            r#"[{"userPrincipalName":"BG-01@contoso.com"}]"#,
            "bg-01@contoso.com"
        ));
        assert!(!string_op(
            StringOp::Has,
            r#"[{"userPrincipalName":"xbg-01@contoso.com"}]"#,
            "bg-01@contoso.com"
        ));
        assert!(!string_op(StringOp::HasCs, "Password", "password"));
        assert!(string_op(StringOp::Contains, "passwordless", "WORD"));
        assert!(!string_op(StringOp::ContainsCs, "passwordless", "WORD"));
    }
}
