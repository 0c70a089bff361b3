//! `docs/` is generated (`make docs`) from the schemas, `examples/` and `docs-src/`: rendering it
//! again must give the same files, and every resource, data source and attribute must be in it
//! with its description.

use std::fs;
use std::path::Path;

use breakglass::framework::{AttributeKind, Block, Provider};
use breakglass::provider::BreakglassProvider;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docs_are_current() {
    let rendered = breakglass::docs::render(root()).expect("render docs");
    let mut stale = Vec::new();
    for (path, text) in &rendered {
        match fs::read_to_string(root().join(path)) {
            Ok(on_disk) if &on_disk == text => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    for dir in ["docs/resources", "docs/data-sources", "docs/guides"] {
        for entry in fs::read_dir(root().join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let rel = Path::new(dir).join(entry.file_name());
            if !rendered.contains_key(&rel) {
                stale.push(format!("{} is no longer generated", rel.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/ is stale; run `make docs` and commit the result:\n{}",
        stale.join("\n")
    );
}

/// Names and descriptions of every attribute, at any depth, as `(path, description)`.
fn attributes(
    attrs: &[breakglass::framework::Attribute],
    blocks: &[Block],
    prefix: &str,
    out: &mut Vec<(String, String)>,
) {
    for a in attrs {
        out.push((format!("{prefix}{}", a.name), a.description.clone()));
        if let AttributeKind::Nested {
            attributes: inner, ..
        } = &a.kind
        {
            attributes(inner, &[], &format!("{prefix}{}.", a.name), out);
        }
    }
    for b in blocks {
        out.push((format!("{prefix}{}", b.type_name), b.description.clone()));
        attributes(
            &b.attributes,
            &b.blocks,
            &format!("{prefix}{}.", b.type_name),
            out,
        );
    }
}

#[test]
fn every_resource_data_source_and_attribute_is_documented() {
    let provider = BreakglassProvider::new();
    let rendered = breakglass::docs::render(root()).expect("render docs");
    let pages: Vec<(String, breakglass::framework::Schema)> = provider
        .resources()
        .iter()
        .map(|r| {
            (
                format!(
                    "docs/resources/{}.md",
                    r.type_name().trim_start_matches("breakglass_")
                ),
                r.schema(),
            )
        })
        .chain(provider.data_sources().iter().map(|d| {
            (
                format!(
                    "docs/data-sources/{}.md",
                    d.type_name().trim_start_matches("breakglass_")
                ),
                d.schema(),
            )
        }))
        .collect();
    let mut missing = Vec::new();
    for (page, schema) in &pages {
        let Some(text) = rendered.get(Path::new(page)) else {
            missing.push(format!("{page}: no page"));
            continue;
        };
        let mut all = Vec::new();
        attributes(&schema.attributes, &schema.blocks, "", &mut all);
        for (path, description) in all {
            let name = path.rsplit('.').next().unwrap_or(&path);
            let first_line = description.lines().next().unwrap_or_default();
            if !text.contains(&format!("`{name}`")) || !text.contains(first_line) {
                missing.push(format!("{page}: `{path}` or its description"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

/// The guides the registry shows beside the reference pages: each has the front matter the
/// registry reads, and every relative link in any page points at a page that exists.
#[test]
fn guides_exist_and_every_relative_link_resolves() {
    let rendered = breakglass::docs::render(root()).expect("render docs");
    for guide in [
        "getting-started.md",
        "migrating-from-powershell.md",
        "module-in-existing-stack.md",
        "shared-objects.md",
    ] {
        let path = Path::new("docs/guides").join(guide);
        let text = rendered
            .get(&path)
            .unwrap_or_else(|| panic!("{} is not generated", path.display()));
        assert!(
            text.starts_with("---\npage_title: \"") && text.contains("\nsubcategory: "),
            "{} lacks the registry's front matter",
            path.display()
        );
    }
    let link = regex::Regex::new(r"\]\(([^)#:\s]+\.md)(#[^)]*)?\)").expect("regex");
    let mut broken = Vec::new();
    for (path, text) in &rendered {
        let dir = path.parent().unwrap_or(Path::new(""));
        for caps in link.captures_iter(text) {
            let target = dir.join(&caps[1]);
            // Normalise `..` so the target can be looked up among the rendered pages.
            let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
            for part in target.components() {
                match part {
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    std::path::Component::Normal(p) => parts.push(p),
                    _ => {}
                }
            }
            let normal: std::path::PathBuf = parts.iter().collect();
            if !rendered.contains_key(&normal) {
                broken.push(format!("{}: {}", path.display(), &caps[1]));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to missing pages:\n{}",
        broken.join("\n")
    );
}
