//! Schemas: what Terraform shows in `providers schema -json`, validates HCL against, and what
//! docs are generated from. Every attribute carries a markdown description (a tidy test
//! enforces it).

use std::collections::BTreeMap;

use crate::framework::plan_modifiers::{Equality, PlanModifier};
use crate::framework::types::Type;
use crate::framework::validators::Validator;
use crate::framework::value::Value;

#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// State schema version; bump with an `upgrade_state` step when the stored shape changes.
    pub version: i64,
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<Block>,
    pub deprecated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestingMode {
    Single,
    List,
    Set,
    Map,
    Group,
}

#[derive(Debug, Clone)]
pub enum AttributeKind {
    /// A plain typed attribute.
    Typed(Type),
    /// A nested attribute (protocol 6 `nested_type`).
    Nested {
        nesting: NestingMode,
        attributes: Vec<Attribute>,
    },
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub kind: AttributeKind,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// Terraform ≥ 1.11: the value is sent in config only and never stored in plan or state.
    pub write_only: bool,
    pub deprecated: bool,
    /// Rules checked at validate time, in order (see `framework::validators`).
    pub validators: Vec<Validator>,
    /// The planned value when configuration leaves the attribute null (computed attributes
    /// only); applied before anything else in planning.
    pub default: Option<Value>,
    /// Applied in order after defaults and computed-to-unknown (see `framework::plan_modifiers`).
    pub plan_modifiers: Vec<PlanModifier>,
    /// How the service compares values of this attribute (case-insensitively for UPNs, GUIDs,
    /// domain names): a value equal in meaning to the prior one is no change.
    pub equality: Equality,
    /// The tenant keeps no record of this attribute (a setting of the provider's own, such as
    /// a rotation trigger): refresh and apply carry it over from the prior state or the plan,
    /// whatever the resource returns; import leaves it null.
    pub config_only: bool,
}

/// A nested block (`timeouts { ... }` style).
#[derive(Debug, Clone)]
pub struct Block {
    pub type_name: String,
    pub nesting: NestingMode,
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<Block>,
    /// For `Single`/`Group` blocks only "required (1) or not (0)" matters; the protocol layer
    /// sends equal bounds for them, as Terraform demands.
    pub min_items: i64,
    pub max_items: i64,
    /// Like `Attribute::config_only`, for a whole block (e.g. `timeouts`).
    pub config_only: bool,
}

