//! Registry-layout documentation generated from the schemas: `docs/index.md`,
//! `docs/resources/<name>.md`, `docs/data-sources/<name>.md`, and `docs/guides/` copied from
//! `docs-src/guides/`. The schema descriptions are the single source of the reference text;
//! every declared validator, default and plan modifier becomes a line under its attribute
//! (`Attribute::constraint_notes`), so the docs cannot drift from what the provider enforces.
//! Examples come from `examples/resources/<type>/resource.tf` (and `data-sources/`), import
//! sections from `import.sh` beside them, as terraform-plugin-docs lays them out.
//!
//! `make docs` writes the files (`src/bin/docs.rs`); an integration test renders them again and
//! fails on any difference.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::framework::{Attribute, AttributeKind, Block, NestingMode, Provider, Schema, Type};
use crate::provider::BreakglassProvider;

/// Every generated file, by path relative to the repository root.
pub fn render(root: &Path) -> Result<BTreeMap<PathBuf, String>, String> {
    let provider = BreakglassProvider::new();
    let mut files = BTreeMap::new();
    let intro = read(&root.join("docs-src/index.md"))?;
    let provider_example = read(&root.join("examples/provider/provider.tf"))?;
    let mut index = frontmatter(
        "Provider: breakglass",
        &first_sentence(&provider.schema().description),
    );
    index.push_str(intro.trim_end());
    let _ = write!(
        index,
        "\n\n## Example Usage\n\n```terraform\n{}\n```\n\n",
        provider_example.trim_end()
    );
    index.push_str(&schema_section(&provider.schema(), "## Argument Reference"));
    files.insert(PathBuf::from("docs/index.md"), index);

    for resource in provider.resources() {
        let name = resource.type_name();
        let page = object_page(root, "resources", name, "Resource", &resource.schema())?;
        files.insert(page.0, page.1);
    }
    for data_source in provider.data_sources() {
        let name = data_source.type_name();
        let page = object_page(
            root,
            "data-sources",
            name,
            "Data Source",
            &data_source.schema(),
        )?;
        files.insert(page.0, page.1);
    }
    let guides = root.join("docs-src/guides");
    if guides.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&guides)
            .map_err(|e| format!("{}: {e}", guides.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        entries.sort();
        for path in entries {
            let file = path.file_name().unwrap_or_default();
            files.insert(Path::new("docs/guides").join(file), read(&path)?);
        }
    }
    Ok(files)
}

/// Writes `render`'s files under `root`, removing generated pages that no longer exist.
pub fn write(root: &Path) -> Result<Vec<PathBuf>, String> {
    let files = render(root)?;
    for dir in ["docs/resources", "docs/data-sources", "docs/guides"] {
        if let Ok(entries) = fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                let rel = Path::new(dir).join(entry.file_name());
                if !files.contains_key(&rel) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
    for (rel, text) in &files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files.into_keys().collect())
}

fn object_page(
    root: &Path,
    kind: &str,
    type_name: &str,
    label: &str,
    schema: &Schema,
) -> Result<(PathBuf, String), String> {
    let short = type_name.trim_start_matches("breakglass_");
    let examples = root.join("examples").join(kind).join(type_name);
    let example_file = if kind == "resources" {
        "resource.tf"
    } else {
        "data-source.tf"
    };
    let mut page = frontmatter(
        &format!("{type_name} {label} - breakglass"),
        &first_sentence(&schema.description),
    );
    let _ = write!(
        page,
        "# {type_name} ({label})\n\n{}\n\n",
        schema.description.trim_end()
    );
    let example = read(&examples.join(example_file))?;
    let _ = write!(
        page,
        "## Example Usage\n\n```terraform\n{}\n```\n\n",
        example.trim_end()
    );
    page.push_str(&schema_section(schema, "## Schema"));
    if let Ok(import) = fs::read_to_string(examples.join("import.sh")) {
        let _ = write!(
            page,
            "\n## Import\n\nImport is supported using the following syntax:\n\n```shell\n{}\n```\n",
            import.trim_end()
        );
    }
    Ok((
        Path::new("docs").join(kind).join(format!("{short}.md")),
        page,
    ))
}

