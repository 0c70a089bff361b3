//! terraform-provider-breakglass: a Terraform provider (plugin protocol 6) for Microsoft Entra
//! emergency-access accounts. See ARCHITECTURE.md for the map.

pub mod azure;
pub mod data_sources;
pub mod docs;
pub mod framework;
pub mod logging;
pub mod protocol;
pub mod provider;
pub mod resources;
