pub mod az_rebalancing;
pub mod build;
mod cache;
pub mod digests;
mod driver;
pub mod eligibility;
pub mod expect;
pub mod fanout;
mod hook_stage;
pub mod hooks;
pub mod nodes;
pub mod placed;
pub mod plan;
pub mod retention;
pub mod routes;
pub mod strategy;
pub mod traffic;

pub use driver::run;