fn frontmatter(title: &str, description: &str) -> String {
    format!(
        "---\npage_title: \"{title}\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n\n",
        description.replace('\n', " ")
    )
}

fn first_sentence(text: &str) -> String {
    let first = text.split("\n\n").next().unwrap_or_default();
    first
        .split_inclusive(". ")
        .next()
        .unwrap_or(first)
        .trim()
        .to_owned()
}

/// `### Required`, `### Optional`, `### Read-Only`, then one section per nested block or object.
fn schema_section(schema: &Schema, heading: &str) -> String {
    let mut out = format!("{heading}\n\n");
    let mut nested: Pending = Vec::new();
    attribute_groups(
        &schema.attributes,
        &schema.blocks,
        "",
        &mut out,
        &mut nested,
    );
    while !nested.is_empty() {
        let (path, attributes, blocks) = nested.remove(0);
        let _ = write!(
            out,
            "\n<a id=\"nestedblock--{}\"></a>\n### Nested Schema for `{path}`\n\n",
            path.replace('.', "--")
        );
        let mut more = Vec::new();
        attribute_groups(
            &attributes,
            &blocks,
            &format!("{path}."),
            &mut out,
            &mut more,
        );
        nested.extend(more);
    }
    out
}

/// A nested block or object still to document: its path, attributes and blocks.
type Pending = Vec<(String, Vec<Attribute>, Vec<Block>)>;
type Group = (&'static str, fn(&Attribute) -> bool);

fn attribute_groups(
    attributes: &[Attribute],
    blocks: &[Block],
    prefix: &str,
    out: &mut String,
    nested: &mut Pending,
) {
    let groups: [Group; 3] = [
        ("Required", |a| a.required),
        ("Optional", |a| a.optional),
        ("Read-Only", |a| a.computed && !a.optional && !a.required),
    ];
    for (title, wanted) in groups {
        let chosen: Vec<&Attribute> = attributes.iter().filter(|a| wanted(a)).collect();
        let blocks_here: Vec<&Block> = blocks.iter().filter(|_| title == "Optional").collect();
        if chosen.is_empty() && blocks_here.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        for a in chosen {
            let _ = writeln!(out, "{}", attribute_line(a, prefix, nested));
        }
        for b in blocks_here {
            let path = format!("{prefix}{}", b.type_name);
            let _ = writeln!(
                out,
                "- `{}` (Block, {}) {} (see [below for nested schema](#nestedblock--{}))",
                b.type_name,
                nesting_label(b.nesting),
                b.description.trim_end(),
                path.replace('.', "--")
            );
            nested.push((path, b.attributes.clone(), b.blocks.clone()));
        }
        out.push('\n');
    }
}

fn attribute_line(
    a: &Attribute,
    prefix: &str,
    nested: &mut Vec<(String, Vec<Attribute>, Vec<Block>)>,
) -> String {
    let mut flags = vec![type_label(a)];
    if a.sensitive {
        flags.push("Sensitive".to_owned());
    }
    if a.write_only {
        flags.push("Write-only".to_owned());
    }
    if a.deprecated {
        flags.push("Deprecated".to_owned());
    }
    let mut line = format!(
        "- `{}` ({}) {}",
        a.name,
        flags.join(", "),
        a.description.trim_end()
    );
    let notes = a.constraint_notes();
    if !notes.is_empty() {
        let _ = write!(line, " Constraints: {}.", notes.join("; "));
    }
    if let AttributeKind::Nested { attributes, .. } = &a.kind {
        let path = format!("{prefix}{}", a.name);
        let _ = write!(
            line,
            " (see [below for nested schema](#nestedblock--{}))",
            path.replace('.', "--")
        );
        nested.push((path, attributes.clone(), Vec::new()));
    }
    line
}

fn type_label(a: &Attribute) -> String {
    match &a.kind {
        AttributeKind::Typed(t) => type_name(t),
        AttributeKind::Nested { nesting, .. } => format!("Attributes {}", nesting_label(*nesting)),
    }
}

fn nesting_label(n: NestingMode) -> &'static str {
    match n {
        NestingMode::Single | NestingMode::Group => "Single",
        NestingMode::List => "List",
        NestingMode::Set => "Set",
        NestingMode::Map => "Map",
    }
}

fn type_name(t: &Type) -> String {
    match t {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}
