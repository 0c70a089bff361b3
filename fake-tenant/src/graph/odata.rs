//! OData query options as Microsoft Graph applies them to collections: `$filter`, `$select`,
//! `$top`, `$skiptoken` paging with `@odata.nextLink`, `$count` and `@odata.context`.
//!
//! Every Graph area uses these helpers so the rules stay in one place:
//! - string comparisons in `$filter` are case-insensitive, as they are for directory objects
//!   (a UPN matches whatever its casing);
//! - on directory objects, `ne`, `not`, `endsWith` and `$count` are "advanced queries" that need
//!   the header `ConsistencyLevel: eventual` plus `$count=true`, else `400` (facts file §2);
//! - `$skip` is not supported; callers page by following `@odata.nextLink` as given.
//!
//! Typical handler:
//! ```ignore
//! let read = ReadRequest::parse(&uri, &headers, USER_RULES)?;
//! let users = tenant.directory.users.list(lag).into_iter().cloned().collect();
//! Ok(read.collection(users, &location))
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::GraphError;

/// How one entity set answers query options.
#[derive(Debug, Clone)]
pub struct QueryRules {
    /// OData type without namespace, e.g. `user`; names the resource in error messages and
    /// finds the schema whose properties `$select` and `$filter` may name.
    pub entity: &'static str,
    /// Page size when `$top` is absent.
    pub default_page_size: usize,
    /// Largest `$top` the service accepts (999 for `/users`).
    pub max_top: usize,
    /// Directory objects (users, groups, members, deleted items) follow the advanced-query
    /// rules: `ne`/`not`/`endsWith`/`$count` need `ConsistencyLevel: eventual`.
    pub directory_object: bool,
    /// Properties returned when `$select` is absent; `None` means all stored properties.
    pub default_select: Option<&'static [&'static str]>,
}

/// Parsed query options of one request.
#[derive(Debug, Clone, Default)]
pub struct ODataQuery {
    pub filter: Option<Filter>,
    /// `$select` property names in request order.
    pub select: Option<Vec<String>>,
    pub top: Option<usize>,
    /// Offset into the filtered collection, decoded from `$skiptoken`.
    pub offset: usize,
    pub count: bool,
    /// `$expand` as sent, for handlers that support it (PIM policies).
    pub expand: Option<String>,
    /// `$search` clauses (`"property:term"`), any of which may match (`OR`) or all (`AND`).
    pub search: Option<Search>,
    /// `$orderby` as sent: one property and optional `asc`/`desc`.
    pub order_by: Option<(String, bool)>,
    /// Every query pair as sent, so `@odata.nextLink` keeps the caller's options.
    pairs: Vec<(String, String)>,
}

/// The location of a collection, for `@odata.nextLink` and `@odata.context`.
#[derive(Debug, Clone)]
pub struct CollectionLocation {
    /// `state.base_url()`, e.g. `http://127.0.0.1:4567`.
    pub base_url: String,
    /// Path below `/v1.0`, e.g. `/users` or `/groups/{id}/members`.
    pub path: String,
    /// The `$metadata#...` fragment, e.g. `users` or `identity/conditionalAccess/policies`.
    pub context: String,
}

impl CollectionLocation {
    pub fn new(base_url: String, path: impl Into<String>, context: impl Into<String>) -> Self {
        CollectionLocation {
            base_url,
            path: path.into(),
            context: context.into(),
        }
    }
}

fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn unsupported_query(property: &str, entity: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        format!(
            "Unsupported or invalid query filter clause specified for property '{property}' of resource '{}'.",
            capitalize(entity)
        ),
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl ODataQuery {
    /// Parses the raw query string (`uri.query()`) and checks it against the entity's rules.
    pub fn parse(
        raw: Option<&str>,
        headers: &HeaderMap,
        rules: &QueryRules,
    ) -> Result<Self, GraphError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut query = ODataQuery {
            pairs: pairs.clone(),
            ..Default::default()
        };
        let known = schema_properties(rules.entity);
        for (key, value) in &pairs {
            // Graph accepts the system query options with or without the `$` prefix.
            let option = key.trim_start_matches('$').to_ascii_lowercase();
            match option.as_str() {
                "filter" => query.filter = Some(Filter::parse(value)?),
                "select" => {
                    let names: Vec<String> = value
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if let Some(known) = known {
                        for name in &names {
                            if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                                return Err(bad_request(format!(
                                    "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.{}'.",
                                    rules.entity
                                )));
                            }
                        }
                    }
                    query.select = Some(names);
                }
                "top" => {
                    let top: i64 = value.trim().parse().map_err(|_| {
                        bad_request(format!(
                            "Invalid value '{value}' for $top query option found."
                        ))
                    })?;
                    if top < 1 || top as usize > rules.max_top {
                        return Err(GraphError::bad_request(format!(
                            "Invalid page size specified: '{top}'. Must be between 1 and {} inclusive.",
                            rules.max_top
                        )));
                    }
                    query.top = Some(top as usize);
                }
                "skiptoken" => query.offset = decode_skip_token(value)?,
                "skip" => return Err(bad_request("'$skip' is not supported by the service.")),
                "count" => {
                    query.count = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(bad_request(format!(
                                "Invalid value '{value}' for $count query option found."
                            )))
                        }
                    }
                }
                "expand" => query.expand = Some(value.clone()),
                "search" => query.search = Some(Search::parse(value, known, rules)?),
                "orderby" => {
                    let mut words = value.split_whitespace();
                    let property = words.next().unwrap_or("").to_owned();
                    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
                        None | Some("asc") => false,
                        Some("desc") => true,
                        Some(_) => {
                            return Err(bad_request(format!("Invalid $orderby clause '{value}'.")))
                        }
                    };
                    if property.is_empty() || words.next().is_some() || value.contains(',') {
                        return Err(GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "Request_UnsupportedQuery",
                            "Sorting by more than one property is not supported.",
                        ));
                    }
                    query.order_by = Some((property, descending));
                }
                _ => {}
            }
        }
        if let (Some(filter), Some(known)) = (&query.filter, known) {
            for property in filter.properties() {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(&property)) {
                    return Err(unsupported_query(&property, rules.entity));
                }
            }
        }
        if rules.directory_object {
            let eventual = headers
                .get("consistencylevel")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
            let advanced_filter = query.filter.as_ref().and_then(Filter::advanced_operator);
            if query.search.is_some() && !eventual {
                return Err(GraphError::bad_request(
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                ));
            }
            if query.count && !eventual {
                // What the directory answers for `$count=true` without the header.
                return Err(GraphError::bad_request(
                    "$count is not currently supported.",
                ));
            }
            if let Some(property) = advanced_filter {
                if !(eventual && query.count) {
                    return Err(unsupported_query(&property, rules.entity));
                }
            }
            if query.order_by.is_some() && query.filter.is_some() && !(eventual && query.count) {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Sorting not supported for current query.",
                ));
            }
        }
        Ok(query)
    }

    /// Whether `object` passes `$filter`.
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(object))
            && self.search.as_ref().is_none_or(|s| s.matches(object))
    }

    /// Trims an object to `$select` (or the entity's default property set). `@odata.type` is
    /// kept because Graph always returns it on derived types.
    pub fn project(&self, object: &Map<String, Value>, rules: &QueryRules) -> Map<String, Value> {
        let wanted: Option<Vec<&str>> = match (&self.select, rules.default_select) {
            (Some(select), _) => Some(select.iter().map(String::as_str).collect()),
            (None, Some(default)) => Some(default.to_vec()),
            (None, None) => None,
        };
        let Some(wanted) = wanted else {
            return object.clone();
        };
        let mut out = Map::new();
        if let Some(t) = object.get("@odata.type") {
            out.insert("@odata.type".into(), t.clone());
        }
        for name in wanted {
            let hit = object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(k, v)| (k.clone(), v.clone()));
            // Selected properties without a value come back as null, like Graph.
            let (key, value) =
                hit.unwrap_or_else(|| (canonical_name(rules.entity, name), Value::Null));
            out.insert(key, value);
        }
        out
    }

    fn next_link(&self, location: &CollectionLocation, offset: usize) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken") {
                serializer.append_pair(k, v);
            }
        }
        serializer.append_pair("$skiptoken", &encode_skip_token(offset));
        format!(
            "{}/v1.0{}?{}",
            location.base_url,
            location.path,
            serializer.finish()
        )
    }
}

