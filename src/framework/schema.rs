//! Schemas: what Terraform shows in `providers schema -json`, validates HCL against, and what
//! docs are generated from. Every attribute carries a markdown description (a tidy test
//! enforces it).

use std::collections::BTreeMap;

use crate::framework::types::Type;

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
}
