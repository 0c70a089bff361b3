//! The provider-independent part of planning and of what may be stored.
//!
//! Terraform's *proposed new state* is configuration merged into prior state: every attribute
//! set in configuration has its configured value, every computed attribute the configuration
//! leaves null keeps its prior value (null on create). The default plan refines that the way
//! terraform-plugin-framework does, so resources only override what is special about them:
//!
//! * on create, and on update when anything changed, computed attributes that configuration
//!   leaves null become unknown ("known after apply") — the remote API may recompute them;
//! * when nothing changed, the proposal (= prior state) stands, so a second plan is empty;
//! * write-only attributes are null in every plan and state, whatever a resource returns:
//!   Terraform ≥ 1.11 rejects a plan or state that carries one, and older versions would store
//!   the secret in the state file.

use crate::framework::plan_modifiers::{ModifierInput, PlanModifier};
use crate::framework::{
    same_value, Attribute, AttributeKind, AttributePath, Block, Equality, NestingMode, Schema,
    Value,
};

/// The framework's part of a plan, before the resource's own `modify_plan`.
pub struct FrameworkPlan {
    pub planned: Value,
    pub requires_replace: Vec<AttributePath>,
}

/// terraform-plugin-framework's planning order: defaults where configuration is null, then
/// computed-to-unknown when the resource changes, then each attribute's plan modifiers.
pub fn framework_plan(
    schema: &Schema,
    config: &Value,
    prior: &Value,
    proposed: &Value,
) -> FrameworkPlan {
    let mut planned = default_plan(schema, config, prior, proposed);
    let mut requires_replace = Vec::new();
    if !planned.is_null() && !prior.is_null() {
        apply_modifiers(
            &schema.attributes,
            &schema.blocks,
            config,
            prior,
            &mut planned,
            &AttributePath::default(),
            &mut requires_replace,
        );
    }
    FrameworkPlan {
        planned,
        requires_replace,
    }
}

/// Defaults and computed-to-unknown (steps 1 and 2; see the module docs).
pub fn default_plan(schema: &Schema, config: &Value, prior: &Value, proposed: &Value) -> Value {
    if proposed.is_null() {
        // Destroy: nothing to plan.
        return Value::Null;
    }
    let mut planned = proposed.clone();
    null_write_only(schema, &mut planned);
    apply_defaults(&schema.attributes, &schema.blocks, config, &mut planned);

    // Terraform puts configured write-only values into the proposal; compare without them so a
    // configured secret alone never looks like a change.
    let mut prior_without_secrets = prior.clone();
    null_write_only(schema, &mut prior_without_secrets);
    let changing = prior.is_null()
        || !objects_equal(
            &schema.attributes,
            &schema.blocks,
            &planned,
            &prior_without_secrets,
        );

    if changing {
        mark_unset_computed_unknown(&schema.attributes, &schema.blocks, config, &mut planned);
    }
    planned
}

/// Sets each attribute's declared default where configuration leaves it null, in nested
/// blocks and attributes that are configured as well.
fn apply_defaults(attributes: &[Attribute], blocks: &[Block], config: &Value, planned: &mut Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attribute in attributes {
        let configured = config.get(&attribute.name);
        if configured.is_null() {
            if let Some(default) = &attribute.default {
                planned.set(&attribute.name, default.clone());
            }
            continue;
        }
        if let AttributeKind::Nested {
            nesting,
            attributes: nested,
        } = &attribute.kind
        {
            if let Some(slot) = planned.get_mut(&attribute.name) {
                for_each_configured(*nesting, &configured, slot, &mut |c, p| {
                    apply_defaults(nested, &[], c, p)
                });
            }
        }
    }
    for block in blocks {
        let configured = config.get(&block.type_name);
        if let Some(slot) = planned.get_mut(&block.type_name) {
            for_each_configured(block.nesting, &configured, slot, &mut |c, p| {
                apply_defaults(&block.attributes, &block.blocks, c, p)
            });
        }
    }
}

