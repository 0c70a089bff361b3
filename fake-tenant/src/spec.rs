//! Validation of request and response bodies against the vendored structural API descriptions
//! in `specs/` (Graph OpenAPI 3 subset, ARM Swagger 2).
//!
//! The descriptions are compiled into the binary (`include_str!`), so validation works from any
//! directory. A request is matched to an operation by method and path template (`{x}` matches
//! one segment — or one or more when the parameter is declared `x-ms-skip-url-encoding`, as
//! ARM's `{scope}` is; Graph paths are relative to `/v1.0`; ARM paths compare
//! case-insensitively and pick the file whose `info.version` equals the `api-version` query
//! parameter). Requests with no matching operation are not checked: routing them is the areas'
//! business.
//!
//! Rules beyond plain JSON Schema, each from how the services behave:
//! - `@odata.type` is listed as required everywhere by the Graph converter but is optional on
//!   the wire (facts §1); required lists are otherwise enforced.
//! - Properties not declared by a schema are refused in requests (Graph and ARM answer 400) and
//!   reported in responses; OData annotations (`@odata.context`, `x@odata.bind`, …) are allowed.
//! - A Graph object naming a derived type in `@odata.type` is checked against that type.
//! - The converter writes "nullable reference" as `anyOf: [{$ref}, {type: object, nullable}]`;
//!   the second branch admits only `null`.
//! - ARM enums with `x-ms-enum.modelAsString` are open (any string); Graph flags enums
//!   (`x-ms-enum-flags`) take a comma-separated set of members.
//! - ARM `readOnly` properties may appear in requests (ARM ignores them); in ARM requests an
//!   optional property may be null.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::http::Method;
use regex::Regex;
use serde_json::{json, Map, Value};

/// Which description a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Graph,
    Arm,
}

/// The vendored files, keyed by their path under `specs/`.
const SPEC_FILES: [(&str, &str); 10] = [
    (
        "msgraph/v1.0-breakglass-subset.json",
        include_str!("../../specs/msgraph/v1.0-breakglass-subset.json"),
    ),
    (
        "azure-rest-api-specs/specification/azureactivedirectory/resource-manager/Microsoft.Aadiam/stable/2017-04-01/azureactivedirectory.json",
        include_str!("../../specs/azure-rest-api-specs/specification/azureactivedirectory/resource-manager/Microsoft.Aadiam/stable/2017-04-01/azureactivedirectory.json"),
    ),
    (
        "azure-rest-api-specs/specification/monitor/resource-manager/Microsoft.Insights/stable/2023-01-01/actionGroups_API.json",
        include_str!("../../specs/azure-rest-api-specs/specification/monitor/resource-manager/Microsoft.Insights/stable/2023-01-01/actionGroups_API.json"),
    ),
    (
        "azure-rest-api-specs/specification/monitor/resource-manager/Microsoft.Insights/stable/2021-08-01/scheduledQueryRule_API.json",
        include_str!("../../specs/azure-rest-api-specs/specification/monitor/resource-manager/Microsoft.Insights/stable/2021-08-01/scheduledQueryRule_API.json"),
    ),
    (
        "azure-rest-api-specs/specification/monitor/resource-manager/Microsoft.Insights/stable/2023-12-01/scheduledQueryRule_API.json",
        include_str!("../../specs/azure-rest-api-specs/specification/monitor/resource-manager/Microsoft.Insights/stable/2023-12-01/scheduledQueryRule_API.json"),
    ),
    (
        "azure-rest-api-specs/specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json",
        include_str!("../../specs/azure-rest-api-specs/specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json"),
    ),
    (
        "azure-rest-api-specs/specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/common-types.json",
        include_str!("../../specs/azure-rest-api-specs/specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/common-types.json"),
    ),
    (
        "azure-rest-api-specs/specification/common-types/resource-management/v1/types.json",
        include_str!("../../specs/azure-rest-api-specs/specification/common-types/resource-management/v1/types.json"),
    ),
    (
        "azure-rest-api-specs/specification/common-types/resource-management/v2/types.json",
        include_str!("../../specs/azure-rest-api-specs/specification/common-types/resource-management/v2/types.json"),
    ),
    (
        "azure-rest-api-specs/specification/common-types/resource-management/v3/types.json",
        include_str!("../../specs/azure-rest-api-specs/specification/common-types/resource-management/v3/types.json"),
    ),
];

const GRAPH_DOC: &str = "msgraph/v1.0-breakglass-subset.json";
const ARM_COMMON_TYPES: &str =
    "azure-rest-api-specs/specification/common-types/resource-management/v3/types.json";

/// How deep `$ref` chains and nesting may go before we assume a cycle.
const MAX_DEPTH: usize = 64;

/// A set of parsed descriptions plus the operations they declare.
pub struct Specs {
    docs: HashMap<String, Value>,
    operations: Vec<Operation>,
}

