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

/// The order `$orderby` sorts by: nulls (and missing properties) first, as in Graph's
/// ascending order, strings case-insensitively. Values of different kinds (which Graph's typed
/// properties never mix, but stored objects may) order by kind, so this is a total order:
/// Rust's sort may panic when handed one that is not.
fn compare_for_order(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Object(_)) => 5,
        }
    }
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        // serde_json numbers are finite, so this is never `None`.
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
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
        let mut parser = Parser {
            tokens,
            pos: 0,
            depth: 0,
            operators: 0,
        };
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
                    && !matches!(chars[i], '(' | ')' | ',' | '\'')
                    // A colon ends a lambda variable (`x:`), but belongs to a bare date-time
                    // literal (`2024-01-01T00:00:00Z`, OData's DateTimeOffset).
                    && (chars[i] != ':' || is_datetime_start(&chars[start..i]))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

/// How deeply parentheses, `not` and lambdas may nest (the emulator's bound; Graph documents
/// none). Parsing, evaluating and dropping a filter recurse once per level, so without a bound
/// a long enough `((((…` would overflow the handler's stack and abort the whole emulator.
const MAX_FILTER_DEPTH: usize = 64;

/// How many `and`/`or` one filter may hold (the emulator's bound). They build a left-leaning
/// tree, as deep as the chain is long, that evaluation walks recursively.
const MAX_FILTER_OPERATORS: usize = 500;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Nesting levels currently open (see [`MAX_FILTER_DEPTH`]).
    depth: usize,
    /// `and`/`or` seen so far (see [`MAX_FILTER_OPERATORS`]).
    operators: usize,
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
            self.count_operator()?;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            self.count_operator()?;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn count_operator(&mut self) -> Result<(), GraphError> {
        self.operators += 1;
        if self.operators > MAX_FILTER_OPERATORS {
            return Err(bad_request(format!(
                "Invalid filter clause: more than {MAX_FILTER_OPERATORS} 'and'/'or' operators."
            )));
        }
        Ok(())
    }

    /// One nesting level deeper for the duration of `inner`.
    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(bad_request(format!(
                "Invalid filter clause: the expression nests deeper than {MAX_FILTER_DEPTH} levels."
            )));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn unary(&mut self) -> Result<Filter, GraphError> {
        self.nested(Self::unary_at_depth)
    }

    fn unary_at_depth(&mut self) -> Result<Filter, GraphError> {
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

/// `yyyy-mm-ddT…`: the start of an unquoted date-time literal.
fn is_datetime_start(word: &[char]) -> bool {
    word.len() >= 11
        && word[..4].iter().all(char::is_ascii_digit)
        && word[4] == '-'
        && word[10] == 'T'
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
    fn bare_date_times_are_literals_with_their_colons() {
        let f = Filter::parse("createdDateTime ge 2024-01-01T00:00:00Z").unwrap();
        assert!(f.matches(&obj(json!({"createdDateTime": "2024-06-01T12:00:00Z"}))));
        assert!(!f.matches(&obj(json!({"createdDateTime": "2023-12-31T23:59:59Z"}))));
        // Lambda variables keep their colon.
        assert!(Filter::parse("businessPhones/any(p:p eq '1')").is_ok());
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

    // ---- properties: no input makes $filter (or any query option) panic ---------------------

    use proptest::prelude::*;

    /// `BREAKGLASS_SOAK=1` (`make soak`) multiplies the case counts by 50;
    /// `BREAKGLASS_FUZZ_CASES` sets them.
    fn cases(ci: u32) -> u32 {
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

    const PROPERTIES: [&str; 8] = [
        "displayName",
        "userPrincipalName",
        "accountEnabled",
        "id",
        "businessPhones",
        "createdDateTime",
        "onPremisesSyncEnabled",
        "authorizationInfo/certificateUserIds",
    ];

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            "[^']{0,12}".prop_map(|s| format!("'{s}'")),
            "[a-z' ]{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just("46810bcd-886d-469e-a664-c8d3691d74fd".to_owned()),
            Just("2024-01-01T00:00:00Z".to_owned()),
            any::<i64>().prop_map(|i| i.to_string()),
            (-1000i32..1000).prop_map(|i| (f64::from(i) / 8.0).to_string()),
            Just("NaN".to_owned()),
            Just("INF".to_owned()),
        ]
    }

    /// Well-formed filters over the grammar the emulator reads, nested.
    fn filter_text() -> impl Strategy<Value = String> {
        let property = proptest::sample::select(PROPERTIES.to_vec());
        let op = proptest::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le", "EQ"]);
        let leaf = prop_oneof![
            (property.clone(), op, literal()).prop_map(|(p, o, l)| format!("{p} {o} {l}")),
            (property.clone(), proptest::collection::vec(literal(), 1..4))
                .prop_map(|(p, ls)| format!("{p} in ({})", ls.join(", "))),
            (property.clone(), "[^']{0,6}").prop_map(|(p, t)| format!("startsWith({p}, '{t}')")),
            (property.clone(), "[^']{0,6}").prop_map(|(p, t)| format!("endswith({p},'{t}')")),
            (property, "[^']{0,6}").prop_map(|(p, t)| format!("{p}/any(x: x eq '{t}')")),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
                inner.clone().prop_map(|a| format!("not ({a})")),
                inner.prop_map(|a| format!("({a})")),
            ]
        })
    }

    /// Arbitrary JSON objects to evaluate filters on: every kind of value under every name.
    fn object() -> impl Strategy<Value = Map<String, Value>> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        let name = prop_oneof![
            proptest::sample::select(PROPERTIES.to_vec()).prop_map(str::to_owned),
            "[a-zA-Z]{1,6}",
        ];
        proptest::collection::btree_map(name, value, 0..6).prop_map(|m| m.into_iter().collect())
    }

    /// A token soup: filter words and punctuation in any order.
    fn soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            proptest::sample::select(vec![
                "(",
                ")",
                ",",
                ":",
                "'",
                "''",
                " ",
                "eq",
                "ne",
                "in",
                "and",
                "or",
                "not",
                "startsWith",
                "endsWith",
                "any",
                "/any",
                "x",
                "x/y",
                "displayName",
                "true",
                "null",
                "1e999",
                "-0",
                "2024-01-01",
                "contains",
                "''''",
                "'a'",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,3}",
        ];
        proptest::collection::vec(token, 0..24).prop_map(|ts| ts.concat())
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: cases(256),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_filter_text_never_panics(
            text in prop_oneof!["\\PC{0,64}", any::<String>(), soup()],
        ) {
            if let Ok(filter) = Filter::parse(&text) {
                let _ = filter.properties();
                let _ = filter.advanced_operator();
                let _ = filter.matches(&Map::new());
            }
        }

        /// Well-formed filters parse, and evaluation follows boolean logic on any object.
        #[test]
        fn well_formed_filters_parse_and_evaluate_as_logic(
            a in filter_text(),
            b in filter_text(),
            object in object(),
        ) {
            let parse = |t: &str| {
                Filter::parse(t).map_err(|e| TestCaseError::fail(format!("{t}: {}", e.message)))
            };
            let (ma, mb) = (parse(&a)?.matches(&object), parse(&b)?.matches(&object));
            prop_assert_eq!(parse(&format!("({a}) and ({b})"))?.matches(&object), ma && mb);
            prop_assert_eq!(parse(&format!("({a}) or ({b})"))?.matches(&object), ma || mb);
            prop_assert_eq!(parse(&format!("not ({a})"))?.matches(&object), !ma);
        }

        /// Whole query strings — every option, any values, with and without the advanced-query
        /// header — then the collection answer over arbitrary objects: errors or pages, never
        /// a panic, and a page never larger than `$top`.
        #[test]
        fn arbitrary_query_strings_never_panic(
            pairs in proptest::collection::vec((
                proptest::sample::select(vec![
                    "$filter", "$select", "$top", "$skiptoken", "$skip", "$count", "$search",
                    "$orderby", "$expand", "filter", "$FILTER", "x",
                ]),
                prop_oneof![
                    filter_text(),
                    soup(),
                    "\\PC{0,16}",
                    any::<i64>().prop_map(|i| i.to_string()),
                    Just("true".to_owned()),
                    Just("displayName desc".to_owned()),
                ],
            ), 0..4),
            eventual in any::<bool>(),
            items in proptest::collection::vec(object(), 0..8),
        ) {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                serializer.append_pair(k, v);
            }
            let raw = serializer.finish();
            let mut headers = HeaderMap::new();
            if eventual {
                headers.insert("ConsistencyLevel", "eventual".parse().unwrap());
            }
            let policies = QueryRules {
                entity: "conditionalAccessPolicy",
                default_page_size: 2,
                max_top: 999,
                directory_object: false,
                default_select: None,
            };
            for rules in [RULES, policies] {
                if let Ok(query) = ODataQuery::parse(Some(&raw), &headers, &rules) {
                    let location = CollectionLocation::new("http://x".into(), "/users", "users");
                    let body = collection_response(items.clone(), &query, &rules, &location);
                    let page = body["value"].as_array().map_or(0, Vec::len);
                    prop_assert!(page <= query.top.unwrap_or(rules.default_page_size));
                    if let Some(first) = items.first() {
                        let _ = entity_response(first, &query, &rules, &location);
                    }
                }
            }
        }
    }

    /// Nesting far beyond anything Graph accepts is a 400, not a stack overflow (which would
    /// take the whole emulator down, every test's tenant with it).
    #[test]
    fn deeply_nested_filters_are_refused_not_a_stack_overflow() {
        let run = || {
            for text in [
                format!("{}id eq 'x'{}", "(".repeat(100_000), ")".repeat(100_000)),
                format!("{}id eq 'x'", "not ".repeat(100_000)),
                format!(
                    "{}x eq 'y'{}",
                    "p/any(x: ".repeat(50_000),
                    ")".repeat(50_000)
                ),
                format!("{}id eq 'x'", "(not ".repeat(60_000)),
                "id eq 'x' and ".repeat(100_000) + "id eq 'y'",
                "id eq 'x' or ".repeat(100_000) + "id eq 'y'",
            ] {
                let err = Filter::parse(&text).unwrap_err();
                assert_eq!(err.code, "BadRequest");
            }
            // What clients send stays well inside the limits, and the longest accepted filter
            // evaluates on this stack.
            let deep = format!("{}id eq 'x'{}", "(".repeat(30), ")".repeat(30));
            assert!(Filter::parse(&deep).is_ok());
            let longest = format!(
                "{}{}id eq 'y'{}",
                "(not ".repeat(MAX_FILTER_DEPTH / 2 - 1),
                "id eq 'x' and ".repeat(MAX_FILTER_OPERATORS),
                ")".repeat(MAX_FILTER_DEPTH / 2 - 1)
            );
            let filter = Filter::parse(&longest).unwrap();
            let _ = filter.matches(&obj(json!({"id": "x"})));
            let _ = filter.advanced_operator();
            let _ = filter.properties();
            drop(filter);
        };
        // The size of a Tokio worker's stack, which is what a handler runs on.
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    /// `$orderby` over values of mixed kinds sorts without panicking: the comparison is a total
    /// order (Rust's sort may panic on one that is not).
    #[test]
    fn orderby_over_mixed_kinds_is_a_total_order() {
        use std::cmp::Ordering::Greater;
        let values = [
            json!(null),
            json!("b"),
            json!(1),
            json!("a"),
            json!(true),
            json!(2.5),
            json!([1]),
            json!({"a": 1}),
            json!("A"),
            json!(false),
            json!(-3),
        ];
        let cmp = |a: &Value, b: &Value| compare_for_order(Some(a), Some(b));
        for a in &values {
            for b in &values {
                assert_eq!(cmp(a, b), cmp(b, a).reverse(), "{a} {b}");
                for c in &values {
                    if cmp(a, b) != Greater && cmp(b, c) != Greater {
                        assert_ne!(cmp(a, c), Greater, "{a} <= {b} <= {c}");
                    }
                }
            }
        }
    }
}