impl Attribute {
    fn new(name: &str, kind: AttributeKind, description: &str) -> Self {
        Attribute {
            name: name.to_owned(),
            kind,
            description: description.to_owned(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: false,
            validators: Vec::new(),
            default: None,
            plan_modifiers: Vec::new(),
            equality: Equality::Exact,
            config_only: false,
        }
    }
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            required: true,
            ..Self::new(name, AttributeKind::Typed(ty), description)
        }
    }
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            optional: true,
            ..Self::new(name, AttributeKind::Typed(ty), description)
        }
    }
    pub fn computed(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            computed: true,
            ..Self::new(name, AttributeKind::Typed(ty), description)
        }
    }
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            optional: true,
            computed: true,
            ..Self::new(name, AttributeKind::Typed(ty), description)
        }
    }
    pub fn nested(
        name: &str,
        nesting: NestingMode,
        attributes: Vec<Attribute>,
        description: &str,
    ) -> Self {
        Self::new(
            name,
            AttributeKind::Nested {
                nesting,
                attributes,
            },
            description,
        )
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    pub fn make_required(mut self) -> Self {
        self.required = true;
        self.optional = false;
        self
    }
    pub fn make_optional(mut self) -> Self {
        self.optional = true;
        self.required = false;
        self
    }
    pub fn make_computed(mut self) -> Self {
        self.computed = true;
        self
    }

    /// Adds a validator (checked in declaration order).
    pub fn validate(mut self, validator: Validator) -> Self {
        self.validators.push(validator);
        self
    }

    /// The value planned when configuration leaves the attribute null; makes it computed, as a
    /// default implies (Terraform only accepts provider-chosen values for computed attributes).
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self.computed = true;
        self
    }

    /// Adds a plan modifier (applied in declaration order).
    pub fn plan(mut self, modifier: PlanModifier) -> Self {
        self.plan_modifiers.push(modifier);
        self
    }

    /// Shorthand for `.plan(PlanModifier::RequiresReplace)`.
    pub fn requires_replace(self) -> Self {
        self.plan(PlanModifier::RequiresReplace)
    }

    /// Shorthand for `.plan(PlanModifier::UseStateForUnknown)`.
    pub fn use_state_for_unknown(self) -> Self {
        self.plan(PlanModifier::UseStateForUnknown)
    }

    /// The service compares this attribute's strings (or the strings in its collection)
    /// case-insensitively.
    pub fn case_insensitive(mut self) -> Self {
        self.equality = Equality::CaseInsensitive;
        self
    }

    /// The service compares this attribute's strings ignoring case and white space (Azure
    /// region names: `West Europe` is `westeurope`).
    pub fn case_and_space_insensitive(mut self) -> Self {
        self.equality = Equality::CaseAndSpaceInsensitive;
        self
    }

    /// The tenant keeps no record of this attribute; see the field.
    pub fn config_only(mut self) -> Self {
        self.config_only = true;
        self
    }

    /// The markdown the docs show for this attribute's rules, defaults and modifiers.
    pub fn constraint_notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .validators
            .iter()
            .map(|v| v.description().to_owned())
            .collect();
        if let Some(default) = &self.default {
            notes.push(format!("defaults to `{}`", default.to_hcl()));
        }
        for m in &self.plan_modifiers {
            if let Some(note) = m.description() {
                notes.push(note);
            }
        }
        match self.equality {
            Equality::Exact => {}
            Equality::CaseInsensitive => notes.push("compared case-insensitively".to_owned()),
            Equality::CaseAndSpaceInsensitive => {
                notes.push("compared ignoring case and spaces".to_owned())
            }
        }
        notes
    }

    /// The value type this attribute has in state/config.
    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttributeKind::Typed(t) => t.clone(),
            AttributeKind::Nested {
                nesting,
                attributes,
            } => {
                let obj = Type::Object(
                    attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value_type()))
                        .collect(),
                );
                match nesting {
                    NestingMode::Single | NestingMode::Group => obj,
                    NestingMode::List => Type::list(obj),
                    NestingMode::Set => Type::set(obj),
                    NestingMode::Map => Type::map(obj),
                }
            }
        }
    }
}

impl Block {
    /// Names of the block's attributes and nested blocks: the fields its typed model must have.
    pub fn field_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.attributes.iter().map(|a| a.name.clone()).collect();
        names.extend(self.blocks.iter().map(|b| b.type_name.clone()));
        names.sort();
        names
    }

    /// An optional block that appears at most once (`policy_filter { ... }`).
    pub fn single(type_name: &str, description: &str, attributes: Vec<Attribute>) -> Block {
        Block {
            type_name: type_name.to_owned(),
            nesting: NestingMode::Single,
            description: description.to_owned(),
            attributes,
            blocks: Vec::new(),
            // Terraform requires equal bounds for a single-nested block; 0/0 makes it optional.
            min_items: 0,
            max_items: 0,
            config_only: false,
        }
    }

    /// A block that may appear any number of times, in order (`email_receiver { ... }`
    /// repeated); `max_items` 0 means no upper bound.
    pub fn list(type_name: &str, description: &str, attributes: Vec<Attribute>) -> Block {
        Block {
            nesting: NestingMode::List,
            ..Block::single(type_name, description, attributes)
        }
    }

    pub fn value_type(&self) -> Type {
        let obj = object_type(&self.attributes, &self.blocks);
        match self.nesting {
            NestingMode::Single | NestingMode::Group => obj,
            NestingMode::List => Type::list(obj),
            NestingMode::Set => Type::set(obj),
            NestingMode::Map => Type::map(obj),
        }
    }
}

fn object_type(attributes: &[Attribute], blocks: &[Block]) -> Type {
    let mut m: BTreeMap<String, Type> = attributes
        .iter()
        .map(|a| (a.name.clone(), a.value_type()))
        .collect();
    for b in blocks {
        m.insert(b.type_name.clone(), b.value_type());
    }
    Type::Object(m)
}

impl Schema {
    /// The object type of a whole config/state value under this schema.
    pub fn value_type(&self) -> Type {
        object_type(&self.attributes, &self.blocks)
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn block(&self, type_name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.type_name == type_name)
    }

    /// Names of every top-level attribute and block: the fields a typed model must have.
    pub fn field_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.attributes.iter().map(|a| a.name.clone()).collect();
        names.extend(self.blocks.iter().map(|b| b.type_name.clone()));
        names.sort();
        names
    }
}