/// The property name as the schema spells it (for a `$select` of a property with no value).
fn canonical_name(entity: &str, name: &str) -> String {
    schema_properties(entity)
        .and_then(|known| known.iter().find(|k| k.eq_ignore_ascii_case(name)).cloned())
        .unwrap_or_else(|| name.to_owned())
}

// Graph's skip tokens are opaque; ours carry the offset of the next page. Opaque to callers is
// what matters: they must follow nextLink as given.
fn encode_skip_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("page:{offset}"))
}

fn decode_skip_token(token: &str) -> Result<usize, GraphError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| s.strip_prefix("page:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            GraphError::new(
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            )
        })
}

/// Applies `$filter`, `$orderby`, `$count`, paging and `$select` to `items` and builds the
/// collection body: `@odata.context`, optional `@odata.count`, `value`, optional `@odata.nextLink`.
pub fn collection_response(
    items: Vec<Map<String, Value>>,
    query: &ODataQuery,
    rules: &QueryRules,
    location: &CollectionLocation,
) -> Value {
    let mut matching: Vec<Map<String, Value>> =
        items.into_iter().filter(|o| query.matches(o)).collect();
    if let Some((property, descending)) = &query.order_by {
        matching.sort_by(|a, b| {
            let ord = compare_for_order(lookup(a, property), lookup(b, property));
            if *descending {
                ord.reverse()
            } else {
                ord
            }
        });
    }
    let total = matching.len();
    let page_size = query.top.unwrap_or(rules.default_page_size).max(1);
    let start = query.offset.min(total);
    let end = (start + page_size).min(total);
    let value: Vec<Value> = matching[start..end]
        .iter()
        .map(|o| Value::Object(query.project(o, rules)))
        .collect();

    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context_url(location, query.select.as_deref())),
    );
    if query.count {
        body.insert("@odata.count".into(), Value::from(total as u64));
    }
    body.insert("value".into(), Value::Array(value));
    if end < total {
        body.insert(
            "@odata.nextLink".into(),
            Value::String(query.next_link(location, end)),
        );
    }
    Value::Object(body)
}

/// One entity with `@odata.context` (`...$metadata#users/$entity`) and `$select` applied.
pub fn entity_response(
    object: &Map<String, Value>,
    query: &ODataQuery,
    rules: &QueryRules,
    location: &CollectionLocation,
) -> Value {
    let mut body = Map::new();
    let context = context_url(location, query.select.as_deref());
    body.insert(
        "@odata.context".into(),
        Value::String(format!("{context}/$entity")),
    );
    body.extend(query.project(object, rules));
    Value::Object(body)
}

/// A GET on one entity set whose query options have been checked against the set's rules:
/// everything a handler needs to answer with a collection or a single entity.
#[derive(Debug)]
pub struct ReadRequest {
    pub query: ODataQuery,
    pub rules: QueryRules,
}

impl ReadRequest {
    pub fn parse(uri: &Uri, headers: &HeaderMap, rules: QueryRules) -> Result<Self, GraphError> {
        let query = ODataQuery::parse(uri.query(), headers, &rules)?;
        Ok(ReadRequest { query, rules })
    }

    /// See [`collection_response`].
    pub fn collection(
        &self,
        items: Vec<Map<String, Value>>,
        location: &CollectionLocation,
    ) -> Json<Value> {
        Json(collection_response(
            items,
            &self.query,
            &self.rules,
            location,
        ))
    }

