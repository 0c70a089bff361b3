//! HTTP-level tests of the emulated tenant: one binary (fast linking), one module per area.
//! Every test serves `app(state)` in-process on 127.0.0.1:0 through `common::TestTenant`.

mod common;

mod administrative_units;
mod arm;
mod behaviour;
mod directory;
mod monitor;
mod pim;
mod rbac;
mod sdk_compat;
mod spec_walk;
mod token;