struct Operation {
    api: Api,
    method: Method,
    /// Path template split into segments, e.g. `["users", "{user-id}"]`.
    segments: Vec<String>,
    /// Per segment: a path parameter that may span several segments (ARM's
    /// `x-ms-skip-url-encoding` parameters such as `{scope}`).
    multi: Vec<bool>,
    /// ARM: the file's `info.version`; requests must carry it as `api-version`.
    api_version: Option<String>,
    doc: String,
    /// JSON pointer of the operation object in `doc`.
    pointer: String,
    name: String,
}

/// A schema together with the document its `$ref`s are relative to.
#[derive(Clone, Copy)]
struct SchemaAt<'a> {
    doc: &'a str,
    schema: &'a Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

/// One problem found in a body: where (JSON pointer), what kind, and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: String,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A property the schema does not declare (Graph's 400 names it).
    UnknownProperty(String),
    /// A JSON type other than the declared one (string for boolean, ...).
    WrongType,
    /// Missing required property, enum member, format, unmatched `anyOf`.
    Other,
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Joins a relative `$ref` file part onto the directory of `doc`, resolving `..`.
fn resolve_doc_path(doc: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = doc.split('/').collect();
    parts.pop();
    for segment in relative.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn method_of(name: &str) -> Option<Method> {
    match name {
        "get" => Some(Method::GET),
        "post" => Some(Method::POST),
        "put" => Some(Method::PUT),
        "patch" => Some(Method::PATCH),
        "delete" => Some(Method::DELETE),
        _ => None,
    }
}

/// Whether a path matches a template; multi-segment parameters take one or more segments
/// (backtracking over the few templates that have them).
fn template_matches(template: &[String], multi: &[bool], actual: &[String]) -> bool {
    let Some((first, rest)) = template.split_first() else {
        return actual.is_empty();
    };
    let (first_multi, rest_multi) = multi.split_first().unwrap_or((&false, &[]));
    let is_param = first.starts_with('{') && first.ends_with('}');
    if is_param && *first_multi {
        return (1..=actual.len()).any(|taken| {
            actual
                .get(taken..)
                .is_some_and(|tail| template_matches(rest, rest_multi, tail))
        });
    }
    let Some((segment, tail)) = actual.split_first() else {
        return false;
    };
    let matches = if is_param {
        !segment.starts_with("microsoft.graph.")
    } else {
        first.eq_ignore_ascii_case(segment)
    };
    matches && template_matches(rest, rest_multi, tail)
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Specs {
    /// Parses descriptions given as (path under `specs/`, JSON text).
    pub fn from_files(files: &[(&str, &str)]) -> Result<Specs, String> {
        let mut docs = HashMap::new();
        for (path, text) in files {
            let doc: Value =
                serde_json::from_str(text).map_err(|e| format!("spec {path} is not JSON: {e}"))?;
            docs.insert((*path).to_owned(), doc);
        }
        let mut operations = Vec::new();
        for (path, doc) in &docs {
            let api = if doc.get("openapi").is_some() {
                Api::Graph
            } else {
                Api::Arm
            };
            let api_version = match api {
                Api::Arm => doc["info"]["version"].as_str().map(str::to_owned),
                Api::Graph => None,
            };
            for (template, item) in doc["paths"].as_object().into_iter().flatten() {
                for (method_name, op) in item.as_object().into_iter().flatten() {
                    let Some(method) = method_of(method_name) else {
                        continue;
                    };
                    let segments = split_path(template);
                    operations.push(Operation {
                        api,
                        method,
                        multi: vec![false; segments.len()],
                        segments,
                        api_version: api_version.clone(),
                        doc: path.clone(),
                        pointer: format!("/paths/{}/{method_name}", escape_pointer(template)),
                        name: op["operationId"].as_str().unwrap_or(template).to_owned(),
                    });
                }
            }
        }
        let mut specs = Specs { docs, operations };
        let multi: Vec<Vec<bool>> = specs
            .operations
            .iter()
            .map(|op| specs.multi_segments(op))
            .collect();
        for (op, flags) in specs.operations.iter_mut().zip(multi) {
            op.multi = flags;
        }
        Ok(specs)
    }

    /// Which template segments are path parameters declared `x-ms-skip-url-encoding`.
    fn multi_segments(&self, op: &Operation) -> Vec<bool> {
        let Some(at) = self.operation_json(op) else {
            return vec![false; op.segments.len()];
        };
        let path_item = op
            .pointer
            .rsplit_once('/')
            .and_then(|(item, _)| self.docs.get(at.doc)?.pointer(item));
        let own = at.schema["parameters"].as_array().into_iter().flatten();
        let shared = path_item
            .and_then(|p| p["parameters"].as_array())
            .into_iter()
            .flatten();
        let skip_encoded: Vec<String> = own
            .chain(shared)
            .filter_map(|p| {
                let p = self.deref(SchemaAt {
                    doc: at.doc,
                    schema: p,
                })?;
                (p.schema["in"] == "path" && p.schema["x-ms-skip-url-encoding"] == true)
                    .then(|| p.schema["name"].as_str().map(str::to_owned))
                    .flatten()
            })
            .collect();
        op.segments
            .iter()
            .map(|s| {
                s.strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .is_some_and(|name| skip_encoded.iter().any(|n| n == name))
            })
            .collect()
    }

    /// The operation a request addresses; literal segments beat `{x}` segments.
    fn find_operation(
        &self,
        api: Api,
        method: &Method,
        path: &str,
        query: &str,
    ) -> Option<&Operation> {
        let mut segments = split_path(path);
        if api == Api::Graph {
            if segments.first().map(String::as_str) == Some("v1.0") {
                segments.remove(0);
            }
            // Bound actions may be namespace-qualified (facts §1). Actions are POSTs; on a GET
            // a `microsoft.graph.x` segment is a type cast, a path outside the subset.
            if let Some(last) = segments.last_mut().filter(|_| *method == Method::POST) {
                if let Some(action) = last.strip_prefix("microsoft.graph.") {
                    *last = action.to_owned();
                }
            }
        }
        let api_version = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned());
        self.operations
            .iter()
            .filter(|op| op.api == api && op.method == *method)
            .filter(|op| api == Api::Graph || op.api_version == api_version)
            .filter(|op| template_matches(&op.segments, &op.multi, &segments))
            .max_by_key(|op| op.segments.iter().filter(|s| !s.starts_with('{')).count())
    }

    fn resolve_ref<'a>(&'a self, doc: &'a str, reference: &str) -> Option<SchemaAt<'a>> {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let doc_key: &str = if file.is_empty() {
            doc
        } else {
            let resolved = resolve_doc_path(doc, file);
            self.docs.get_key_value(&resolved)?.0.as_str()
        };
        let schema = self.docs.get(doc_key)?.pointer(pointer)?;
        Some(SchemaAt {
            doc: doc_key,
            schema,
        })
    }

    /// Follows `$ref`s until a schema without one.
    fn deref<'a>(&'a self, mut at: SchemaAt<'a>) -> Option<SchemaAt<'a>> {
        for _ in 0..MAX_DEPTH {
            match at.schema.get("$ref").and_then(Value::as_str) {
                Some(reference) => at = self.resolve_ref(at.doc, reference)?,
                None => return Some(at),
            }
        }
        None
    }

    fn operation_json(&self, op: &Operation) -> Option<SchemaAt<'_>> {
        let doc = self.docs.get_key_value(&op.doc)?.0.as_str();
        Some(SchemaAt {
            doc,
            schema: self.docs.get(doc)?.pointer(&op.pointer)?,
        })
    }

    /// The request-body schema of an operation, if it declares one.
    fn request_schema(&self, op: &Operation) -> Option<SchemaAt<'_>> {
        let at = self.operation_json(op)?;
        match op.api {
            Api::Graph => {
                let body = self.deref(SchemaAt {
                    doc: at.doc,
                    schema: at.schema.get("requestBody")?,
                })?;
                Some(SchemaAt {
                    doc: body.doc,
                    schema: body.schema.pointer("/content/application~1json/schema")?,
                })
            }
            Api::Arm => {
                let path_item_pointer = op.pointer.rsplit_once('/')?.0;
                let path_item = self.docs.get(at.doc)?.pointer(path_item_pointer)?;
                let own = at.schema["parameters"].as_array().into_iter().flatten();
                let shared = path_item["parameters"].as_array().into_iter().flatten();
                own.chain(shared).find_map(|p| {
                    let p = self.deref(SchemaAt {
                        doc: at.doc,
                        schema: p,
                    })?;
                    (p.schema["in"] == "body").then(|| SchemaAt {
                        doc: p.doc,
                        schema: &p.schema["schema"],
                    })
                })
            }
        }
    }

    /// The response schema for `status`: exact code, then `4XX`-style range, then `default`.
    fn response_schema(&self, op: &Operation, status: u16) -> Option<SchemaAt<'_>> {
        let at = self.operation_json(op)?;
        let responses = at.schema.get("responses")?;
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        let response = [exact.as_str(), range.as_str(), "default"]
            .iter()
            .find_map(|key| responses.get(*key))?;
        let response = self.deref(SchemaAt {
            doc: at.doc,
            schema: response,
        })?;
        let schema = match op.api {
            Api::Graph => response
                .schema
                .pointer("/content/application~1json/schema")?,
            Api::Arm => response.schema.get("schema")?,
        };
        Some(SchemaAt {
            doc: response.doc,
            schema,
        })
    }
}