    /// See [`entity_response`].
    pub fn entity(
        &self,
        object: &Map<String, Value>,
        location: &CollectionLocation,
    ) -> Json<Value> {
        Json(entity_response(object, &self.query, &self.rules, location))
    }
}

fn context_url(location: &CollectionLocation, select: Option<&[String]>) -> String {
    let mut url = format!("{}/v1.0/$metadata#{}", location.base_url, location.context);
    if let Some(select) = select {
        url.push('(');
        url.push_str(&select.join(","));
        url.push(')');
    }
    url
}

fn compare_for_order(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        // Nulls sort first, as in Graph's ascending order.
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Follows a `/`-separated property path (`a/b`) through nested objects.
fn lookup<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('/');
    let first = segments.next()?;
    let mut current = get_ci(object, first)?;
    for segment in segments {
        current = get_ci(current.as_object()?, segment)?;
    }
    Some(current)
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The vendored Graph subset (`specs/msgraph/v1.0-breakglass-subset.json`), parsed once.
pub fn graph_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_str(include_str!(
            "../../../specs/msgraph/v1.0-breakglass-subset.json"
        ))
        .unwrap_or(Value::Null)
    })
}

/// The members of a Graph enum type (e.g. `conditionalAccessGrantControl`), in the order the
/// subset lists them (evolvable members come after `unknownFutureValue`).
pub fn enum_members(name: &str) -> Vec<&'static str> {
    graph_spec()["components"]["schemas"][format!("microsoft.graph.{name}")]["enum"]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A schema's property names, computed once per entity.
type PropertySet = Option<&'static BTreeSet<String>>;

/// Property names an entity's schema declares (with inherited ones), from the vendored Graph
/// subset. `None` when the subset has no such schema, which disables name checks.
pub fn schema_properties(entity: &str) -> Option<&'static BTreeSet<String>> {
    static CACHE: OnceLock<Mutex<HashMap<String, PropertySet>>> = OnceLock::new();
    let spec = graph_spec();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    *cache.entry(entity.to_owned()).or_insert_with(|| {
        let schemas = spec["components"]["schemas"].as_object()?;
        let mut names = BTreeSet::new();
        collect_properties(schemas, &format!("microsoft.graph.{entity}"), &mut names)?;
        names.remove("@odata.type");
        // Leaked once per entity name: a handful of small sets for the process lifetime.
        Some(&*Box::leak(Box::new(names)))
    })
}

fn collect_properties(
    schemas: &Map<String, Value>,
    name: &str,
    out: &mut BTreeSet<String>,
) -> Option<()> {
    let schema = schemas.get(name)?;
    collect_from(schemas, schema, out);
    Some(())
}

fn collect_from(schemas: &Map<String, Value>, schema: &Value, out: &mut BTreeSet<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        if let Some(name) = r.strip_prefix("#/components/schemas/") {
            let _ = collect_properties(schemas, name, out);
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            collect_from(schemas, part, out);
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.keys().cloned());
    }
}

// ---------------------------------------------------------------------------------------------
// $search

/// `$search="displayName:glass" OR "mail:bg"`: directory search is tokenized, so a term matches
/// a property when one of its words (split on spaces and punctuation) starts with the term.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    clauses: Vec<(String, String)>,
    all: bool,
}

