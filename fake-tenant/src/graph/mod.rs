//! Microsoft Graph v1.0, served under `/v1.0/`. Shapes follow `specs/msgraph/`; status codes,
//! error codes and quirks follow `specs/msgraph/v1.0-breakglass-facts.md`.

pub mod directory;
pub mod odata;
pub mod pim;

use axum::Router;

use crate::AppState;

/// The path with the CSDL namespace alias spelled out: Graph's schema is declared as
/// `<Schema Namespace="microsoft.graph" Alias="graph">` (the `$metadata` document), and OData
/// lets a qualified name use the alias wherever it may use the namespace ("OData Version 4.01
/// Part 2: URL Conventions", addressing derived types and bound operations). Kiota-generated
/// SDKs address type casts that way (`/directory/deletedItems/graph.user`,
/// `/groups/{id}/members/graph.user`). `None` when no segment uses the alias.
pub fn canonical_path(path: &str) -> Option<String> {
    if !path.split('/').any(|s| s.starts_with("graph.")) {
        return None;
    }
    Some(
        path.split('/')
            .map(|s| match s.strip_prefix("graph.") {
                Some(rest) => format!("microsoft.graph.{rest}"),
                None => s.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/"),
    )
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(directory::routes())
        .merge(pim::routes())
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn the_graph_alias_is_spelled_out_and_other_paths_are_left_alone() {
        assert_eq!(
            canonical_path("/v1.0/directory/deletedItems/graph.user").as_deref(),
            Some("/v1.0/directory/deletedItems/microsoft.graph.user")
        );
        assert_eq!(
            canonical_path("/v1.0/directory/deletedItems/1/graph.restore").as_deref(),
            Some("/v1.0/directory/deletedItems/1/microsoft.graph.restore")
        );
        assert_eq!(
            canonical_path("/v1.0/groups/g/members/microsoft.graph.user"),
            None
        );
        assert_eq!(canonical_path("/v1.0/users/graphuser@contoso.com"), None);
    }
}