/// Step 3: each attribute's modifiers, in declaration order (top level and single blocks).
fn apply_modifiers(
    attributes: &[Attribute],
    blocks: &[Block],
    config: &Value,
    prior: &Value,
    planned: &mut Value,
    at: &AttributePath,
    requires_replace: &mut Vec<AttributePath>,
) {
    for attribute in attributes {
        let name = &attribute.name;
        for modifier in &attribute.plan_modifiers {
            let prior_value = prior.get(name);
            let planned_value = planned.get(name);
            let config_value = config.get(name);
            match modifier {
                PlanModifier::UseStateForUnknown => {
                    if planned_value.is_unknown()
                        && !prior_value.is_null()
                        && !config_value.is_unknown()
                    {
                        planned.set(name, prior_value);
                    }
                }
                PlanModifier::RequiresReplace | PlanModifier::RequiresReplaceIf { .. } => {
                    if attribute.equality.equal(&planned_value, &prior_value) {
                        continue;
                    }
                    let applies = match modifier {
                        PlanModifier::RequiresReplaceIf { condition, .. } => {
                            condition(&ModifierInput {
                                prior: &prior_value,
                                planned: &planned_value,
                                config: &config_value,
                            })
                        }
                        _ => true,
                    };
                    let path = at.clone().attr(name);
                    if applies && !requires_replace.contains(&path) {
                        requires_replace.push(path);
                    }
                }
            }
        }
    }
    for block in blocks {
        if matches!(block.nesting, NestingMode::Single | NestingMode::Group) {
            let name = &block.type_name;
            let (config, prior) = (config.get(name), prior.get(name));
            if let Some(slot) = planned.get_mut(name) {
                if matches!(slot, Value::Object(_)) {
                    let at = at.clone().attr(name);
                    apply_modifiers(
                        &block.attributes,
                        &block.blocks,
                        &config,
                        &prior,
                        slot,
                        &at,
                        requires_replace,
                    );
                }
            }
        }
    }
}

/// Equality of two objects of this schema, each attribute compared by its declared
/// [`Equality`] (nested values with Terraform's equality).
pub fn objects_equal(attributes: &[Attribute], blocks: &[Block], a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(_), Value::Object(_)) => {
            attributes
                .iter()
                .all(|attr| attr.equality.equal(&a.get(&attr.name), &b.get(&attr.name)))
                && blocks
                    .iter()
                    .all(|blk| same_value(&a.get(&blk.type_name), &b.get(&blk.type_name)))
        }
        _ => same_value(a, b),
    }
}

/// What refresh and apply keep from `kept` (the prior state on refresh, the planned value on
/// apply): configuration-only attributes and blocks whole, and — semantic equality — the
/// `kept` spelling where `new` differs only in the way an attribute's [`Equality`] ignores
/// (e.g. case), so the tenant reporting `BG@Contoso.com` for a configured `bg@contoso.com` is
/// never a change.
pub fn keep_equal_spellings(schema: &Schema, kept: &Value, new: &mut Value) {
    keep_in_object(&schema.attributes, &schema.blocks, kept, new);
}

fn keep_in_object(attributes: &[Attribute], blocks: &[Block], kept: &Value, new: &mut Value) {
    if !matches!(new, Value::Object(_)) || !matches!(kept, Value::Object(_)) {
        return;
    }
    for attribute in attributes.iter().filter(|a| a.config_only) {
        new.set(&attribute.name, kept.get(&attribute.name));
    }
    for block in blocks.iter().filter(|b| b.config_only) {
        new.set(&block.type_name, kept.get(&block.type_name));
    }
    for attribute in attributes {
        if attribute.equality == Equality::Exact {
            continue;
        }
        let old = kept.get(&attribute.name);
        let current = new.get(&attribute.name);
        if old.is_fully_known() && old != current && attribute.equality.equal(&old, &current) {
            new.set(&attribute.name, old);
        }
    }
    for block in blocks {
        if matches!(block.nesting, NestingMode::Single | NestingMode::Group) {
            let old = kept.get(&block.type_name);
            if let Some(slot) = new.get_mut(&block.type_name) {
                keep_in_object(&block.attributes, &block.blocks, &old, slot);
            }
        }
    }
}

