//! Seeds: the initial tenant. A seed is one JSON object with a part per area
//! (`tenant`, `auth`, `directory`, `pim`, `arm`); each area's state parses its own part.
//!
//! The default seed is composed from one file per area, `seeds/default/<area>.json`, so each
//! area's owner edits only its own file. A variant is a JSON merge patch (RFC 7396) over
//! another seed: `{"extends": "default", "pim": {...}}`. Seed files are embedded at build time
//! (see build.rs); a path to a file on disk works too.

use std::path::Path;

use serde_json::{Map, Value};

use crate::state::Tenant;

include!(concat!(env!("OUT_DIR"), "/embedded_seeds.rs"));

/// The parts of a seed, in the order they are composed and dumped.
pub const AREAS: [&str; 5] = ["tenant", "auth", "directory", "pim", "arm"];

/// How deep `extends` chains may go before we assume a cycle.
const MAX_EXTENDS_DEPTH: usize = 8;

/// Loads a seed by embedded name (`default`, `forbid-permanent`, `large`, with or without
/// `.json`) or by path to a JSON file, resolving `extends` chains.
pub fn load(name_or_path: &str) -> Result<Value, String> {
    load_at_depth(name_or_path, None, 0)
}

/// Names of the embedded seeds, for `--help` and error messages.
pub fn embedded_names() -> Vec<String> {
    let mut names: Vec<String> = EMBEDDED_SEEDS
        .iter()
        .filter(|(path, _)| !path.contains('/'))
        .map(|(path, _)| path.trim_end_matches(".json").to_owned())
        .collect();
    names.push("default".to_owned());
    names.sort();
    names
}

fn load_at_depth(
    name_or_path: &str,
    base_dir: Option<&Path>,
    depth: usize,
) -> Result<Value, String> {
    if depth > MAX_EXTENDS_DEPTH {
        return Err(format!(
            "seed '{name_or_path}': `extends` nests deeper than {MAX_EXTENDS_DEPTH} levels (a cycle?)"
        ));
    }
    let name = name_or_path.trim_end_matches(".json");
    if name == "default" {
        return Ok(compose_default());
    }
    let (text, dir) = if let Some((_, text)) = embedded(&format!("{name}.json")) {
        (text.to_string(), None)
    } else {
        let path = match base_dir {
            Some(dir) if Path::new(name_or_path).is_relative() => dir.join(name_or_path),
            _ => Path::new(name_or_path).to_path_buf(),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "seed '{name_or_path}' is neither an embedded seed ({}) nor a readable file: {e}",
                embedded_names().join(", ")
            )
        })?;
        (text, path.parent().map(Path::to_path_buf))
    };
    let mut seed: Value = serde_json::from_str(&text)
        .map_err(|e| format!("seed '{name_or_path}' is not valid JSON: {e}"))?;
    let Some(object) = seed.as_object_mut() else {
        return Err(format!("seed '{name_or_path}' must be a JSON object"));
    };
    match object.remove("extends") {
        None => Ok(seed),
        Some(Value::String(parent)) => {
            let mut base = load_at_depth(&parent, dir.as_deref(), depth + 1)?;
            merge_patch(&mut base, &seed);
            Ok(base)
        }
        Some(other) => Err(format!(
            "seed '{name_or_path}': `extends` must be a seed name or path, got {other}"
        )),
    }
}

fn embedded(path: &str) -> Option<&'static (&'static str, &'static str)> {
    EMBEDDED_SEEDS.iter().find(|(p, _)| *p == path)
}

/// The default seed: `seeds/default/<area>.json` under the key `<area>`. A missing area file
/// yields an empty part, which each area's `from_seed` treats as "nothing seeded".
fn compose_default() -> Value {
    let mut seed = Map::new();
    for area in AREAS {
        let part = embedded(&format!("default/{area}.json"))
            .and_then(|(_, text)| serde_json::from_str(text).ok())
            .unwrap_or_else(|| Value::Object(Map::new()));
        seed.insert(area.to_owned(), part);
    }
    Value::Object(seed)
}

/// JSON merge patch (RFC 7396): objects merge recursively, `null` deletes a member, anything
/// else (arrays included) replaces the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

pub fn build(seed: &Value) -> Result<Tenant, String> {
    let tenant_id = seed["tenant"]["id"]
        .as_str()
        .unwrap_or("00000000-0000-0000-0000-000000000000")
        .to_owned();
    Ok(Tenant {
        display_name: seed["tenant"]["displayName"]
            .as_str()
            .unwrap_or("Contoso")
            .to_owned(),
        auth: crate::token::AuthState::from_seed(&seed["auth"], &tenant_id)?,
        directory: crate::graph::directory::DirectoryState::from_seed(&seed["directory"])?,
        pim: crate::graph::pim::PimState::from_seed(&seed["pim"])?,
        arm: crate::arm::ArmState::from_seed(&seed["arm"])?,
        behaviour: Default::default(),
        seed: seed.clone(),
        tenant_id,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396_examples() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(
            &mut target,
            &json!({"a": "z", "c": {"f": null}, "list": [3], "new": {"x": 1}}),
        );
        assert_eq!(
            target,
            json!({"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}})
        );
    }

    #[test]
    fn default_seed_has_every_area_and_the_tenant_id() {
        let seed = load("default").unwrap();
        for area in AREAS {
            assert!(seed[area].is_object(), "area {area} missing");
        }
        assert_eq!(
            seed["tenant"]["id"],
            json!("46810bcd-886d-469e-a664-c8d3691d74fd")
        );
        assert!(seed["auth"]["applications"][0]["appId"].is_string());
    }

    #[test]
    fn file_seed_extends_default_with_a_merge_patch() {
        let dir = std::env::temp_dir().join(format!("seed-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("variant.json");
        std::fs::write(
            &path,
            r#"{"extends":"default","tenant":{"displayName":"Fabrikam"}}"#,
        )
        .unwrap();
        let seed = load(path.to_str().unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(seed["tenant"]["displayName"], json!("Fabrikam"));
        assert_eq!(
            seed["tenant"]["id"],
            json!("46810bcd-886d-469e-a664-c8d3691d74fd")
        );
        assert!(seed.get("extends").is_none());
    }

    #[test]
    fn unknown_seed_names_the_embedded_ones() {
        let err = load("no-such-seed").unwrap_err();
        assert!(err.contains("default"), "{err}");
    }

    #[test]
    fn every_embedded_seed_builds_a_tenant() {
        for name in embedded_names() {
            let seed = load(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            build(&seed).unwrap_or_else(|e| panic!("seed {name} does not build: {e}"));
        }
    }
}