impl Search {
    fn parse(
        text: &str,
        known: Option<&BTreeSet<String>>,
        rules: &QueryRules,
    ) -> Result<Search, GraphError> {
        let invalid = || bad_request(format!("Syntax error: invalid $search clause '{text}'."));
        let mut clauses = Vec::new();
        let mut operators = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let quoted = rest.strip_prefix('"').ok_or_else(invalid)?;
            let end = quoted.find('"').ok_or_else(invalid)?;
            let (property, term) = quoted[..end].split_once(':').ok_or_else(invalid)?;
            if let Some(known) = known {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(property)) {
                    return Err(unsupported_query(property, rules.entity));
                }
            }
            clauses.push((property.to_owned(), term.to_lowercase()));
            rest = quoted[end + 1..].trim_start();
            if rest.is_empty() {
                break;
            }
            let (operator, after) = rest.split_once(' ').ok_or_else(invalid)?;
            match operator {
                "AND" | "OR" => operators.push(operator),
                _ => return Err(invalid()),
            }
            rest = after.trim_start();
        }
        if clauses.is_empty() || operators.windows(2).any(|w| w[0] != w[1]) {
            return Err(invalid());
        }
        Ok(Search {
            clauses,
            all: operators.first() == Some(&"AND"),
        })
    }

    fn matches(&self, object: &Map<String, Value>) -> bool {
        let hit = |(property, term): &(String, String)| {
            lookup(object, property)
                .and_then(Value::as_str)
                .is_some_and(|value| {
                    value
                        .to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|word| word.starts_with(term.as_str()))
                })
        };
        if self.all {
            self.clauses.iter().all(hit)
        } else {
            self.clauses.iter().any(hit)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// $filter

/// A parsed `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare {
        path: String,
        op: CompareOp,
        value: Literal,
    },
    In {
        path: String,
        values: Vec<Literal>,
    },
    StartsWith {
        path: String,
        prefix: String,
    },
    EndsWith {
        path: String,
        suffix: String,
    },
    /// `path/any(x: <predicate on x>)` over a collection property.
    Any {
        path: String,
        variable: String,
        predicate: Box<Filter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Bool(bool),
    Number(f64),
    Null,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, GraphError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, pos: 0 };
        let filter = parser.or_expr()?;
        if parser.pos != parser.tokens.len() {
            return Err(invalid_filter(text));
        }
        Ok(filter)
    }

    /// Top-level property names the expression reads (lambda variables resolved).
    pub fn properties(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_properties(None, &mut out);
        out
    }

    fn collect_properties(&self, variable: Option<&str>, out: &mut Vec<String>) {
        let mut push = |path: &str| {
            let first = path.split('/').next().unwrap_or(path);
            if Some(first) != variable {
                out.push(first.to_owned());
            }
        };
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.collect_properties(variable, out);
                b.collect_properties(variable, out);
            }
            Filter::Not(a) => a.collect_properties(variable, out),
            Filter::Compare { path, .. }
            | Filter::In { path, .. }
            | Filter::StartsWith { path, .. }
            | Filter::EndsWith { path, .. } => push(path),
            Filter::Any {
                path,
                variable: v,
                predicate,
            } => {
                push(path);
                predicate.collect_properties(Some(v), out);
            }
        }
    }

    /// The property of the first advanced-query operator (`ne`, `not`, `endsWith`), if any.
    pub fn advanced_operator(&self) -> Option<String> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.advanced_operator().or_else(|| b.advanced_operator())
            }
            Filter::Not(a) => Some(a.properties().into_iter().next().unwrap_or_default()),
            Filter::Compare {
                path,
                op: CompareOp::Ne,
                ..
            }
            | Filter::EndsWith { path, .. } => Some(path.clone()),
            // "To filter against the certificateUserIds object, the request must include the
            // `$count=true` query string, and the ConsistencyLevel header must be set to
            // `eventual`" (Mapping to the certificateUserIds attribute in Microsoft Entra ID).
            Filter::Any { path, .. }
                if path
                    .to_ascii_lowercase()
                    .starts_with("authorizationinfo/certificateuserids") =>
            {
                Some(path.clone())
            }
            Filter::Any {
                predicate, path, ..
            } => predicate.advanced_operator().map(|_| path.clone()),
            _ => None,
        }
    }

    /// Evaluates the filter on one object. Missing properties read as null.
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        self.eval(object, None)
    }

    fn eval(&self, object: &Map<String, Value>, bound: Option<(&str, &Value)>) -> bool {
        let resolve = |path: &str| -> Option<Value> {
            if let Some((name, value)) = bound {
                let mut segments = path.splitn(2, '/');
                if segments.next() == Some(name) {
                    return match segments.next() {
                        None => Some(value.clone()),
                        Some(rest) => value.as_object().and_then(|o| lookup(o, rest)).cloned(),
                    };
                }
            }
            lookup(object, path).cloned()
        };
        match self {
            Filter::And(a, b) => a.eval(object, bound) && b.eval(object, bound),
            Filter::Or(a, b) => a.eval(object, bound) || b.eval(object, bound),
            Filter::Not(a) => !a.eval(object, bound),
            Filter::Compare { path, op, value } => compare(resolve(path).as_ref(), *op, value),
            Filter::In { path, values } => {
                let actual = resolve(path);
                values
                    .iter()
                    .any(|v| compare(actual.as_ref(), CompareOp::Eq, v))
            }
            Filter::StartsWith { path, prefix } => resolve(path)
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().starts_with(&prefix.to_lowercase())),
            Filter::EndsWith { path, suffix } => resolve(path)
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().ends_with(&suffix.to_lowercase())),
            Filter::Any {
                path,
                variable,
                predicate,
            } => match resolve(path) {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|item| predicate.eval(object, Some((variable, item)))),
                _ => false,
            },
        }
    }
}