/// Applies `f` to each (configured, planned) pair of objects a nested value holds.
fn for_each_configured(
    nesting: NestingMode,
    config: &Value,
    planned: &mut Value,
    f: &mut dyn FnMut(&Value, &mut Value),
) {
    match (nesting, planned) {
        (NestingMode::Single | NestingMode::Group, p @ Value::Object(_)) => f(config, p),
        (NestingMode::List, Value::List(items)) => {
            for (item, c) in items.iter_mut().zip(config.elements()) {
                f(c, item);
            }
        }
        (NestingMode::Map, Value::Map(entries)) => {
            for (key, item) in entries.iter_mut() {
                f(&config.get(key), item);
            }
        }
        (NestingMode::Set, Value::Set(items)) => {
            let mut unused: Vec<&Value> = config.elements().iter().collect();
            for item in items.iter_mut() {
                if let Some(i) = unused.iter().position(|c| configured_part_matches(c, item)) {
                    let c = unused.remove(i);
                    f(c, item);
                }
            }
        }
        _ => {}
    }
}

/// Nulls every write-only attribute (at any nesting depth) of a whole-object value.
pub fn null_write_only(schema: &Schema, value: &mut Value) {
    null_write_only_in_object(&schema.attributes, &schema.blocks, value);
}

/// Registers every string held by a sensitive or write-only attribute (at any depth) with the
/// log redaction, so no resource has to remember to: a password that reaches the provider in
/// config, plan or state is masked in every log line from then on.
pub fn register_sensitive(schema: &Schema, value: &Value) {
    fn strings(value: &Value) {
        match value {
            Value::String(s) => crate::logging::register_secret(s),
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v.iter().for_each(strings),
            Value::Map(m) | Value::Object(m) => m.values().for_each(strings),
            Value::Dynamic(_, v) => strings(v),
            _ => {}
        }
    }
    fn in_object(attributes: &[Attribute], blocks: &[Block], object: &Value) {
        for attribute in attributes {
            let v = object.get(&attribute.name);
            if attribute.sensitive || attribute.write_only {
                strings(&v);
            } else if let AttributeKind::Nested { attributes, .. } = &attribute.kind {
                for item in nested_objects(&v) {
                    in_object(attributes, &[], item);
                }
            }
        }
        for block in blocks {
            for item in nested_objects(&object.get(&block.type_name)) {
                in_object(&block.attributes, &block.blocks, item);
            }
        }
    }
    fn nested_objects(v: &Value) -> Vec<&Value> {
        match v {
            Value::Object(_) => vec![v],
            Value::List(items) | Value::Set(items) => items.iter().collect(),
            Value::Map(m) => m.values().collect(),
            _ => Vec::new(),
        }
    }
    in_object(&schema.attributes, &schema.blocks, value);
}

/// Whether the schema declares a write-only attribute anywhere.
pub fn has_write_only(schema: &Schema) -> bool {
    fn in_attributes(attrs: &[Attribute]) -> bool {
        attrs.iter().any(|a| {
            a.write_only
                || matches!(&a.kind, AttributeKind::Nested { attributes, .. } if in_attributes(attributes))
        })
    }
    fn in_blocks(blocks: &[Block]) -> bool {
        blocks
            .iter()
            .any(|b| in_attributes(&b.attributes) || in_blocks(&b.blocks))
    }
    in_attributes(&schema.attributes) || in_blocks(&schema.blocks)
}

