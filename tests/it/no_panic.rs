//! No panic reachable from input: property tests over every attribute of every resource, data
//! source and the provider block, generated from their schemas (so every resource registered
//! later joins without a line here), driven through the real gRPC service implementation the
//! way Terraform's requests arrive — msgpack and JSON `DynamicValue`s decoded by the protocol
//! layer, the declared validators, `framework_plan`, the typed models' decode, each resource's
//! `validate` and `modify_plan` with no configured clients, state upgrades and the RPCs that
//! need a configured provider (which must refuse, not fall over).
//!
//! What is generated: any Unicode (control characters, combining marks, emoji, right-to-left
//! marks, NUL), empty and blank strings, long strings, the values each schema's descriptions
//! name in backticks (so enums, durations and GUID-shaped values reach the deeper paths), huge,
//! negative and fractional numbers, NaN and infinities, `null` and unknown at every depth,
//! collections with duplicates, and nested objects and blocks of every nesting mode.
//!
//! What is asserted for each generated request:
//! - the answer is an OK gRPC response without the "Provider bug" diagnostic the service turns
//!   a caught panic into (the panic hook prints the panic itself to stderr);
//! - every error diagnostic at validate time names an attribute path that exists in the
//!   schema, and never quotes a generated secret of a sensitive or write-only attribute;
//! - plan answers decode under the schema, point `requires_replace` at schema paths, keep every
//!   configured non-computed attribute exactly as configured (Terraform's plan-validity rule),
//!   and a configuration that passed validation never fails to decode into the typed model.
//!
//! Budget: the case counts below keep the whole module to seconds on `make test`;
//! `BREAKGLASS_SOAK=1` (what `make soak` sets) multiplies them by 50, and
//! `BREAKGLASS_FUZZ_CASES=N` sets an exact count per property.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use breakglass::framework::{
    Attribute, AttributeKind, Block, DataSource, NestingMode, Number, Provider, Resource, Schema,
    Type, Value,
};
use breakglass::protocol::codec::{decode_msgpack, encode_json, encode_msgpack};
use breakglass::protocol::proto::tfplugin6 as proto;
use breakglass::protocol::proto::tfplugin6::provider_server::Provider as ProviderRpc;
use breakglass::protocol::wire::ProviderService;
use breakglass::provider::BreakglassProvider;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---- budget ---------------------------------------------------------------------------------

/// The number of cases a property runs: `ci` on `make test`, 50 × `ci` under `BREAKGLASS_SOAK`,
/// or exactly `BREAKGLASS_FUZZ_CASES`.
pub fn cases(ci: u32) -> u32 {
    if let Some(n) = std::env::var("BREAKGLASS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return n;
    }
    if std::env::var("BREAKGLASS_SOAK").is_ok_and(|v| !v.is_empty() && v != "0") {
        return ci.saturating_mul(50);
    }
    ci
}

fn runner(ci: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(ci),
        // A failure prints its minimal input; no regression files are written into the tree.
        failure_persistence: None,
        ..Config::default()
    })
}

// ---- the provider as Terraform reaches it ----------------------------------------------------

/// The provider with an empty environment, so nothing of the developer's `ARM_*` settings
/// takes part (and nothing can make it reach a real tenant).
fn provider() -> BreakglassProvider {
    BreakglassProvider::with_env(Arc::new(|_: &str| None))
}

fn service() -> ProviderService<breakglass::azure::AzureClients> {
    ProviderService::new(Arc::new(provider()))
}

struct Catalog {
    provider: Schema,
    resources: Vec<(String, Schema)>,
    data_sources: Vec<(String, Schema)>,
    /// Strings worth trying in any string attribute (see `vocabulary`).
    vocabulary: Vec<String>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let p = provider();
        let resources: Vec<(String, Schema)> = p
            .resources()
            .iter()
            .map(|r: &Arc<dyn Resource<_>>| (r.type_name().to_owned(), r.schema()))
            .collect();
        let data_sources: Vec<(String, Schema)> = p
            .data_sources()
            .iter()
            .map(|d: &Arc<dyn DataSource<_>>| (d.type_name().to_owned(), d.schema()))
            .collect();
        let provider = p.schema();
        let mut schemas: Vec<&Schema> = vec![&provider];
        schemas.extend(resources.iter().map(|(_, s)| s));
        schemas.extend(data_sources.iter().map(|(_, s)| s));
        let vocabulary = vocabulary(&schemas);
        Catalog {
            provider,
            resources,
            data_sources,
            vocabulary,
        }
    })
}

/// Every backticked word in the schemas' descriptions and declared rules (`pim`, `direct`,
/// `30m`, `enabled`, `/administrativeUnits/…`, …), and values shaped like what the attributes
/// hold or nearly hold: valid and broken GUIDs, UPNs, durations, scopes, country codes.
fn vocabulary(schemas: &[&Schema]) -> Vec<String> {
    fn texts(attributes: &[Attribute], blocks: &[Block], out: &mut Vec<String>) {
        for a in attributes {
            out.push(a.description.clone());
            out.extend(a.constraint_notes());
            if let AttributeKind::Nested { attributes, .. } = &a.kind {
                texts(attributes, &[], out);
            }
        }
        for b in blocks {
            out.push(b.description.clone());
            texts(&b.attributes, &b.blocks, out);
        }
    }
    let mut descriptions = Vec::new();
    for s in schemas {
        descriptions.push(s.description.clone());
        texts(&s.attributes, &s.blocks, &mut descriptions);
    }
    let mut words: BTreeSet<String> = BTreeSet::new();
    for text in &descriptions {
        for (i, part) in text.split('`').enumerate() {
            if i % 2 == 1 && part.len() <= 120 {
                words.insert(part.to_owned());
                words.insert(part.trim_matches('"').to_owned());
            }
        }
    }
    for fixed in [
        "00000000-0000-0000-0000-000000000000",
        "62e90394-69f5-4237-9190-012177145e10",
        "46810BCD-886D-469E-A664-C8D3691D74FD",
        "46810bcd-886d-469e-a664-c8d3691d74f",
        "{46810bcd-886d-469e-a664-c8d3691d74fd}",
        "46810bcd886d469ea664c8d3691d74fd",
        "bg-01@contoso.onmicrosoft.com",
        "BG-01@CONTOSO.COM",
        "bg..01@contoso.com",
        "@contoso.com",
        "bg@",
        "bg@@contoso.com",
        "bg@contoso",
        "bg@-contoso.com",
        "bg@xn--caf-dma.com",
        "ünïcödé@contoso.com",
        "/",
        "/administrativeUnits/3ed29667-91a0-4a96-9654-80c9dde3898d",
        "/administrativeUnits/",
        "/administrativeUnits/x",
        "//",
        "NL",
        "nl",
        "N",
        "NLD",
        "0s",
        "1ns",
        "30m",
        "1h30m",
        "-5m",
        "5",
        "1.5h",
        ".5s",
        "9223372036854775807ns",
        "9223372036854775808ns",
        "2562047h47m16.854775807s",
        "2562048h",
        "99999999999999999999h",
        "1e3s",
        "PT5M",
        "Aa1!Aa1!Aa1!Aa1!",
        "Corr3ct-Horse-Battery",
        "password",
        "true",
        "false",
        "null",
        "0",
        "-1",
        "",
        " ",
        "\t\n",
        "\u{0}",
        "\u{200f}\u{202e}",
        "e\u{301}",
        "🦀",
        "\u{feff}bg",
        "a\u{0}b",
    ] {
        words.insert(fixed.to_owned());
    }
    words.into_iter().collect()
}