/// The embedded descriptions, parsed once.
pub fn specs() -> &'static Specs {
    static SPECS: OnceLock<Specs> = OnceLock::new();
    SPECS.get_or_init(|| Specs::from_files(&SPEC_FILES).expect("vendored specs are valid JSON"))
}

// ---------------------------------------------------------------------------------------------
// The validator

/// Properties, required names and extra-property policy of an object schema, flattened over
/// `allOf` and `$ref`.
#[derive(Default)]
struct ObjectShape<'a> {
    properties: Vec<(&'a str, SchemaAt<'a>)>,
    required: Vec<&'a str>,
    additional: Option<SchemaAt<'a>>,
    open: bool,
}

struct Validator<'a> {
    specs: &'a Specs,
    api: Api,
    direction: Direction,
    problems: Vec<Problem>,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn pattern_matches(pattern: &str, text: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    let regex = cache
        .entry(pattern.to_owned())
        .or_insert_with(|| Regex::new(pattern).ok());
    // A pattern the regex engine cannot compile is not held against the value.
    regex.as_ref().is_none_or(|re| re.is_match(text))
}

/// The converter's "nullable reference" branch: `{type: object, nullable: true}` and nothing else.
fn is_null_only_branch(schema: &Value) -> bool {
    schema.get("nullable") == Some(&Value::Bool(true))
        && schema.get("type").and_then(Value::as_str) == Some("object")
        && schema.get("properties").is_none()
        && schema.get("allOf").is_none()
}

