//! Seeds: the initial tenant. A seed is one JSON object with a part per area
//! (`tenant`, `auth`, `directory`, `pim`, `arm`); each area's state parses its own part.

use serde_json::Value;

use crate::state::Tenant;

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
        tenant_id,
    })
}
