//! `framework` schemas, values and diagnostics → wire messages.

use crate::framework::{
    Attribute, AttributeKind, AttributePath, Block, Diagnostic, Diagnostics, NestingMode, PathStep,
    Schema, Severity, Type, Value,
};
use crate::protocol::codec;
use crate::protocol::logic::Catalog;
use crate::protocol::proto::tfplugin6 as proto;

use proto::attribute_path::step::Selector;
use proto::schema::nested_block::NestingMode as BlockNesting;
use proto::schema::object::NestingMode as ObjectNesting;

/// What this provider tells Terraform about its protocol support.
pub fn server_capabilities() -> proto::ServerCapabilities {
    proto::ServerCapabilities {
        // Resources get a say in destroy plans (and the default plan handles them).
        plan_destroy: true,
        // Schemas depend only on the provider version, so Terraform may cache them.
        get_provider_schema_optional: true,
        move_resource_state: false,
    }
}

pub fn provider_schema<D>(catalog: &Catalog<D>) -> proto::get_provider_schema::Response {
    proto::get_provider_schema::Response {
        provider: Some(schema(&catalog.provider)),
        resource_schemas: catalog
            .resources
            .iter()
            .map(|(name, entry)| (name.clone(), schema(&entry.schema)))
            .collect(),
        data_source_schemas: catalog
            .data_sources
            .iter()
            .map(|(name, entry)| (name.clone(), schema(&entry.schema)))
            .collect(),
        server_capabilities: Some(server_capabilities()),
        ..Default::default()
    }
}

pub fn metadata<D>(catalog: &Catalog<D>) -> proto::get_metadata::Response {
    proto::get_metadata::Response {
        server_capabilities: Some(server_capabilities()),
        resources: catalog
            .resources
            .keys()
            .map(|type_name| proto::get_metadata::ResourceMetadata {
                type_name: type_name.clone(),
            })
            .collect(),
        data_sources: catalog
            .data_sources
            .keys()
            .map(|type_name| proto::get_metadata::DataSourceMetadata {
                type_name: type_name.clone(),
            })
            .collect(),
        ..Default::default()
    }
}

pub fn schema(schema: &Schema) -> proto::Schema {
    proto::Schema {
        version: schema.version,
        block: Some(proto::schema::Block {
            version: schema.version,
            attributes: schema.attributes.iter().map(attribute).collect(),
            block_types: schema.blocks.iter().map(nested_block).collect(),
            description: schema.description.clone(),
            description_kind: proto::StringKind::Markdown.into(),
            deprecated: schema.deprecated,
        }),
    }
}

fn attribute(attribute: &Attribute) -> proto::schema::Attribute {
    let (type_json, nested_type) = match &attribute.kind {
        AttributeKind::Typed(ty) => (type_bytes(ty), None),
        AttributeKind::Nested {
            nesting,
            attributes,
        } => (
            Vec::new(),
            Some(proto::schema::Object {
                attributes: attributes.iter().map(self::attribute).collect(),
                nesting: object_nesting(*nesting).into(),
                ..Default::default()
            }),
        ),
    };
    proto::schema::Attribute {
        name: attribute.name.clone(),
        r#type: type_json,
        nested_type,
        description: attribute.description.clone(),
        description_kind: proto::StringKind::Markdown.into(),
        required: attribute.required,
        optional: attribute.optional,
        computed: attribute.computed,
        sensitive: attribute.sensitive,
        deprecated: attribute.deprecated,
        write_only: attribute.write_only,
    }
}

fn nested_block(block: &Block) -> proto::schema::NestedBlock {
    let (min_items, max_items) = block_bounds(block);
    proto::schema::NestedBlock {
        type_name: block.type_name.clone(),
        block: Some(proto::schema::Block {
            version: 0,
            attributes: block.attributes.iter().map(attribute).collect(),
            block_types: block.blocks.iter().map(nested_block).collect(),
            description: block.description.clone(),
            description_kind: proto::StringKind::Markdown.into(),
            deprecated: false,
        }),
        nesting: match block.nesting {
            NestingMode::Single => BlockNesting::Single,
            NestingMode::List => BlockNesting::List,
            NestingMode::Set => BlockNesting::Set,
            NestingMode::Map => BlockNesting::Map,
            NestingMode::Group => BlockNesting::Group,
        }
        .into(),
        min_items,
        max_items,
    }
}

/// Terraform requires MinItems == MaxItems for single and group blocks ("MinItems and MaxItems
/// must match in NestingSingle mode"); there the only meaningful bound is "required or not",
/// carried by `min_items` (0 or 1). Other modes pass their bounds through.
fn block_bounds(block: &Block) -> (i64, i64) {
    match block.nesting {
        NestingMode::Single | NestingMode::Group => {
            let required = i64::from(block.min_items > 0);
            (required, required)
        }
        _ => (block.min_items, block.max_items),
    }
}

fn object_nesting(nesting: NestingMode) -> ObjectNesting {
    match nesting {
        // Nested attributes have no "group" mode; a single object is the same thing there.
        NestingMode::Single | NestingMode::Group => ObjectNesting::Single,
        NestingMode::List => ObjectNesting::List,
        NestingMode::Set => ObjectNesting::Set,
        NestingMode::Map => ObjectNesting::Map,
    }
}