impl<'a> Validator<'a> {
    fn problem(&mut self, pointer: &str, message: String) {
        self.problems.push(Problem {
            pointer: pointer.to_owned(),
            kind: ProblemKind::Other,
            message,
        });
    }

    fn wrong_type(&mut self, pointer: &str, expected: &str, value: &Value) {
        self.problems.push(Problem {
            pointer: pointer.to_owned(),
            kind: ProblemKind::WrongType,
            message: format!("expected {expected}, found {}", type_name(value)),
        });
    }

    fn allows_null(&self, schema: &Value) -> bool {
        schema.get("nullable") == Some(&Value::Bool(true))
            || schema.get("x-nullable") == Some(&Value::Bool(true))
    }

    fn validate(&mut self, at: SchemaAt<'a>, value: &Value, pointer: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(mut at) = self.specs.deref(at) else {
            self.problem(pointer, "schema reference cannot be resolved".into());
            return;
        };
        // A derived Graph type named by `@odata.type` is validated as that type.
        if self.api == Api::Graph {
            if let Some(derived) = value
                .get("@odata.type")
                .and_then(Value::as_str)
                .and_then(|t| t.strip_prefix('#'))
            {
                let reference = format!("#/components/schemas/{derived}");
                if let Some(target) = self.specs.resolve_ref(GRAPH_DOC, &reference) {
                    at = target;
                }
            }
        }
        let schema = at.schema;

        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(keyword).and_then(Value::as_array) {
                let mut branch_problems = Vec::new();
                for branch in branches {
                    if is_null_only_branch(branch) {
                        if value.is_null() {
                            return;
                        }
                        continue;
                    }
                    let mut trial = Validator {
                        specs: self.specs,
                        api: self.api,
                        direction: self.direction,
                        problems: Vec::new(),
                    };
                    trial.validate(
                        SchemaAt {
                            doc: at.doc,
                            schema: branch,
                        },
                        value,
                        pointer,
                        depth + 1,
                    );
                    if trial.problems.is_empty() {
                        return;
                    }
                    branch_problems.push(trial.problems);
                }
                // Report the closest branch's problems: the one with the fewest.
                match branch_problems.into_iter().min_by_key(Vec::len) {
                    Some(problems) => self.problems.extend(problems),
                    None => self.problem(
                        pointer,
                        format!("{} does not match any allowed shape", type_name(value)),
                    ),
                }
                return;
            }
        }

        if value.is_null() {
            let arm_request = self.api == Api::Arm && self.direction == Direction::Request;
            if !self.allows_null(schema) && !arm_request {
                self.problem(pointer, "null is not allowed here".into());
            }
            return;
        }

        let declared_type = schema.get("type").and_then(Value::as_str);
        let looks_like_object = declared_type == Some("object")
            || schema.get("properties").is_some()
            || schema.get("allOf").is_some();
        match (declared_type, value) {
            (Some("string"), Value::String(s)) => self.validate_string(schema, s, pointer),
            (Some("boolean"), Value::Bool(_)) => {}
            (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            (Some("number"), Value::Number(_)) => {}
            (Some("array"), Value::Array(items)) => {
                let item_schema = schema.get("items").unwrap_or(&Value::Null);
                if !item_schema.is_null() {
                    for (i, item) in items.iter().enumerate() {
                        self.validate(
                            SchemaAt {
                                doc: at.doc,
                                schema: item_schema,
                            },
                            item,
                            &format!("{pointer}/{i}"),
                            depth + 1,
                        );
                    }
                }
            }
            (_, Value::Object(object)) if looks_like_object => {
                self.validate_object(at, object, pointer, depth);
            }
            (None, _) if !looks_like_object => {}
            (Some(expected), _) => self.wrong_type(pointer, expected, value),
            (None, _) => self.wrong_type(pointer, "object", value),
        }
    }

    fn validate_string(&mut self, schema: &Value, s: &str, pointer: &str) {
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            let open = schema.pointer("/x-ms-enum/modelAsString") == Some(&Value::Bool(true));
            let is_member = |candidate: &str| {
                allowed.iter().any(|v| {
                    v.as_str()
                        .is_some_and(|a| a.eq_ignore_ascii_case(candidate))
                })
            };
            // Flags enums (`x-ms-enum-flags.isFlags`) carry a comma-separated set of members.
            let listed = if schema.pointer("/x-ms-enum-flags/isFlags") == Some(&Value::Bool(true)) {
                s.split(',').all(|member| is_member(member.trim()))
            } else {
                is_member(s)
            };
            if !open && !listed {
                self.problem(pointer, format!("'{s}' is not one of the allowed values"));
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if !pattern_matches(pattern, s) {
                self.problem(
                    pointer,
                    format!(
                        "'{s}' does not match the {} format",
                        schema["format"].as_str().unwrap_or("required")
                    ),
                );
            }
        } else if schema.get("format").and_then(Value::as_str) == Some("uuid")
            && uuid::Uuid::parse_str(s).is_err()
        {
            self.problem(pointer, format!("'{s}' is not a uuid"));
        } else if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .is_err()
        {
            self.problem(pointer, format!("'{s}' is not an RFC 3339 date-time"));
        }
    }

    fn collect_shape(&self, at: SchemaAt<'a>, shape: &mut ObjectShape<'a>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(at) = self.specs.deref(at) else {
            return;
        };
        for part in at
            .schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.collect_shape(
                SchemaAt {
                    doc: at.doc,
                    schema: part,
                },
                shape,
                depth + 1,
            );
        }
        for (name, property) in at
            .schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            shape.properties.push((
                name.as_str(),
                SchemaAt {
                    doc: at.doc,
                    schema: property,
                },
            ));
        }
        for name in at
            .schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = name.as_str() {
                shape.required.push(name);
            }
        }
        match at.schema.get("additionalProperties") {
            Some(Value::Bool(true)) => shape.open = true,
            Some(extra @ Value::Object(_)) => {
                shape.additional = Some(SchemaAt {
                    doc: at.doc,
                    schema: extra,
                });
            }
            _ => {}
        }
    }

    fn validate_object(
        &mut self,
        at: SchemaAt<'a>,
        object: &Map<String, Value>,
        pointer: &str,
        depth: usize,
    ) {
        let mut shape = ObjectShape::default();
        self.collect_shape(at, &mut shape, depth + 1);
        if shape.properties.is_empty()
            && shape.additional.is_none()
            && at.schema.get("allOf").is_none()
        {
            // `{type: object}` with no declared members is a free-form object.
            shape.open = true;
        }
        for name in &shape.required {
            if *name == "@odata.type" {
                continue;
            }
            let read_only_in_request = self.direction == Direction::Request
                && shape.properties.iter().any(|(n, s)| {
                    n == name && s.schema.get("readOnly") == Some(&Value::Bool(true))
                });
            if !object.contains_key(*name) && !read_only_in_request {
                self.problem(pointer, format!("required property '{name}' is missing"));
            }
        }
        for (name, value) in object {
            let child = format!("{pointer}/{}", escape_pointer(name));
            if let Some((_, schema)) = shape.properties.iter().rev().find(|(n, _)| n == name) {
                self.validate(*schema, value, &child, depth + 1);
            } else if let Some(extra) = shape.additional {
                self.validate(extra, value, &child, depth + 1);
            } else if shape.open || name.contains('@') {
                // Annotations (`@odata.context`, `members@odata.bind`) are not properties.
            } else {
                self.problems.push(Problem {
                    pointer: child,
                    kind: ProblemKind::UnknownProperty(name.clone()),
                    message: format!("property '{name}' is not declared by the schema"),
                });
            }
        }
    }
}