fn null_write_only_in_object(attributes: &[Attribute], blocks: &[Block], object: &mut Value) {
    if !matches!(object, Value::Object(_)) {
        return;
    }
    for attribute in attributes {
        if attribute.write_only {
            object.set(&attribute.name, Value::Null);
        } else if let AttributeKind::Nested {
            nesting,
            attributes: nested,
        } = &attribute.kind
        {
            if let Some(slot) = object.get_mut(&attribute.name) {
                for_each_nested_object(*nesting, slot, |o| {
                    null_write_only_in_object(nested, &[], o)
                });
            }
        }
    }
    for block in blocks {
        if let Some(slot) = object.get_mut(&block.type_name) {
            for_each_nested_object(block.nesting, slot, |o| {
                null_write_only_in_object(&block.attributes, &block.blocks, o)
            });
        }
    }
}

/// Applies `f` to every object a nested attribute or block value holds.
fn for_each_nested_object(nesting: NestingMode, value: &mut Value, mut f: impl FnMut(&mut Value)) {
    match (nesting, value) {
        (NestingMode::Single | NestingMode::Group, v @ Value::Object(_)) => f(v),
        (NestingMode::List | NestingMode::Set, Value::List(items) | Value::Set(items)) => {
            items.iter_mut().for_each(f)
        }
        (NestingMode::Map, Value::Map(entries)) => entries.values_mut().for_each(f),
        _ => {}
    }
}

/// Marks computed attributes that `config` leaves null as unknown, descending into nested
/// attributes and blocks whose configuration is present.
fn mark_unset_computed_unknown(
    attributes: &[Attribute],
    blocks: &[Block],
    config: &Value,
    planned: &mut Value,
) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attribute in attributes {
        if attribute.write_only {
            continue;
        }
        let configured = config.get(&attribute.name);
        if configured.is_null() {
            if attribute.computed && attribute.default.is_none() {
                planned.set(&attribute.name, Value::Unknown);
            }
            continue;
        }
        if let AttributeKind::Nested {
            nesting,
            attributes: nested,
        } = &attribute.kind
        {
            if let Some(slot) = planned.get_mut(&attribute.name) {
                mark_in_nested(*nesting, nested, &[], &configured, slot);
            }
        }
    }
    for block in blocks {
        let configured = config.get(&block.type_name);
        if let Some(slot) = planned.get_mut(&block.type_name) {
            mark_in_nested(
                block.nesting,
                &block.attributes,
                &block.blocks,
                &configured,
                slot,
            );
        }
    }
}

fn mark_in_nested(
    nesting: NestingMode,
    attributes: &[Attribute],
    blocks: &[Block],
    config: &Value,
    planned: &mut Value,
) {
    match (nesting, planned) {
        (NestingMode::Single | NestingMode::Group, planned @ Value::Object(_)) => {
            mark_unset_computed_unknown(attributes, blocks, config, planned)
        }
        (NestingMode::List, Value::List(items)) => {
            for (item, configured) in items.iter_mut().zip(config.elements()) {
                mark_unset_computed_unknown(attributes, blocks, configured, item);
            }
        }
        (NestingMode::Map, Value::Map(entries)) => {
            for (key, item) in entries.iter_mut() {
                let configured = config.get(key);
                mark_unset_computed_unknown(attributes, blocks, &configured, item);
            }
        }
        (NestingMode::Set, Value::Set(items)) => {
            // Set elements have no address; pair each planned element with the configured one
            // it was built from: the first unused element whose configured attributes it repeats.
            let mut unused: Vec<&Value> = config.elements().iter().collect();
            for item in items.iter_mut() {
                if let Some(i) = unused.iter().position(|c| configured_part_matches(c, item)) {
                    let configured = unused.remove(i);
                    mark_unset_computed_unknown(attributes, blocks, configured, item);
                }
            }
        }
        _ => {}
    }
}