/// The cty JSON type encoding Terraform expects in `Attribute.type`.
fn type_bytes(ty: &Type) -> Vec<u8> {
    ty.to_json().to_string().into_bytes()
}

/// Encodes a value as msgpack. Failure means the provider produced a value that does not
/// match its own schema, which the diagnostic says, naming `field` and the attribute.
pub fn dynamic_value(
    value: &Value,
    ty: &Type,
    field: &str,
) -> Result<proto::DynamicValue, Diagnostic> {
    match codec::encode_msgpack(value, ty) {
        Ok(msgpack) => Ok(proto::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(error) => {
            let diagnostic = Diagnostic::error(
                format!("Provider produced an invalid {field}"),
                format!(
                    "The {field} does not match the provider's own schema: {error}. This is a \
                     bug in the breakglass provider; please report it."
                ),
            );
            Err(if error.path.0.is_empty() {
                diagnostic
            } else {
                diagnostic.at(error.path)
            })
        }
    }
}

pub fn diagnostics(diagnostics: &Diagnostics) -> Vec<proto::Diagnostic> {
    diagnostics.iter().map(diagnostic).collect()
}

pub fn diagnostic(diagnostic: &Diagnostic) -> proto::Diagnostic {
    proto::Diagnostic {
        severity: match diagnostic.severity {
            Severity::Error => proto::diagnostic::Severity::Error,
            Severity::Warning => proto::diagnostic::Severity::Warning,
        }
        .into(),
        summary: diagnostic.summary.clone(),
        detail: diagnostic.detail.clone(),
        attribute: diagnostic.path.as_ref().map(attribute_path),
    }
}

pub fn attribute_path(path: &AttributePath) -> proto::AttributePath {
    proto::AttributePath {
        steps: path
            .0
            .iter()
            .map(|step| proto::attribute_path::Step {
                selector: Some(match step {
                    PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                    PathStep::Key(key) => Selector::ElementKeyString(key.clone()),
                    PathStep::Index(index) => Selector::ElementKeyInt(*index),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Attribute, Block, Type};

    #[test]
    fn attributes_carry_flags_types_and_markdown_descriptions() {
        let schema = schema(&Schema {
            version: 2,
            description: "An **account**.".into(),
            attributes: vec![
                Attribute::required("upn", Type::String, "The `userPrincipalName`."),
                Attribute::optional("tags", Type::set(Type::String), "Tags.").deprecated(),
                Attribute::optional("password_wo", Type::String, "Secret.")
                    .sensitive()
                    .write_only(),
                Attribute::nested(
                    "owners",
                    NestingMode::List,
                    vec![Attribute::required("id", Type::String, "Owner id.")],
                    "Owners.",
                )
                .make_optional(),
            ],
            blocks: vec![Block {
                type_name: "timeouts".into(),
                nesting: NestingMode::Single,
                description: "Timeouts.".into(),
                attributes: vec![Attribute::optional("create", Type::String, "Create.")],
                blocks: vec![],
                min_items: 0,
                max_items: 1,
                config_only: false,
            }],
            deprecated: false,
        });
        assert_eq!(schema.version, 2);
        let block = schema.block.unwrap();
        assert_eq!(block.description_kind, proto::StringKind::Markdown as i32);
        let by_name = |n: &str| block.attributes.iter().find(|a| a.name == n).unwrap();

        let upn = by_name("upn");
        assert_eq!(upn.r#type, br#""string""#);
        assert!(upn.required && !upn.optional && !upn.computed);
        assert_eq!(upn.description, "The `userPrincipalName`.");

        assert_eq!(by_name("tags").r#type, br#"["set","string"]"#);
        assert!(by_name("tags").deprecated);

        let password = by_name("password_wo");
        assert!(password.sensitive && password.write_only);

        let owners = by_name("owners");
        assert!(owners.r#type.is_empty());
        let nested = owners.nested_type.as_ref().unwrap();
        assert_eq!(nested.nesting, ObjectNesting::List as i32);
        assert_eq!(nested.attributes[0].name, "id");

        let timeouts = &block.block_types[0];
        assert_eq!(timeouts.type_name, "timeouts");
        assert_eq!(timeouts.nesting, BlockNesting::Single as i32);
        // Declared 0..1, sent as 0/0: Terraform rejects unequal bounds on single blocks.
        assert_eq!((timeouts.min_items, timeouts.max_items), (0, 0));
    }

    #[test]
    fn diagnostics_keep_severity_and_path_steps() {
        let diagnostic = diagnostic(
            &Diagnostic::warning("Deprecated", "Use upn.")
                .at(AttributePath::root("owners").index(2).attr("id").key("k")),
        );
        assert_eq!(
            diagnostic.severity,
            proto::diagnostic::Severity::Warning as i32
        );
        let steps: Vec<_> = diagnostic
            .attribute
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.selector.unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                Selector::AttributeName("owners".into()),
                Selector::ElementKeyInt(2),
                Selector::AttributeName("id".into()),
                Selector::ElementKeyString("k".into()),
            ]
        );
    }
}