fn check(
    specs: &Specs,
    api: Api,
    direction: Direction,
    at: SchemaAt<'_>,
    body: &Value,
) -> Vec<Problem> {
    let mut validator = Validator {
        specs,
        api,
        direction,
        problems: Vec::new(),
    };
    validator.validate(at, body, "", 0);
    validator.problems
}

impl Specs {
    /// Problems in a request body; empty when valid or when no operation/body schema matches.
    pub fn request_problems(
        &self,
        api: Api,
        method: &Method,
        path: &str,
        query: &str,
        body: &Value,
    ) -> Vec<Problem> {
        let Some(op) = self.find_operation(api, method, path, query) else {
            return Vec::new();
        };
        let Some(schema) = self.request_schema(op) else {
            return Vec::new();
        };
        check(self, api, Direction::Request, schema, body)
    }

    /// Violations in a response body, as recorded for `/_fake/spec-violations`.
    pub fn response_violations(
        &self,
        api: Api,
        method: &Method,
        path: &str,
        query: &str,
        status: u16,
        body: &Value,
    ) -> Vec<Value> {
        let Some(op) = self.find_operation(api, method, path, query) else {
            return Vec::new();
        };
        // ARM's common error envelope is valid for every error, whatever an older file declares.
        let arm_error_envelope = api == Api::Arm && status >= 400 && body.get("error").is_some();
        let schema = if arm_error_envelope {
            self.resolve_ref(ARM_COMMON_TYPES, "#/definitions/ErrorResponse")
        } else {
            self.response_schema(op, status)
        };
        let Some(schema) = schema else {
            return Vec::new();
        };
        check(self, api, Direction::Response, schema, body)
            .into_iter()
            .map(|p| {
                json!({
                    "operation": op.name,
                    "method": method.as_str(),
                    "path": path,
                    "status": status,
                    "pointer": p.pointer,
                    "problem": p.message,
                })
            })
            .collect()
    }
}