fn configured_part_matches(config: &Value, planned: &Value) -> bool {
    match config.entries() {
        Some(entries) => entries
            .iter()
            .all(|(k, v)| v.is_null() || same_value(v, &planned.get(k))),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Attribute, Type};

    fn account_schema() -> Schema {
        Schema {
            attributes: vec![
                Attribute::required("display_name", Type::String, "Shown in the portal."),
                Attribute::computed("object_id", Type::String, "Assigned by Entra."),
                Attribute::optional_computed("usage_location", Type::String, "Country code."),
                Attribute::optional("password_wo", Type::String, "Initial password.")
                    .sensitive()
                    .write_only(),
                Attribute::nested(
                    "owners",
                    NestingMode::List,
                    vec![
                        Attribute::required("id", Type::String, "Owner object id."),
                        Attribute::computed("kind", Type::String, "User or group."),
                        Attribute::optional("secret_wo", Type::String, "Nested secret.")
                            .write_only(),
                    ],
                    "Who may manage the account.",
                )
                .make_optional(),
            ],
            ..Schema::default()
        }
    }

    fn owner(id: &str, kind: Value) -> Value {
        Value::object([
            ("id", Value::from(id)),
            ("kind", kind),
            ("secret_wo", Value::Null),
        ])
    }

    fn account(display_name: &str, object_id: Value, usage: Value, owners: Value) -> Value {
        Value::object([
            ("display_name", Value::from(display_name)),
            ("object_id", object_id),
            ("usage_location", usage),
            ("password_wo", Value::Null),
            ("owners", owners),
        ])
    }

    #[test]
    fn create_marks_unset_computed_attributes_unknown() {
        let schema = account_schema();
        let config = account(
            "bg-1",
            Value::Null,
            Value::Null,
            Value::List(vec![owner("o1", Value::Null)]),
        );
        let planned = default_plan(&schema, &config, &Value::Null, &config);
        assert_eq!(planned.get("object_id"), Value::Unknown);
        assert_eq!(planned.get("usage_location"), Value::Unknown);
        assert_eq!(planned.get("display_name"), Value::from("bg-1"));
        assert_eq!(
            planned.get("owners").elements()[0].get("kind"),
            Value::Unknown
        );
        assert_eq!(
            planned.get("owners").elements()[0].get("id"),
            Value::from("o1")
        );
    }

    #[test]
    fn configured_optional_computed_value_is_kept() {
        let schema = account_schema();
        let config = account("bg-1", Value::Null, Value::from("NL"), Value::Null);
        let planned = default_plan(&schema, &config, &Value::Null, &config);
        assert_eq!(planned.get("usage_location"), Value::from("NL"));
        // `owners` is optional only: null in config stays null.
        assert_eq!(planned.get("owners"), Value::Null);
    }

    #[test]
    fn unchanged_update_keeps_prior_computed_values() {
        let schema = account_schema();
        let prior = account(
            "bg-1",
            Value::from("id-1"),
            Value::from("NL"),
            Value::List(vec![owner("o1", Value::from("user"))]),
        );
        let config = account(
            "bg-1",
            Value::Null,
            Value::Null,
            Value::List(vec![owner("o1", Value::Null)]),
        );
        // Terraform's proposal carries prior values into unset computed attributes.
        let proposed = prior.clone();
        let planned = default_plan(&schema, &config, &prior, &proposed);
        assert_eq!(planned, prior);
    }

    #[test]
    fn changed_update_marks_unset_computed_attributes_unknown() {
        let schema = account_schema();
        let prior = account("bg-1", Value::from("id-1"), Value::from("NL"), Value::Null);
        let config = account("bg-renamed", Value::Null, Value::Null, Value::Null);
        let mut proposed = prior.clone();
        proposed.set("display_name", Value::from("bg-renamed"));
        let planned = default_plan(&schema, &config, &prior, &proposed);
        assert_eq!(planned.get("display_name"), Value::from("bg-renamed"));
        assert_eq!(planned.get("object_id"), Value::Unknown);
        assert_eq!(planned.get("usage_location"), Value::Unknown);
    }

    #[test]
    fn configured_write_only_value_is_not_a_change_and_never_planned() {
        let schema = account_schema();
        let prior = account("bg-1", Value::from("id-1"), Value::from("NL"), Value::Null);
        let mut config = account("bg-1", Value::Null, Value::Null, Value::Null);
        config.set("password_wo", Value::from("correct horse"));
        let mut proposed = prior.clone();
        proposed.set("password_wo", Value::from("correct horse"));
        let planned = default_plan(&schema, &config, &prior, &proposed);
        assert_eq!(planned.get("password_wo"), Value::Null);
        assert_eq!(planned.get("object_id"), Value::from("id-1"));
        assert_eq!(planned, prior);
    }

    #[test]
    fn destroy_plans_null() {
        let schema = account_schema();
        let prior = account("bg-1", Value::from("id-1"), Value::Null, Value::Null);
        assert_eq!(
            default_plan(&schema, &Value::Null, &prior, &Value::Null),
            Value::Null
        );
    }

    #[test]
    fn write_only_is_nulled_at_every_depth() {
        let schema = account_schema();
        let mut state = account(
            "bg-1",
            Value::from("id-1"),
            Value::Null,
            Value::List(vec![Value::object([
                ("id", Value::from("o1")),
                ("kind", Value::from("user")),
                ("secret_wo", Value::from("s3cret")),
            ])]),
        );
        state.set("password_wo", Value::from("correct horse"));
        null_write_only(&schema, &mut state);
        assert_eq!(state.get("password_wo"), Value::Null);
        assert_eq!(
            state.get("owners").elements()[0].get("secret_wo"),
            Value::Null
        );
        assert_eq!(
            state.get("owners").elements()[0].get("kind"),
            Value::from("user")
        );
        assert!(has_write_only(&schema));
    }

    #[test]
    fn set_elements_are_paired_with_their_configuration() {
        let schema = Schema {
            attributes: vec![Attribute::nested(
                "members",
                NestingMode::Set,
                vec![
                    Attribute::required("id", Type::String, "Member id."),
                    Attribute::optional_computed("role", Type::String, "Role."),
                ],
                "Members.",
            )
            .make_optional()],
            ..Schema::default()
        };
        let member = |id: &str, role: Value| Value::object([("id", id.into()), ("role", role)]);
        let config = Value::object([(
            "members",
            Value::Set(vec![
                member("b", Value::from("admin")),
                member("a", Value::Null),
            ]),
        )]);
        // Terraform may order set elements differently from the configuration.
        let proposed = Value::object([(
            "members",
            Value::Set(vec![
                member("a", Value::Null),
                member("b", Value::from("admin")),
            ]),
        )]);
        let planned = default_plan(&schema, &config, &Value::Null, &proposed);
        let members = planned.get("members");
        assert_eq!(members.elements()[0], member("a", Value::Unknown));
        assert_eq!(members.elements()[1], member("b", Value::from("admin")));
    }

    #[test]
    fn blocks_are_walked_like_nested_attributes() {
        let schema = Schema {
            blocks: vec![Block {
                type_name: "timeouts".into(),
                nesting: NestingMode::Single,
                description: "Operation timeouts.".into(),
                attributes: vec![
                    Attribute::optional("create", Type::String, "Create timeout."),
                    Attribute::optional_computed("effective", Type::String, "Resolved."),
                ],
                blocks: vec![],
                min_items: 0,
                max_items: 1,
                config_only: false,
            }],
            ..Schema::default()
        };
        let config = Value::object([(
            "timeouts",
            Value::object([("create", "5m".into()), ("effective", Value::Null)]),
        )]);
        let planned = default_plan(&schema, &config, &Value::Null, &config);
        assert_eq!(planned.get("timeouts").get("effective"), Value::Unknown);
        assert_eq!(planned.get("timeouts").get("create"), Value::from("5m"));
    }
}
