//! Azure clouds: where to sign in, where Graph and ARM live, and which token scopes to ask for.
//!
//! Values are those Microsoft documents for the global service and the two national clouds
//! ("Microsoft Graph national cloud deployments", "Azure Government developer guide",
//! "Azure China developer guide"). Endpoint overrides (private clouds, the emulated tenant)
//! replace URLs only: a token is still requested for the cloud's Graph/ARM scope, because that
//! is the audience the token service and the APIs agree on, whatever host serves them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudEnvironment {
    Public,
    UsGovernment,
    China,
}

impl CloudEnvironment {
    pub const ALL: [CloudEnvironment; 3] = [
        CloudEnvironment::Public,
        CloudEnvironment::UsGovernment,
        CloudEnvironment::China,
    ];

    /// The name used in `environment` / `ARM_ENVIRONMENT` (azurerm's spelling).
    pub fn name(self) -> &'static str {
        match self {
            CloudEnvironment::Public => "public",
            CloudEnvironment::UsGovernment => "usgovernment",
            CloudEnvironment::China => "china",
        }
    }

    /// Case-insensitive, as azurerm accepts `Public` and `public` alike.
    pub fn parse(name: &str) -> Option<CloudEnvironment> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    /// `public`, `usgovernment`, `china` — for "valid values are" messages.
    pub fn valid_names() -> String {
        Self::ALL
            .iter()
            .map(|c| format!("`{}`", c.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn endpoints(self) -> CloudEndpoints {
        let (login, graph, resource_manager) = match self {
            CloudEnvironment::Public => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "https://management.azure.com",
            ),
            // Azure Government "L4" Graph; DoD tenants use dod-graph.microsoft.us and can set
            // `graph_endpoint` (the token scope differs too, so that is a documented limit).
            CloudEnvironment::UsGovernment => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "https://management.usgovcloudapi.net",
            ),
            CloudEnvironment::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
            ),
        };
        CloudEndpoints {
            login: login.to_owned(),
            graph: graph.to_owned(),
            resource_manager: resource_manager.to_owned(),
            graph_audience: format!("{graph}/"),
            graph_scope: format!("{graph}/.default"),
            arm_audience: format!("{resource_manager}/"),
            arm_scope: format!("{resource_manager}/.default"),
        }
    }
}

impl fmt::Display for CloudEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the Azure client layer needs to reach one cloud. URLs have no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// Entra sign-in authority host; the token endpoint is `{login}/{tenant}/oauth2/v2.0/token`.
    pub login: String,
    /// Microsoft Graph host; requests go to `{graph}/v1.0/...`.
    pub graph: String,
    /// Azure Resource Manager host.
    pub resource_manager: String,
    /// Graph as a v1 "resource" identifier, for token sources that take a resource instead of
    /// a scope (managed identity endpoints, `az account get-access-token --resource`).
    pub graph_audience: String,
    /// Graph as a v2 scope for the token endpoint (`…/.default`: the app's granted permissions).
    pub graph_scope: String,
    /// ARM as a v1 resource identifier.
    pub arm_audience: String,
    /// ARM as a v2 scope.
    pub arm_scope: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_ignores_case() {
        for c in CloudEnvironment::ALL {
            assert_eq!(CloudEnvironment::parse(c.name()), Some(c));
        }
        assert_eq!(
            CloudEnvironment::parse("USGovernment"),
            Some(CloudEnvironment::UsGovernment)
        );
        assert_eq!(CloudEnvironment::parse("mars"), None);
        assert_eq!(
            CloudEnvironment::valid_names(),
            "`public`, `usgovernment`, `china`"
        );
    }

    #[test]
    fn each_cloud_has_its_documented_hosts_and_matching_scopes() {
        let public = CloudEnvironment::Public.endpoints();
        assert_eq!(public.login, "https://login.microsoftonline.com");
        assert_eq!(public.graph_scope, "https://graph.microsoft.com/.default");
        assert_eq!(public.arm_scope, "https://management.azure.com/.default");
        assert_eq!(public.arm_audience, "https://management.azure.com/");

        let gov = CloudEnvironment::UsGovernment.endpoints();
        assert_eq!(gov.login, "https://login.microsoftonline.us");
        assert_eq!(gov.graph_scope, "https://graph.microsoft.us/.default");
        assert_eq!(
            gov.arm_scope,
            "https://management.usgovcloudapi.net/.default"
        );

        let china = CloudEnvironment::China.endpoints();
        assert_eq!(china.login, "https://login.chinacloudapi.cn");
        assert_eq!(china.graph, "https://microsoftgraph.chinacloudapi.cn");
        assert_eq!(
            china.arm_scope,
            "https://management.chinacloudapi.cn/.default"
        );
    }
}