impl Operation {
    /// `graph <operationId>` or `arm <api-version> <operationId>`: unique across the files.
    fn key(&self) -> String {
        match (&self.api, &self.api_version) {
            (Api::Arm, Some(version)) => format!("arm {version} {}", self.name),
            _ => format!("graph {}", self.name),
        }
    }
}

/// The key (see [`operation_key`]) of every vendored operation.
pub fn operation_keys() -> Vec<String> {
    let mut keys: Vec<String> = specs().operations.iter().map(Operation::key).collect();
    keys.sort();
    keys
}

/// The vendored operation a request addresses, as `graph <operationId>` or
/// `arm <api-version> <operationId>`; lets tests check which operations they exercised.
pub fn operation_key(api: Api, method: &Method, path: &str, query: &str) -> Option<String> {
    specs()
        .find_operation(api, method, path, query)
        .map(Operation::key)
}

/// A regular expression matching the path of every request to the operation `path`
/// addresses (literal segments case-insensitively, as routing compares them; a parameter is
/// one segment, a multi-segment parameter such as ARM's `{scope}` one or more), together with
/// the operation's path template — e.g. `PATCH /v1.0/identity/conditionalAccess/policies/x` →
/// `(?i)^/v1\.0/identity/conditionalAccess/policies/[^/]+$`. Tests use it to aim fault rules
/// at one step of a run, whatever ids that run's objects get.
pub fn operation_path_pattern(
    api: Api,
    method: &Method,
    path: &str,
    query: &str,
) -> Option<(String, String)> {
    let op = specs().find_operation(api, method, path, query)?;
    let mut pattern = String::from("(?i)^");
    let mut template = String::new();
    if api == Api::Graph {
        pattern.push_str("/v1\\.0");
        template.push_str("/v1.0");
    }
    for (segment, multi) in op.segments.iter().zip(&op.multi) {
        pattern.push('/');
        template.push('/');
        template.push_str(segment);
        if segment.starts_with('{') && segment.ends_with('}') {
            pattern.push_str(if *multi { ".+" } else { "[^/]+" });
        } else {
            pattern.push_str(&regex::escape(segment));
        }
    }
    pattern.push('$');
    Some((pattern, template))
}

/// Checks a request body; `Err(message)` is the service's 400 message.
///
/// Only what the services' front layers refuse is refused here; the rest (required members,
/// enum values, formats) is left to the handlers, which answer with the specific error the
/// service documents for it.
/// - Graph's OData layer refuses undeclared properties and wrongly typed values anywhere.
/// - ARM's front door refuses undeclared members of the resource envelope (top level); what is
///   inside `properties` goes to the resource provider, which ignores members it does not know.
pub fn check_request(
    api: Api,
    method: &Method,
    path: &str,
    query: &str,
    body: &Value,
) -> Result<(), String> {
    let problems = specs().request_problems(api, method, path, query, body);
    let refused = problems.iter().find(|p| match (api, &p.kind) {
        (Api::Graph, ProblemKind::UnknownProperty(_) | ProblemKind::WrongType) => true,
        (Api::Arm, ProblemKind::UnknownProperty(_)) => p.pointer.matches('/').count() == 1,
        _ => false,
    });
    let Some(problem) = refused else {
        return Ok(());
    };
    Err(match (&problem.kind, api) {
        (ProblemKind::UnknownProperty(name), Api::Graph) => format!("Invalid property '{name}'."),
        (ProblemKind::UnknownProperty(name), Api::Arm) => format!(
            "The request content was invalid and could not be deserialized: 'Could not find member '{name}' on object of type 'ResourceDefinition'. Path '{name}'.'"
        ),
        _ => format!(
            "Invalid value at '{}' in the request body: {}.",
            problem.pointer, problem.message
        ),
    })
}