// ---- value strategies -------------------------------------------------------------------------

/// Marks generated secrets so a leak check can find them in diagnostics without false hits on
/// words the provider itself writes.
const SECRET_MARK: &str = "Zq7-secret-";

fn strings() -> BoxedStrategy<String> {
    let vocabulary = catalog().vocabulary.clone();
    prop_oneof![
        4 => proptest::sample::select(vocabulary),
        3 => "\\PC{0,24}",
        2 => any::<String>(),
        1 => "[0-9a-fA-F-]{30,40}",
        1 => "[a-z0-9.@-]{1,80}@[a-z0-9.-]{0,40}",
        1 => "[0-9]{1,25}(ns|us|µs|ms|s|m|h|d)",
        1 => "[A-Za-z]{300,1200}",
    ]
    .boxed()
}

fn secrets() -> BoxedStrategy<String> {
    prop_oneof![
        2 => strings(),
        1 => "[A-Za-z0-9!#%*+.:=?^_~-]{8,40}".prop_map(|s| format!("{SECRET_MARK}{s}")),
    ]
    .boxed()
}

fn numbers() -> BoxedStrategy<Number> {
    prop_oneof![
        2 => any::<i64>().prop_map(Number::Int),
        2 => proptest::sample::select(vec![
            0i64, 1, -1, 2, 7, 15, 16, 64, 255, 256, 257, 1000, 86_400, i64::MAX, i64::MIN,
            i64::MAX - 1, i64::MIN + 1, i32::MAX as i64 + 1, 9_007_199_254_740_993,
        ])
        .prop_map(Number::Int),
        2 => any::<f64>().prop_map(Number::Float),
        2 => proptest::sample::select(vec![
            0.5, -0.5, 16.5, 63.999_999_999, 1e-300, -1e-300, 1e300, -1e300, f64::MAX, f64::MIN,
            f64::MIN_POSITIVE, -0.0, 9.0e15, 9.3e18, -9.3e18, 1.8446744073709552e19, 64.0,
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY,
        ])
        .prop_map(Number::Float),
    ]
    .boxed()
}

/// A small concrete type for `dynamic` attributes (which carry their own type on the wire).
fn concrete_type() -> BoxedStrategy<Type> {
    let leaf = prop_oneof![Just(Type::String), Just(Type::Number), Just(Type::Bool)];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            btree_map("[a-z]{1,6}", inner, 0..3).prop_map(Type::Object),
        ]
    })
    .boxed()
}

/// How values are generated: inside or outside Terraform's contract for configuration.
#[derive(Clone, Copy)]
struct Mode {
    /// Unknown values may appear (configuration and plans, never state).
    unknowns: bool,
    /// Leaves are secrets (inside sensitive or write-only attributes).
    secret: bool,
}

/// Any value of `ty`: null and (if allowed) unknown at every depth.
fn value_of(ty: &Type, mode: Mode) -> BoxedStrategy<Value> {
    let known = known_of(ty, mode);
    if mode.unknowns {
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 6 => known].boxed()
    }
}