fn compare(actual: Option<&Value>, op: CompareOp, expected: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (actual.unwrap_or(&Value::Null), expected) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::String(a), Literal::String(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Literal::Number(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        _ => None,
    };
    match op {
        CompareOp::Eq => ordering == Some(Ordering::Equal),
        CompareOp::Ne => ordering != Some(Ordering::Equal),
        CompareOp::Gt => ordering == Some(Ordering::Greater),
        CompareOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        CompareOp::Lt => ordering == Some(Ordering::Less),
        CompareOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
    }
}

fn invalid_filter(text: &str) -> GraphError {
    bad_request(format!("Invalid filter clause: '{text}'."))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, GraphError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' => {
                tokens.push(Token::Colon);
                i += 1;
            }
            '\'' => {
                // OData escapes a quote inside a string literal by doubling it.
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid_filter(text)),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | ',' | ':' | '\'')
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, token: Token) -> Result<(), GraphError> {
        if self.next() == Some(token) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn error(&self) -> GraphError {
        let text: Vec<String> = self
            .tokens
            .iter()
            .map(|t| match t {
                Token::Word(w) => w.clone(),
                Token::Str(s) => format!("'{s}'"),
                Token::Open => "(".into(),
                Token::Close => ")".into(),
                Token::Comma => ",".into(),
                Token::Colon => ":".into(),
            })
            .collect();
        invalid_filter(&text.join(" "))
    }

    fn or_expr(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, GraphError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or_expr()?;
            self.expect(Token::Close)?;
            return Ok(inner);
        }
        let Some(Token::Word(word)) = self.next() else {
            return Err(self.error());
        };
        let lower = word.to_ascii_lowercase();
        if (lower == "startswith" || lower == "endswith") && self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let Some(Token::Word(path)) = self.next() else {
                return Err(self.error());
            };
            self.expect(Token::Comma)?;
            let Some(Token::Str(text)) = self.next() else {
                return Err(self.error());
            };
            self.expect(Token::Close)?;
            return Ok(if lower == "startswith" {
                Filter::StartsWith { path, prefix: text }
            } else {
                Filter::EndsWith { path, suffix: text }
            });
        }
        // `path/any(x: ...)`: the word ends in `/any` and is followed by a parenthesis.
        if let Some(path) = word
            .strip_suffix("/any")
            .filter(|_| self.peek() == Some(&Token::Open))
        {
            self.pos += 1;
            let Some(Token::Word(variable)) = self.next() else {
                return Err(self.error());
            };
            self.expect(Token::Colon)?;
            let predicate = self.or_expr()?;
            self.expect(Token::Close)?;
            return Ok(Filter::Any {
                path: path.to_owned(),
                variable,
                predicate: Box::new(predicate),
            });
        }
        if self.peek() == Some(&Token::Open) {
            // A function we do not know (contains, etc.); Graph rejects those on directory objects.
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported Query.",
            ));
        }
        let path = word;
        let Some(Token::Word(op)) = self.next() else {
            return Err(self.error());
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            "in" => {
                self.expect(Token::Open)?;
                let mut values = vec![self.literal()?];
                while self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                    values.push(self.literal()?);
                }
                self.expect(Token::Close)?;
                return Ok(Filter::In { path, values });
            }
            _ => return Err(self.error()),
        };
        let value = self.literal()?;
        Ok(Filter::Compare { path, op, value })
    }

    fn literal(&mut self) -> Result<Literal, GraphError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::String(s)),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ if is_guid(&w) => Ok(Literal::String(w)),
                // Unquoted date-times (createdDateTime ge 2024-01-01T00:00:00Z) compare as text,
                // which orders ISO 8601 UTC values correctly.
                _ if w.len() >= 10 && w.as_bytes()[4] == b'-' => Ok(Literal::String(w)),
                _ => w
                    .parse::<f64>()
                    .map(Literal::Number)
                    .map_err(|_| self.error()),
            },
            _ => Err(self.error()),
        }
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: QueryRules = QueryRules {
        entity: "user",
        default_page_size: 100,
        max_top: 999,
        directory_object: true,
        default_select: Some(&["id", "displayName", "userPrincipalName"]),
    };

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn parse(q: &str) -> Result<ODataQuery, GraphError> {
        ODataQuery::parse(Some(q), &HeaderMap::new(), &RULES)
    }

    #[test]
    fn eq_on_strings_ignores_case() {
        let f = Filter::parse("userPrincipalName eq 'Alice@Contoso.com'").unwrap();
        assert!(f.matches(&obj(json!({"userPrincipalName": "alice@contoso.com"}))));
        assert!(!f.matches(&obj(json!({"userPrincipalName": "bob@contoso.com"}))));
    }

    #[test]
    fn and_or_bool_startswith_and_parentheses() {
        let f = Filter::parse(
            "accountEnabled eq false and (startsWith(displayName,'Break') or id eq 'x')",
        )
        .unwrap();
        assert!(f.matches(&obj(
            json!({"accountEnabled": false, "displayName": "break glass 1"})
        )));
        assert!(f.matches(&obj(
            json!({"accountEnabled": false, "displayName": "z", "id": "X"})
        )));
        assert!(!f.matches(&obj(
            json!({"accountEnabled": true, "displayName": "Break"})
        )));
    }

    #[test]
    fn any_lambda_over_strings_and_objects() {
        let f = Filter::parse("businessPhones/any(p:p eq '+1 555')").unwrap();
        assert!(f.matches(&obj(json!({"businessPhones": ["+1 555"]}))));
        assert!(!f.matches(&obj(json!({"businessPhones": []}))));
        let f = Filter::parse(
            "assignedLicenses/any(l:l/skuId eq 6fd2c87f-b296-42f0-b197-1e91e994b900)",
        )
        .unwrap();
        assert!(f.matches(&obj(
            json!({"assignedLicenses": [{"skuId": "6FD2C87F-B296-42F0-B197-1E91E994B900"}]})
        )));
    }

    #[test]
    fn quotes_are_escaped_by_doubling() {
        let f = Filter::parse("displayName eq 'O''Brien'").unwrap();
        assert!(f.matches(&obj(json!({"displayName": "o'brien"}))));
    }

    #[test]
    fn malformed_and_unknown_functions_are_rejected() {
        assert_eq!(
            Filter::parse("displayName eq").unwrap_err().code,
            "BadRequest"
        );
        assert_eq!(
            Filter::parse("displayName eq 'x").unwrap_err().code,
            "BadRequest"
        );
        assert_eq!(
            Filter::parse("contains(displayName,'x')").unwrap_err().code,
            "Request_UnsupportedQuery"
        );
    }

    #[test]
    fn advanced_queries_need_consistency_level_and_count() {
        let err = parse("$filter=displayName ne 'x'").unwrap_err();
        assert_eq!(err.code, "Request_UnsupportedQuery");
        assert_eq!(parse("$count=true").unwrap_err().code, "Request_BadRequest");
        let mut headers = HeaderMap::new();
        headers.insert("ConsistencyLevel", "eventual".parse().unwrap());
        let q = ODataQuery::parse(
            Some("$filter=endsWith(userPrincipalName,'@contoso.com')&$count=true"),
            &headers,
            &RULES,
        )
        .unwrap();
        assert!(q.count);
    }

    #[test]
    fn unknown_filter_and_select_properties_are_rejected() {
        assert_eq!(
            parse("$filter=shoeSize eq 'x'").unwrap_err().code,
            "Request_UnsupportedQuery"
        );
        let err = parse("$select=id,shoeSize").unwrap_err();
        assert!(err.message.contains("shoeSize"), "{}", err.message);
    }

    #[test]
    fn top_is_bounded() {
        assert!(parse("$top=999").is_ok());
        assert!(parse("$top=1000").is_err());
        assert!(parse("$top=0").is_err());
        assert!(parse("$top=abc").is_err());
    }

    #[test]
    fn pages_follow_next_links_until_exhausted() {
        let items: Vec<_> = (0..7)
            .map(|i| {
                obj(json!({"id": format!("{i}"), "displayName": format!("u{i}"), "city": "x"}))
            })
            .collect();
        let location = CollectionLocation::new("http://h".into(), "/users", "users");
        let mut query = parse("$top=3&$filter=city eq 'x'").unwrap();
        let mut seen = Vec::new();
        loop {
            let body = collection_response(items.clone(), &query, &RULES, &location);
            for v in body["value"].as_array().unwrap() {
                seen.push(v["id"].as_str().unwrap().to_owned());
                assert!(v.get("city").is_none(), "default property set only");
            }
            let Some(next) = body.get("@odata.nextLink").and_then(Value::as_str) else {
                break;
            };
            assert!(next.starts_with("http://h/v1.0/users?"));
            let raw = next.split_once('?').unwrap().1;
            assert!(raw.contains("%24top=3") || raw.contains("$top=3"));
            query = parse(raw).unwrap();
        }
        assert_eq!(seen, ["0", "1", "2", "3", "4", "5", "6"]);
    }

    #[test]
    fn select_trims_and_names_the_context() {
        let location = CollectionLocation::new("http://h".into(), "/users", "users");
        let q = parse("$select=displayName,accountEnabled").unwrap();
        let body = collection_response(
            vec![obj(json!({"id": "1", "displayName": "A"}))],
            &q,
            &RULES,
            &location,
        );
        assert_eq!(
            body["@odata.context"],
            "http://h/v1.0/$metadata#users(displayName,accountEnabled)"
        );
        assert_eq!(
            body["value"][0],
            json!({"displayName": "A", "accountEnabled": null})
        );
    }

    #[test]
    fn search_is_tokenized_and_needs_eventual_consistency() {
        assert!(parse("$search=\"displayName:glass\"").is_err());
        let mut headers = HeaderMap::new();
        headers.insert("ConsistencyLevel", "eventual".parse().unwrap());
        let q = ODataQuery::parse(
            Some("$search=\"displayName:glass\" OR \"userPrincipalName:bg\""),
            &headers,
            &RULES,
        )
        .unwrap();
        assert!(q.matches(&obj(json!({"displayName": "Break-Glass 01"}))));
        assert!(q.matches(&obj(json!({"userPrincipalName": "bg01@contoso.com"}))));
        assert!(!q.matches(&obj(json!({"displayName": "Hourglass"}))));
        let q = ODataQuery::parse(
            Some("$search=\"displayName:break\" AND \"displayName:01\""),
            &headers,
            &RULES,
        )
        .unwrap();
        assert!(q.matches(&obj(json!({"displayName": "Break-Glass 01"}))));
        assert!(!q.matches(&obj(json!({"displayName": "Break-Glass 02"}))));
        assert!(ODataQuery::parse(Some("$search=glass"), &headers, &RULES).is_err());
    }

    #[test]
    fn bad_skip_token_is_rejected() {
        assert!(parse("$skiptoken=zzz").is_err());
    }
}