/// Checks a response body; returns the violations found (`{operation, pointer, problem}`).
pub fn check_response(
    api: Api,
    method: &Method,
    path: &str,
    query: &str,
    status: u16,
    body: &Value,
) -> Vec<Value> {
    specs().response_violations(api, method, path, query, status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny Graph-style description exercising each keyword.
    fn tiny_graph() -> Specs {
        let doc = json!({
            "openapi": "3.0.4",
            "paths": {
                "/things": {"post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/thing"}}}},
                    "responses": {"2XX": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/thing"}}}}}
                }},
                "/things/{thing-id}": {"get": {
                    "responses": {"2XX": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/thing"}}}}}
                }},
                "/things/special": {"get": {
                    "operationId": "special",
                    "responses": {"2XX": {"content": {"application/json": {"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}}
                }}
            },
            "components": {"schemas": {
                "base": {"type": "object", "required": ["@odata.type", "id"], "properties": {
                    "@odata.type": {"type": "string"},
                    "id": {"type": "string"}
                }},
                "thing": {"allOf": [{"$ref": "#/components/schemas/base"}, {"type": "object", "properties": {
                    "state": {"$ref": "#/components/schemas/state"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "when": {"type": "string", "format": "date-time", "nullable": true},
                    "owner": {"anyOf": [{"$ref": "#/components/schemas/owner"}, {"type": "object", "nullable": true}]}
                }}]},
                "fancyThing": {"allOf": [{"$ref": "#/components/schemas/thing"}, {"type": "object", "properties": {"sparkle": {"type": "integer"}}}]},
                "state": {"type": "string", "enum": ["enabled", "disabled"]},
                "owner": {"type": "object", "properties": {"name": {"type": "string"}}}
            }}
        });
        Specs::from_files(&[(GRAPH_DOC, &doc.to_string())]).unwrap()
    }

    fn request(specs: &Specs, body: Value) -> Vec<Problem> {
        specs.request_problems(Api::Graph, &Method::POST, "/v1.0/things", "", &body)
    }

    #[test]
    fn valid_bodies_pass_and_odata_type_is_not_required() {
        let specs = tiny_graph();
        let body = json!({"id": "1", "state": "enabled", "tags": ["a"], "when": null, "owner": {"name": "x"}, "@odata.context": "c"});
        assert_eq!(request(&specs, body), vec![]);
    }

    #[test]
    fn unknown_properties_types_enums_and_required_are_reported() {
        let specs = tiny_graph();
        let problems = request(&specs, json!({"id": "1", "colour": "red"}));
        assert_eq!(
            problems[0].kind,
            ProblemKind::UnknownProperty("colour".into())
        );
        assert_eq!(problems[0].pointer, "/colour");

        let problems = request(&specs, json!({"id": 1, "state": "maybe", "tags": [true]}));
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["/id", "/state", "/tags/0"]);

        let problems = request(&specs, json!({"state": "enabled"}));
        assert!(problems[0].message.contains("'id'"), "{problems:?}");
    }

    #[test]
    fn nullable_reference_branch_admits_only_null() {
        let specs = tiny_graph();
        assert_eq!(request(&specs, json!({"id": "1", "owner": null})), vec![]);
        let problems = request(&specs, json!({"id": "1", "owner": {"nickname": "x"}}));
        assert_eq!(problems[0].pointer, "/owner/nickname");
        let problems = request(&specs, json!({"id": "1", "tags": null}));
        assert_eq!(problems[0].pointer, "/tags");
    }

    #[test]
    fn formats_are_checked() {
        let specs = tiny_graph();
        assert_eq!(
            request(&specs, json!({"id": "1", "when": "2026-01-02T03:04:05Z"})),
            vec![]
        );
        assert_eq!(
            request(&specs, json!({"id": "1", "when": "yesterday"})).len(),
            1
        );
    }

    #[test]
    fn derived_type_named_by_odata_type_is_used() {
        let specs = tiny_graph();
        let fancy = json!({"@odata.type": "#fancyThing", "id": "1", "sparkle": 3});
        assert_eq!(request(&specs, fancy), vec![]);
        let plain = json!({"id": "1", "sparkle": 3});
        assert_eq!(request(&specs, plain).len(), 1);
    }

    #[test]
    fn literal_path_segments_win_and_responses_are_recorded() {
        let specs = tiny_graph();
        let violations = specs.response_violations(
            Api::Graph,
            &Method::GET,
            "/v1.0/things/special",
            "",
            200,
            &json!({"ok": "yes"}),
        );
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0]["operation"], json!("special"));
        let violations = specs.response_violations(
            Api::Graph,
            &Method::GET,
            "/v1.0/things/42",
            "",
            200,
            &json!({"id": "42"}),
        );
        assert_eq!(violations, Vec::<Value>::new());
    }

    #[test]
    fn arm_operations_match_api_version_case_insensitively_across_files() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"version": "2023-01-01"},
            "paths": {"/subscriptions/{subscriptionId}/providers/Microsoft.Widgets/widgets/{name}": {"put": {
                "parameters": [{"$ref": "../common/types.json#/parameters/Sub"}, {"in": "body", "name": "w", "schema": {"$ref": "#/definitions/Widget"}}],
                "responses": {"200": {"schema": {"$ref": "#/definitions/Widget"}}, "default": {"schema": {"$ref": "../common/types.json#/definitions/ErrorResponse"}}}
            }}},
            "definitions": {"Widget": {"allOf": [{"$ref": "../common/types.json#/definitions/Tracked"}], "properties": {
                "kind": {"type": "string", "enum": ["a"], "x-ms-enum": {"modelAsString": true}},
                "mode": {"type": "string", "enum": ["on", "off"], "x-ms-enum": {"modelAsString": false}}
            }}}
        });
        let common = json!({
            "parameters": {"Sub": {"in": "path", "name": "subscriptionId"}},
            "definitions": {
                "Tracked": {"type": "object", "required": ["location"], "properties": {
                    "id": {"type": "string", "readOnly": true}, "location": {"type": "string"},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}}
                }},
                "ErrorResponse": {"type": "object", "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
            }
        });
        let specs = Specs::from_files(&[
            ("arm/v1/widgets.json", &doc.to_string()),
            ("arm/common/types.json", &common.to_string()),
        ])
        .unwrap();
        let path = "/SUBSCRIPTIONS/1/providers/microsoft.widgets/widgets/w1";
        let ok = json!({"location": "westeurope", "kind": "anything", "mode": "on", "tags": {"a": "b"}, "id": "x"});
        assert_eq!(
            specs.request_problems(Api::Arm, &Method::PUT, path, "api-version=2023-01-01", &ok),
            vec![]
        );
        let bad = json!({"kind": "x", "mode": "sideways", "tags": {"a": 1}, "extra": true});
        let problems =
            specs.request_problems(Api::Arm, &Method::PUT, path, "api-version=2023-01-01", &bad);
        let messages: Vec<String> = problems
            .iter()
            .map(|p| format!("{} {}", p.pointer, p.message))
            .collect();
        assert_eq!(problems.len(), 4, "{messages:?}");
        assert!(
            specs
                .request_problems(Api::Arm, &Method::PUT, path, "api-version=2020-01-01", &bad)
                .is_empty(),
            "other api-versions are not this file"
        );
        let error = json!({"error": {"code": "ResourceNotFound", "message": "m"}});
        assert!(specs
            .response_violations(
                Api::Arm,
                &Method::PUT,
                path,
                "api-version=2023-01-01",
                404,
                &error
            )
            .is_empty());
    }

    #[test]
    fn vendored_specs_load_and_know_the_breakglass_operations() {
        let specs = specs();
        assert!(specs
            .find_operation(Api::Graph, &Method::POST, "/v1.0/users", "")
            .is_some());
        assert!(specs
            .find_operation(
                Api::Graph,
                &Method::POST,
                "/v1.0/directory/deletedItems/1/microsoft.graph.restore",
                ""
            )
            .is_some());
        assert!(specs
            .find_operation(
                Api::Arm,
                &Method::PUT,
                "/providers/microsoft.aadiam/diagnosticSettings/x",
                "api-version=2017-04-01"
            )
            .is_some());
        let problems = specs.request_problems(
            Api::Graph,
            &Method::POST,
            "/v1.0/users",
            "",
            &json!({"accountEnabled": true, "displayName": "BG", "passwordProfile": {"password": "x", "forceChangePasswordNextSignIn": false}, "favouriteColour": "red"}),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].kind,
            ProblemKind::UnknownProperty("favouriteColour".into())
        );
    }

    #[test]
    fn requests_are_refused_only_where_the_service_front_layer_refuses_them() {
        let users = "/v1.0/users";
        let nested_unknown = json!({"passwordProfile": {"password": "x", "colour": "red"}});
        assert_eq!(
            check_request(Api::Graph, &Method::POST, users, "", &nested_unknown),
            Err("Invalid property 'colour'.".into())
        );
        let wrong_type = json!({"accountEnabled": "yes"});
        assert!(check_request(Api::Graph, &Method::POST, users, "", &wrong_type).is_err());
        // Missing required members are the handler's business (it names the member).
        assert!(check_request(Api::Graph, &Method::PATCH, "/v1.0/users/1", "", &json!({})).is_ok());

        let setting = "/providers/microsoft.aadiam/diagnosticSettings/bg";
        let query = "api-version=2017-04-01";
        let inside_properties = json!({"properties": {"somethingNew": true}});
        assert!(check_request(Api::Arm, &Method::PUT, setting, query, &inside_properties).is_ok());
        let top_level = json!({"properties": {}, "colour": "red"});
        let message =
            check_request(Api::Arm, &Method::PUT, setting, query, &top_level).unwrap_err();
        assert!(
            message.contains("Could not find member 'colour'"),
            "{message}"
        );
    }

    #[test]
    fn operation_path_patterns_match_every_request_of_the_operation() {
        let (pattern, template) = operation_path_pattern(
            Api::Graph,
            &Method::PATCH,
            "/v1.0/identity/conditionalAccess/policies/ca000000-0000-4000-8000-000000000001",
            "",
        )
        .expect("a vendored operation");
        assert_eq!(
            template,
            "/v1.0/identity/conditionalAccess/policies/{conditionalAccessPolicy-id}"
        );
        let re = regex::Regex::new(&pattern).unwrap();
        assert!(re.is_match("/v1.0/identity/conditionalAccess/policies/other-id"));
        assert!(re.is_match("/v1.0/identity/conditionalaccess/policies/x"));
        assert!(!re.is_match("/v1.0/identity/conditionalAccess/policies"));
        assert!(!re.is_match("/v1.0/identity/conditionalAccess/policies/x/y"));
        // ARM's multi-segment {scope}.
        let (pattern, _) = operation_path_pattern(
            Api::Arm,
            &Method::PUT,
            "/providers/Microsoft.aadiam/providers/Microsoft.Authorization/roleAssignments/a1",
            "api-version=2022-04-01",
        )
        .expect("role assignments at a scope");
        let re = regex::Regex::new(&pattern).unwrap();
        assert!(re.is_match(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/b2"
        ));
        assert_eq!(
            operation_path_pattern(Api::Graph, &Method::GET, "/v1.0/nowhere", ""),
            None
        );
    }
}