fn known_of(ty: &Type, mode: Mode) -> BoxedStrategy<Value> {
    match ty {
        Type::String if mode.secret => secrets().prop_map(Value::String).boxed(),
        Type::String => strings().prop_map(Value::String).boxed(),
        Type::Number => numbers().prop_map(Value::Number).boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::List(e) => vec(value_of(e, mode), 0..4).prop_map(Value::List).boxed(),
        Type::Set(e) => {
            // Duplicates on purpose, sometimes: a set that is not one must not break anything.
            let element = value_of(e, mode);
            prop_oneof![
                3 => vec(element.clone(), 0..4).prop_map(Value::Set),
                1 => element.prop_map(|v| Value::Set(vec![v.clone(), v])),
            ]
            .boxed()
        }
        Type::Map(e) => btree_map(strings(), value_of(e, mode), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(elements) => elements
            .iter()
            .map(|e| value_of(e, mode))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object(attributes) => attributes
            .iter()
            .map(|(name, t)| {
                let name = name.clone();
                value_of(t, mode).prop_map(move |v| (name.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
            .boxed(),
        Type::Dynamic => concrete_type()
            .prop_flat_map(move |t| {
                let carried = t.clone();
                known_of(&t, mode).prop_map(move |v| Value::Dynamic(carried.clone(), Box::new(v)))
            })
            .boxed(),
    }
}

/// A configuration as Terraform can send one: required attributes set (known or unknown),
/// computed-only attributes null, optional ones anything; nested attributes and blocks the
/// same way, at every nesting mode.
fn config(schema: &Schema) -> BoxedStrategy<Value> {
    prop_oneof![
        config_object(&schema.attributes, &schema.blocks, false),
        config_object(&schema.attributes, &schema.blocks, true),
    ]
    .boxed()
}

/// One configuration object; `sparse` leaves most optional attributes and blocks unset (as
/// most real configurations do), which lets more of them pass the rules between siblings.
fn config_object(attributes: &[Attribute], blocks: &[Block], sparse: bool) -> BoxedStrategy<Value> {
    let mut parts: Vec<BoxedStrategy<(String, Value)>> = Vec::new();
    for a in attributes {
        let name = a.name.clone();
        let mode = Mode {
            unknowns: true,
            secret: a.sensitive || a.write_only,
        };
        let known: BoxedStrategy<Value> = match &a.kind {
            AttributeKind::Typed(t) => known_of(t, mode),
            AttributeKind::Nested {
                nesting,
                attributes,
            } => nested(*nesting, config_object(attributes, &[], sparse)),
        };
        // Mostly values the attribute's own rules accept, so whole configurations pass
        // validation often enough to reach planning and the models.
        let known = match plausible(a) {
            Some(passing) => prop_oneof![1 => known, 3 => passing].boxed(),
            None => known,
        };
        let value = if a.computed && !a.optional && !a.required {
            Just(Value::Null).boxed()
        } else if a.required {
            prop_oneof![1 => Just(Value::Unknown), 8 => known].boxed()
        } else {
            let unset = if sparse { 24 } else { 3 };
            prop_oneof![unset => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
        };
        parts.push(value.prop_map(move |v| (name.clone(), v)).boxed());
    }
    for b in blocks {
        let name = b.type_name.clone();
        let object = config_object(&b.attributes, &b.blocks, sparse);
        let value = match b.nesting {
            NestingMode::Single | NestingMode::Group => {
                let unset = if sparse { 8 } else { 2 };
                prop_oneof![unset => Just(Value::Null), 3 => object].boxed()
            }
            other => nested(other, object),
        };
        parts.push(value.prop_map(move |v| (name.clone(), v)).boxed());
    }
    parts
        .prop_map(|pairs| as_cty(Value::Object(pairs.into_iter().collect::<BTreeMap<_, _>>())))
        .boxed()
}

/// What Terraform makes of a value: a set holds each known element once (unknown elements are
/// never equal to anything, so all of them stay).
fn as_cty(value: Value) -> Value {
    match value {
        Value::Set(items) => {
            let mut out: Vec<Value> = Vec::new();
            for item in items.into_iter().map(as_cty) {
                if !item.is_fully_known() || !out.contains(&item) {
                    out.push(item);
                }
            }
            Value::Set(out)
        }
        Value::List(items) => Value::List(items.into_iter().map(as_cty).collect()),
        Value::Tuple(items) => Value::Tuple(items.into_iter().map(as_cty).collect()),
        Value::Map(m) => Value::Map(m.into_iter().map(|(k, v)| (k, as_cty(v))).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, as_cty(v))).collect()),
        Value::Dynamic(t, v) => Value::Dynamic(t, Box::new(as_cty(*v))),
        other => other,
    }
}

/// Values that pass the attribute's own declared rules (siblings unknown, so rules about
/// siblings pass too), drawn from the vocabulary and the interesting numbers — so validation
/// lets enough configurations through for planning and the typed models to be reached. `None`
/// when no candidate passes or the shape is not a string, number or collection of strings.
fn plausible(a: &Attribute) -> Option<BoxedStrategy<Value>> {
    let AttributeKind::Typed(ty) = &a.kind else {
        return None;
    };
    let sensitive = a.sensitive || a.write_only;
    let passes = |v: &Value| {
        a.validators
            .iter()
            .all(|rule| rule.check(v, &Value::Unknown, sensitive).is_none())
    };
    let words = || catalog().vocabulary.iter().cloned().map(Value::String);
    let numbers = [
        0i64, 1, 2, 5, 15, 16, 17, 30, 64, 100, 255, 256, 257, 1000, 3600, 86_400, -1,
    ]
    .map(|n| Value::Number(Number::Int(n)));
    // A collection's rules (`each(guid())`, …) judge each candidate as a one-element collection.
    let wrap = |make: fn(Value) -> Value| -> Vec<Value> {
        words().filter(|w| passes(&make(w.clone()))).collect()
    };
    let pool: Vec<Value> = match ty {
        Type::String => words().filter(|v| passes(v)).collect(),
        Type::Number => numbers.into_iter().filter(|v| passes(v)).collect(),
        Type::List(e) | Type::Set(e) | Type::Map(e) if **e == Type::String => match ty {
            Type::List(_) => wrap(|v| Value::List(vec![v])),
            Type::Set(_) => wrap(|v| Value::Set(vec![v])),
            _ => wrap(|v| Value::Map([("k".to_owned(), v)].into())),
        },
        _ => return None,
    };
    if pool.is_empty() {
        return None;
    }
    let element = proptest::sample::select(pool);
    Some(match ty {
        Type::List(_) => vec(element, 0..3).prop_map(Value::List).boxed(),
        Type::Set(_) => vec(element, 0..3).prop_map(Value::Set).boxed(),
        Type::Map(_) => btree_map("[a-z]{1,8}", element, 0..3)
            .prop_map(Value::Map)
            .boxed(),
        _ => element.boxed(),
    })
}

fn nested(nesting: NestingMode, object: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    match nesting {
        NestingMode::Single | NestingMode::Group => object,
        NestingMode::List => vec(object, 0..3).prop_map(Value::List).boxed(),
        NestingMode::Set => vec(object, 0..3).prop_map(Value::Set).boxed(),
        NestingMode::Map => btree_map(strings(), object, 0..3)
            .prop_map(Value::Map)
            .boxed(),
    }
}

/// A stored state: any value of the schema's type, without unknowns (a state file edited by
/// hand or written by another version can hold anything of the right shape).
fn state_of(schema: &Schema) -> BoxedStrategy<Value> {
    let ty = schema.value_type();
    prop_oneof![
        1 => Just(Value::Null),
        6 => known_of(&ty, Mode { unknowns: false, secret: false }),
    ]
    .boxed()
}

/// Terraform's proposed new state (`objchange.ProposedNew`, top level): configured values, and
/// the prior value of every computed attribute the configuration leaves null.
fn proposed(schema: &Schema, config: &Value, prior: &Value) -> Value {
    if prior.is_null() || !matches!(config, Value::Object(_)) {
        return config.clone();
    }
    let mut out = config.clone();
    for a in schema.attributes.iter().filter(|a| a.computed) {
        if config.get(&a.name).is_null() {
            out.set(&a.name, prior.get(&a.name));
        }
    }
    out
}

// ---- requests and answers -----------------------------------------------------------------------

fn msgpack(value: &Value, ty: &Type) -> Option<proto::DynamicValue> {
    encode_msgpack(value, ty)
        .ok()
        .map(|bytes| proto::DynamicValue {
            msgpack: bytes,
            json: Vec::new(),
        })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn call<T>(
    rpc: &str,
    future: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, TestCaseError> {
    runtime()
        .block_on(future)
        .map(tonic::Response::into_inner)
        .map_err(|status| TestCaseError::fail(format!("{rpc} answered a gRPC error: {status}")))
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// No diagnostic says a panic was caught.
fn no_caught_panic(rpc: &str, diagnostics: &[proto::Diagnostic]) -> Result<(), TestCaseError> {
    match diagnostics.iter().find(|d| d.summary == "Provider bug") {
        Some(d) => Err(fail(format!(
            "{rpc} panicked (see the panic above): {}",
            d.detail
        ))),
        None => Ok(()),
    }
}

fn is_error(d: &proto::Diagnostic) -> bool {
    d.severity == proto::diagnostic::Severity::Error as i32
}

/// Whether `path` names an attribute or block of `schema` (with indexes and keys only where the
/// nesting has them; a path may stop at a set, whose elements have no address).
fn path_in_schema(schema: &Schema, path: &proto::AttributePath) -> bool {
    use proto::attribute_path::step::Selector;
    enum Node<'a> {
        Object(&'a [Attribute], &'a [Block]),
        Collection(NestingMode, &'a [Attribute], &'a [Block]),
        Typed(&'a Type),
    }
    let mut node = Node::Object(&schema.attributes, &schema.blocks);
    if path.steps.is_empty() {
        return false;
    }
    for step in &path.steps {
        let Some(selector) = &step.selector else {
            return false;
        };
        node = match (node, selector) {
            (Node::Object(attributes, blocks), Selector::AttributeName(name)) => {
                if let Some(a) = attributes.iter().find(|a| &a.name == name) {
                    match &a.kind {
                        AttributeKind::Typed(t) => Node::Typed(t),
                        AttributeKind::Nested {
                            nesting: NestingMode::Single | NestingMode::Group,
                            attributes,
                        } => Node::Object(attributes, &[]),
                        AttributeKind::Nested {
                            nesting,
                            attributes,
                        } => Node::Collection(*nesting, attributes, &[]),
                    }
                } else if let Some(b) = blocks.iter().find(|b| &b.type_name == name) {
                    match b.nesting {
                        NestingMode::Single | NestingMode::Group => {
                            Node::Object(&b.attributes, &b.blocks)
                        }
                        other => Node::Collection(other, &b.attributes, &b.blocks),
                    }
                } else {
                    return false;
                }
            }
            // Inside a set-nested block the provider names the attribute without an element
            // step (a set element has no address short of its whole value), and Terraform
            // resolves `managers.principal_id` to that attribute's line in the block
            // (tests/it/bad_input.rs proves it for breakglass_restricted_unit's managers).
            (Node::Collection(NestingMode::Set, a, b), Selector::AttributeName(name)) => {
                if let Some(attribute) = a.iter().find(|x| &x.name == name) {
                    match &attribute.kind {
                        AttributeKind::Typed(t) => Node::Typed(t),
                        _ => return false,
                    }
                } else if let Some(block) = b.iter().find(|x| &x.type_name == name) {
                    match block.nesting {
                        NestingMode::Single | NestingMode::Group => {
                            Node::Object(&block.attributes, &block.blocks)
                        }
                        other => Node::Collection(other, &block.attributes, &block.blocks),
                    }
                } else {
                    return false;
                }
            }
            (Node::Collection(NestingMode::List, a, b), Selector::ElementKeyInt(_))
            | (Node::Collection(NestingMode::Map, a, b), Selector::ElementKeyString(_)) => {
                Node::Object(a, b)
            }
            (Node::Typed(Type::List(e) | Type::Set(e)), Selector::ElementKeyInt(_))
            | (Node::Typed(Type::Map(e)), Selector::ElementKeyString(_)) => Node::Typed(e),
            (Node::Typed(Type::Object(attrs)), Selector::AttributeName(name)) => {
                match attrs.get(name) {
                    Some(t) => Node::Typed(t),
                    None => return false,
                }
            }
            (Node::Typed(Type::Dynamic), _) => Node::Typed(&Type::Dynamic),
            _ => return false,
        };
    }
    true
}

fn show_path(path: &Option<proto::AttributePath>) -> String {
    format!("{path:?}")
}

/// Every generated secret inside `value` (strings carrying [`SECRET_MARK`]).
fn marked_secrets(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.contains(SECRET_MARK) => out.push(s.clone()),
        Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
            v.iter().for_each(|e| marked_secrets(e, out))
        }
        Value::Map(m) | Value::Object(m) => m.values().for_each(|e| marked_secrets(e, out)),
        Value::Dynamic(_, v) => marked_secrets(v, out),
        _ => {}
    }
}

/// The validate-time rules for diagnostics: each error has a path into the schema; no
/// diagnostic quotes a generated secret.
fn check_validate_diagnostics(
    rpc: &str,
    schema: &Schema,
    config: &Value,
    diagnostics: &[proto::Diagnostic],
) -> Result<(), TestCaseError> {
    no_caught_panic(rpc, diagnostics)?;
    for d in diagnostics.iter().filter(|d| is_error(d)) {
        let ok = d
            .attribute
            .as_ref()
            .is_some_and(|p| path_in_schema(schema, p));
        if !ok {
            return Err(fail(format!(
                "{rpc}: error {:?} ({}) has no attribute path into the schema: {}",
                d.summary,
                d.detail,
                show_path(&d.attribute)
            )));
        }
    }
    let mut secrets = Vec::new();
    marked_secrets(config, &mut secrets);
    for s in secrets {
        for d in diagnostics {
            if d.summary.contains(&s) || d.detail.contains(&s) {
                return Err(fail(format!(
                    "{rpc}: a diagnostic quotes a sensitive value: {:?}",
                    d.summary
                )));
            }
        }
    }
    Ok(())
}

// ---- the properties ---------------------------------------------------------------------------

/// How often each deeper check ran, per resource type, so a property cannot pass because its
/// inputs never got that far (asserted at the end of each property).
static TALLY: std::sync::Mutex<BTreeMap<(String, &'static str), u32>> =
    std::sync::Mutex::new(BTreeMap::new());

fn tally(type_name: &str, what: &'static str) {
    *TALLY
        .lock()
        .unwrap()
        .entry((type_name.to_owned(), what))
        .or_default() += 1;
}

fn tallied(type_name: &str, what: &'static str) -> u32 {
    TALLY
        .lock()
        .unwrap()
        .get(&(type_name.to_owned(), what))
        .copied()
        .unwrap_or_default()
}

fn capabilities(write_only: bool) -> Option<proto::ClientCapabilities> {
    Some(proto::ClientCapabilities {
        deferral_allowed: false,
        write_only_attributes_allowed: write_only,
    })
}

/// One resource: validate, plan (create and update, with Terraform's proposal and with an
/// arbitrary one), apply, read, import and upgrade, all on an unconfigured provider.
fn exercise_resource(
    service: &ProviderService<breakglass::azure::AzureClients>,
    case: &ResourceCase,
) -> Result<(), TestCaseError> {
    let (type_name, schema) = &catalog().resources[case.index];
    let (config, prior, odd_proposal) = (&case.config, &case.prior, &case.odd_proposal);
    let (write_only, import_id) = (case.write_only, case.import_id.as_str());
    let ty = schema.value_type();
    let Some(config_dv) = msgpack(config, &ty) else {
        // Not encodable (NaN, …): Terraform cannot send it either; the codec said so without
        // panicking, which is all there is to check.
        return Ok(());
    };

    let validated = call(
        "ValidateResourceConfig",
        ProviderRpc::validate_resource_config(
            service,
            tonic::Request::new(proto::validate_resource_config::Request {
                type_name: type_name.to_owned(),
                config: Some(config_dv.clone()),
                client_capabilities: capabilities(write_only),
            }),
        ),
    )?;
    let v_diags = &validated.diagnostics;
    check_validate_diagnostics("ValidateResourceConfig", schema, config, v_diags)?;
    let valid = !v_diags.iter().any(is_error);
    if valid {
        tally(type_name, "valid");
    }

    // Create, update with Terraform's proposal, and an arbitrary proposal over the prior.
    for (label, prior, proposal) in [
        ("create", &Value::Null, config.clone()),
        ("update", prior, proposed(schema, config, prior)),
        ("an arbitrary proposal", prior, odd_proposal.clone()),
    ] {
        let faithful = label != "an arbitrary proposal";
        let planned = call(
            "PlanResourceChange",
            ProviderRpc::plan_resource_change(
                service,
                tonic::Request::new(proto::plan_resource_change::Request {
                    type_name: type_name.to_owned(),
                    prior_state: msgpack(prior, &ty),
                    proposed_new_state: msgpack(&proposal, &ty),
                    config: Some(config_dv.clone()),
                    client_capabilities: capabilities(write_only),
                    ..Default::default()
                }),
            ),
        )?;
        no_caught_panic("PlanResourceChange", &planned.diagnostics)?;
        for path in &planned.requires_replace {
            if !path_in_schema(schema, path) {
                return Err(fail(format!(
                    "PlanResourceChange ({label}): requires_replace {path:?} is not in the schema"
                )));
            }
        }
        let errors: Vec<&proto::Diagnostic> =
            planned.diagnostics.iter().filter(|d| is_error(d)).collect();
        // On create (no stored state to be odd), what validation let through must decode.
        if valid && label == "create" {
            if let Some(d) = errors.iter().find(|d| d.summary == "Unexpected value") {
                return Err(fail(format!(
                    "a configuration that passed validation does not decode into the model: {}",
                    d.detail
                )));
            }
        }
        let Some(state) = planned.planned_state else {
            continue;
        };
        let planned_value = decode_msgpack(&state.msgpack, &ty)
            .map_err(|e| fail(format!("planned state does not decode: {e}")))?;
        if valid && errors.is_empty() && faithful && !planned_value.is_null() {
            tally(type_name, "plan checked against config");
            for a in schema
                .attributes
                .iter()
                .filter(|a| !a.computed && !a.write_only)
            {
                let (want, got) = (config.get(&a.name), planned_value.get(&a.name));
                if want != got {
                    return Err(fail(format!(
                        "{label}: planned `{}` is {got:?}, but Terraform requires the configured {want:?}",
                        a.name
                    )));
                }
            }
        }
    }

    let applied = call(
        "ApplyResourceChange",
        ProviderRpc::apply_resource_change(
            service,
            tonic::Request::new(proto::apply_resource_change::Request {
                type_name: type_name.to_owned(),
                prior_state: msgpack(prior, &ty),
                planned_state: msgpack(odd_proposal, &ty),
                config: Some(config_dv.clone()),
                ..Default::default()
            }),
        ),
    )?;
    no_caught_panic("ApplyResourceChange", &applied.diagnostics)?;

    let read = call(
        "ReadResource",
        ProviderRpc::read_resource(
            service,
            tonic::Request::new(proto::read_resource::Request {
                type_name: type_name.to_owned(),
                current_state: msgpack(prior, &ty),
                ..Default::default()
            }),
        ),
    )?;
    no_caught_panic("ReadResource", &read.diagnostics)?;

    let imported = call(
        "ImportResourceState",
        ProviderRpc::import_resource_state(
            service,
            tonic::Request::new(proto::import_resource_state::Request {
                type_name: type_name.to_owned(),
                id: import_id.to_owned(),
                ..Default::default()
            }),
        ),
    )?;
    no_caught_panic("ImportResourceState", &imported.diagnostics)?;

    if let Ok(json) = encode_json(prior, &ty) {
        for version in [schema.version, schema.version - 1, schema.version + 1] {
            let upgraded = call(
                "UpgradeResourceState",
                ProviderRpc::upgrade_resource_state(
                    service,
                    tonic::Request::new(proto::upgrade_resource_state::Request {
                        type_name: type_name.to_owned(),
                        version,
                        raw_state: Some(proto::RawState {
                            json: json.clone(),
                            flatmap: Default::default(),
                        }),
                    }),
                ),
            )?;
            no_caught_panic("UpgradeResourceState", &upgraded.diagnostics)?;
            if version == schema.version {
                if let Some(d) = upgraded.diagnostics.iter().find(|d| is_error(d)) {
                    return Err(fail(format!(
                        "state of the current version written as JSON does not load back: {} {}",
                        d.summary, d.detail
                    )));
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct ResourceCase {
    index: usize,
    config: Value,
    prior: Value,
    odd_proposal: Value,
    write_only: bool,
    import_id: String,
}

/// Cases for the resource at `index` of the catalog.
fn resource_case(index: usize) -> impl Strategy<Value = ResourceCase> {
    let schema = &catalog().resources[index].1;
    let ty = schema.value_type();
    {
        (
            config(schema),
            state_of(schema),
            value_of(
                &ty,
                Mode {
                    unknowns: true,
                    secret: false,
                },
            ),
            any::<bool>(),
            strings(),
        )
            .prop_map(
                move |(config, prior, odd_proposal, write_only, import_id)| ResourceCase {
                    index,
                    config,
                    prior,
                    odd_proposal,
                    write_only,
                    import_id,
                },
            )
    }
}

#[test]
fn every_resource_rpc_survives_generated_values() {
    let service = &service();
    assert!(!catalog().resources.is_empty());
    // The same number of cases for every resource, however many there are.
    for index in 0..catalog().resources.len() {
        runner(128)
            .run(&resource_case(index), |case| {
                exercise_resource(service, &case)
            })
            .unwrap();
    }
    // Each resource got configurations through validation and plans through the plan-validity
    // check, or the deeper properties would pass without having been tried.
    for (type_name, _) in &catalog().resources {
        let (valid, checked) = (
            tallied(type_name, "valid"),
            tallied(type_name, "plan checked against config"),
        );
        eprintln!("{type_name}: {valid} valid configurations, {checked} plans checked");
        assert!(
            valid > 0 && checked > 0,
            "{type_name}: no generated configuration passed validation and planned ({valid}, {checked})"
        );
    }
}

#[test]
fn data_sources_and_the_provider_block_survive_generated_values() {
    let service = &service();
    let count = catalog().data_sources.len();
    assert!(count > 0);
    let data_source = (0..count).prop_flat_map(|index| {
        let schema = &catalog().data_sources[index].1;
        config(schema).prop_map(move |c| (index, c))
    });
    let provider_block = { config(&catalog().provider) };
    runner(256)
        .run(
            &(data_source, provider_block),
            |((index, config), block)| {
                let (type_name, schema) = &catalog().data_sources[index];
                let ty = schema.value_type();
                if let Some(dv) = msgpack(&config, &ty) {
                    let validated = call(
                        "ValidateDataResourceConfig",
                        ProviderRpc::validate_data_resource_config(
                            service,
                            tonic::Request::new(proto::validate_data_resource_config::Request {
                                type_name: type_name.clone(),
                                config: Some(dv.clone()),
                            }),
                        ),
                    )?;
                    check_validate_diagnostics(
                        "ValidateDataResourceConfig",
                        schema,
                        &config,
                        &validated.diagnostics,
                    )?;
                    let read = call(
                        "ReadDataSource",
                        ProviderRpc::read_data_source(
                            service,
                            tonic::Request::new(proto::read_data_source::Request {
                                type_name: type_name.clone(),
                                config: Some(dv),
                                ..Default::default()
                            }),
                        ),
                    )?;
                    no_caught_panic("ReadDataSource", &read.diagnostics)?;
                }

                let provider_schema = &catalog().provider;
                if let Some(dv) = msgpack(&block, &provider_schema.value_type()) {
                    let validated = call(
                        "ValidateProviderConfig",
                        ProviderRpc::validate_provider_config(
                            service,
                            tonic::Request::new(proto::validate_provider_config::Request {
                                config: Some(dv.clone()),
                            }),
                        ),
                    )?;
                    check_validate_diagnostics(
                        "ValidateProviderConfig",
                        provider_schema,
                        &block,
                        &validated.diagnostics,
                    )?;
                    // Configure on a service of its own: a configuration that succeeds must not
                    // leave clients behind for the other requests (they would reach for Azure).
                    let configured = call(
                        "ConfigureProvider",
                        ProviderRpc::configure_provider(
                            &self::service(),
                            tonic::Request::new(proto::configure_provider::Request {
                                terraform_version: "1.11.4".into(),
                                config: Some(dv),
                                client_capabilities: capabilities(true),
                            }),
                        ),
                    )?;
                    no_caught_panic("ConfigureProvider", &configured.diagnostics)?;
                    let mut secrets = Vec::new();
                    marked_secrets(&block, &mut secrets);
                    for s in secrets {
                        if configured
                            .diagnostics
                            .iter()
                            .any(|d| d.summary.contains(&s) || d.detail.contains(&s))
                        {
                            return Err(fail("ConfigureProvider quotes a sensitive value".into()));
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Bytes Terraform never sends: noise, and valid encodings with bytes flipped, cut off or
/// swapped between msgpack and JSON, in every field of every request that carries a value.
#[test]
fn garbage_dynamic_values_and_raw_states_are_diagnostics() {
    let service = &service();
    let count = catalog().resources.len();
    let bytes = prop_oneof![
        2 => vec(any::<u8>(), 0..96),
        2 => (0..count).prop_flat_map(|index| {
            let ty = catalog().resources[index].1.value_type();
            (
                value_of(&ty, Mode { unknowns: false, secret: false }),
                vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
                any::<prop::sample::Index>(),
                any::<bool>(),
            )
                .prop_map(move |(value, flips, cut, as_json)| {
                    let encoded = if as_json {
                        encode_json(&value, &ty)
                    } else {
                        encode_msgpack(&value, &ty)
                    };
                    let mut bytes = encoded.unwrap_or_default();
                    for (at, byte) in flips {
                        if !bytes.is_empty() {
                            let i = at.index(bytes.len());
                            bytes[i] = byte;
                        }
                    }
                    if !bytes.is_empty() && cut.index(4) == 0 {
                        let len = cut.index(bytes.len());
                        bytes.truncate(len);
                    }
                    bytes
                })
        }),
        1 => Just(vec![0x91; 100_000]),
        1 => Just(vec![b'['; 100_000]),
        1 => Just([b"{\"a\":".repeat(30_000), b"1".to_vec()].concat()),
    ];
    let version = prop_oneof![
        Just(0i64),
        Just(-1),
        Just(1),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>()
    ];
    runner(256)
        .run(
            &(0..count, bytes, any::<bool>(), version),
            |(index, bytes, json_field, version)| {
                let (type_name, _) = &catalog().resources[index];
                let dv = if json_field {
                    proto::DynamicValue {
                        msgpack: Vec::new(),
                        json: bytes.clone(),
                    }
                } else {
                    proto::DynamicValue {
                        msgpack: bytes.clone(),
                        json: Vec::new(),
                    }
                };
                let validated = call(
                    "ValidateResourceConfig",
                    ProviderRpc::validate_resource_config(
                        service,
                        tonic::Request::new(proto::validate_resource_config::Request {
                            type_name: type_name.clone(),
                            config: Some(dv.clone()),
                            client_capabilities: capabilities(true),
                        }),
                    ),
                )?;
                no_caught_panic("ValidateResourceConfig", &validated.diagnostics)?;
                let planned = call(
                    "PlanResourceChange",
                    ProviderRpc::plan_resource_change(
                        service,
                        tonic::Request::new(proto::plan_resource_change::Request {
                            type_name: type_name.clone(),
                            prior_state: Some(dv.clone()),
                            proposed_new_state: Some(dv.clone()),
                            config: Some(dv.clone()),
                            ..Default::default()
                        }),
                    ),
                )?;
                no_caught_panic("PlanResourceChange", &planned.diagnostics)?;
                let provider = call(
                    "ValidateProviderConfig",
                    ProviderRpc::validate_provider_config(
                        service,
                        tonic::Request::new(proto::validate_provider_config::Request {
                            config: Some(dv.clone()),
                        }),
                    ),
                )?;
                no_caught_panic("ValidateProviderConfig", &provider.diagnostics)?;
                let upgraded = call(
                    "UpgradeResourceState",
                    ProviderRpc::upgrade_resource_state(
                        service,
                        tonic::Request::new(proto::upgrade_resource_state::Request {
                            type_name: type_name.clone(),
                            version,
                            raw_state: Some(proto::RawState {
                                json: bytes,
                                flatmap: Default::default(),
                            }),
                        }),
                    ),
                )?;
                no_caught_panic("UpgradeResourceState", &upgraded.diagnostics)?;
                Ok(())
            },
        )
        .unwrap();
}

/// The generator itself: it must reach every attribute with a known value, so a property that
/// passes is not passing because some attribute was never exercised.
#[test]
fn the_generator_reaches_every_attribute_of_every_schema() {
    let mut runner = runner(64);
    let mut schemas: Vec<(String, &Schema)> = vec![("provider".into(), &catalog().provider)];
    schemas.extend(catalog().resources.iter().map(|(n, s)| (n.clone(), s)));
    schemas.extend(catalog().data_sources.iter().map(|(n, s)| (n.clone(), s)));
    for (name, schema) in schemas {
        let strategy = config(schema);
        let settable: BTreeSet<&str> = schema
            .attributes
            .iter()
            .filter(|a| a.optional || a.required)
            .map(|a| a.name.as_str())
            .chain(schema.blocks.iter().map(|b| b.type_name.as_str()))
            .collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for _ in 0..200 {
            let value = strategy.new_tree(&mut runner).expect("generate").current();
            for (k, v) in value.entries().into_iter().flatten() {
                if !v.is_null() && !v.is_unknown() {
                    seen.insert(k.clone());
                }
            }
        }
        for attribute in settable {
            assert!(
                seen.contains(attribute),
                "{name}.{attribute} never got a known value from the generator"
            );
        }
    }
}

/// Directed, for what the generator finds only now and then: a set or list attribute whose
/// elements are all unknown before apply (`user_ids = [a.object_id, b.object_id]`) is planned
/// with every element — a set of two unknowns is not a set of one. For every collection
/// attribute of every resource, with everything else unknown.
#[test]
fn collections_of_unknowns_are_planned_element_for_element() {
    let service = &service();
    let mut checked = 0;
    for (type_name, schema) in &catalog().resources {
        let ty = schema.value_type();
        for attribute in schema
            .attributes
            .iter()
            .filter(|a| !a.computed || a.optional)
        {
            let two = match &attribute.kind {
                AttributeKind::Typed(Type::Set(_)) => Value::Set(vec![Value::Unknown; 2]),
                AttributeKind::Typed(Type::List(_)) => Value::List(vec![Value::Unknown; 2]),
                _ => continue,
            };
            let mut config = Value::object(schema.attributes.iter().map(|a| {
                let v = if a.computed && !a.optional {
                    Value::Null
                } else {
                    Value::Unknown
                };
                (a.name.clone(), v)
            }));
            for b in &schema.blocks {
                config.set(&b.type_name, Value::Null);
            }
            config.set(&attribute.name, two.clone());
            let planned = call(
                "PlanResourceChange",
                ProviderRpc::plan_resource_change(
                    service,
                    tonic::Request::new(proto::plan_resource_change::Request {
                        type_name: type_name.clone(),
                        prior_state: None,
                        proposed_new_state: msgpack(&config, &ty),
                        config: msgpack(&config, &ty),
                        client_capabilities: capabilities(true),
                        ..Default::default()
                    }),
                ),
            )
            .unwrap();
            let errors: Vec<_> = planned.diagnostics.iter().filter(|d| is_error(d)).collect();
            assert!(
                errors.is_empty(),
                "{type_name}.{}: {errors:?}",
                attribute.name
            );
            let value = decode_msgpack(&planned.planned_state.unwrap().msgpack, &ty).unwrap();
            assert_eq!(
                value.get(&attribute.name),
                two,
                "{type_name}.{}",
                attribute.name
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no resource has a collection attribute to check"
    );
}

// ---- a panic inside one RPC, with the real Terraform -------------------------------------------
//
// No input reaches a panic in the breakglass provider (that is what the properties above are
// for), so the real binary cannot honestly be made to panic, and a test hook in production code
// would be a way to make it do so in the field. Instead a small provider defined here, whose
// resource panics on a given input, is served in this process by the production server
// (`serve_reattachable`: the same gRPC service and the same per-RPC guard) and driven by the
// real `terraform` through TF_REATTACH_PROVIDERS — one server for every command, so a command
// after the panic proves the process kept serving.

mod fragile {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;
    use breakglass::framework::{
        Applied, ApplyRequest, Attribute, DataSource, Diagnostics, Failure, PlanRequest,
        PlannedChange, Provider, Resource, Schema, Type, Value,
    };

    /// What the server was asked, counted across commands.
    #[derive(Default)]
    pub struct Counters {
        pub plans: AtomicUsize,
        pub creates: AtomicUsize,
    }

    pub struct FragileProvider(pub Arc<Counters>);

    #[async_trait]
    impl Provider for FragileProvider {
        type Data = Arc<Counters>;
        fn schema(&self) -> Schema {
            Schema::default()
        }
        async fn configure(&self, _: &Value, _: &str) -> Result<Arc<Counters>, Diagnostics> {
            Ok(self.0.clone())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<Arc<Counters>>>> {
            vec![Arc::new(Fragile(self.0.clone()))]
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource<Arc<Counters>>>> {
            Vec::new()
        }
    }

    /// `breakglass_fragile`: plans panic when `input` is "panic in plan", applies when it is
    /// "panic in apply"; the panic message quotes the sensitive `secret`, as careless code
    /// might.
    struct Fragile(Arc<Counters>);

    #[async_trait]
    impl Resource<Arc<Counters>> for Fragile {
        fn type_name(&self) -> &'static str {
            "breakglass_fragile"
        }
        fn schema(&self) -> Schema {
            Schema {
                description: "Panics on request.".into(),
                attributes: vec![
                    Attribute::required("input", Type::String, "What to do."),
                    Attribute::optional("secret", Type::String, "Quoted by the panic.").sensitive(),
                    Attribute::computed("id", Type::String, "Id."),
                ],
                ..Schema::default()
            }
        }
        async fn modify_plan(&self, req: &PlanRequest<'_, Arc<Counters>>, _: &mut PlannedChange) {
            self.0.plans.fetch_add(1, Ordering::SeqCst);
            if req.config.get("input") == Value::from("panic in plan") {
                panic!("planning failed on {:?}", req.config.get("secret"));
            }
        }
        async fn create(
            &self,
            _: &Arc<Counters>,
            req: &ApplyRequest<'_>,
        ) -> Result<Applied, Failure> {
            self.0.creates.fetch_add(1, Ordering::SeqCst);
            if req.config.get("input") == Value::from("panic in apply") {
                panic!("creating failed on {:?}", req.config.get("secret"));
            }
            let mut state = req.planned.clone();
            state.set("id", Value::from("fragile-1"));
            Ok(Applied::new(state))
        }
        async fn read(
            &self,
            _: &Arc<Counters>,
            state: &Value,
        ) -> Result<Option<Value>, Diagnostics> {
            Ok(Some(state.clone()))
        }
        async fn update(
            &self,
            _: &Arc<Counters>,
            req: &ApplyRequest<'_>,
        ) -> Result<Applied, Failure> {
            Ok(Applied::new(req.planned.clone()))
        }
        async fn delete(&self, _: &Arc<Counters>, _: &Value) -> Result<(), Failure> {
            Ok(())
        }
    }
}

fn fragile_config(resources: &[(&str, &str)]) -> String {
    let mut hcl = crate::harness::required_providers();
    for (name, input) in resources {
        hcl.push_str(&format!(
            "resource \"breakglass_fragile\" \"{name}\" {{\n  input  = \"{input}\"\n  secret = \"{FRAGILE_SECRET}\"\n}}\n"
        ));
    }
    hcl
}

const FRAGILE_SECRET: &str = "s3cret-quoted-by-a-panic";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_rpc_is_a_terraform_diagnostic_and_the_provider_keeps_serving() {
    let Some(terraform) = crate::harness::requires_terraform("1.0") else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let counters = Arc::new(fragile::Counters::default());
    let shutdown = breakglass::protocol::ShutdownSignal::new();
    let server = tokio::spawn(breakglass::protocol::serve_reattachable(
        Arc::new(fragile::FragileProvider(counters.clone())),
        listener,
        shutdown.clone(),
    ));
    let reattach = breakglass::protocol::handshake::reattach_config(address, std::process::id());
    let ws =
        crate::harness::Workspace::new(terraform, vec![("TF_REATTACH_PROVIDERS".into(), reattach)]);
    let no_secret = |text: &str| {
        assert!(
            !text.contains(FRAGILE_SECRET),
            "the secret reached Terraform\n{text}"
        );
    };

    ws.write_config(&fragile_config(&[("fine", "fine")]));
    ws.ok(&["apply", "-auto-approve", "-no-color"]);

    // A panic while planning: an error diagnostic at the resource, nothing else changes.
    ws.write_config(&fragile_config(&[
        ("fine", "fine"),
        ("bad", "panic in plan"),
    ]));
    let out = ws.run(&["plan", "-no-color"]);
    assert_eq!(out.exit_code, Some(1), "{out}");
    assert!(out.text.contains("Error: Provider bug"), "{out}");
    assert!(out.text.contains("breakglass_fragile.bad"), "{out}");
    assert!(
        out.flattened()
            .contains("while handling plan_resource_change"),
        "{out}"
    );
    no_secret(&out.text);

    // A panic while applying: the diagnostic, and no state for the object.
    ws.write_config(&fragile_config(&[
        ("fine", "fine"),
        ("bad", "panic in apply"),
    ]));
    let out = ws.run(&["apply", "-auto-approve", "-no-color"]);
    assert_eq!(out.exit_code, Some(1), "{out}");
    assert!(
        out.flattened()
            .contains("while handling apply_resource_change"),
        "{out}"
    );
    no_secret(&out.text);
    let state = ws.state();
    assert!(
        state.resource("breakglass_fragile.bad").is_none(),
        "{:?}",
        state.0
    );
    assert!(state.resource("breakglass_fragile.fine").is_some());

    // The same server answers the next commands: a clean plan, then a destroy.
    let plans_before = counters.plans.load(std::sync::atomic::Ordering::SeqCst);
    ws.write_config(&fragile_config(&[("fine", "fine")]));
    let out = ws.ok(&["plan", "-detailed-exitcode", "-no-color"]);
    no_secret(&out.text);
    assert!(counters.plans.load(std::sync::atomic::Ordering::SeqCst) > plans_before);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ws.state().is_empty());
    assert!(!server.is_finished(), "the server stopped");
    shutdown.trigger();
}
