pub mod build;
pub mod digests;
mod driver;
pub mod nodes;
pub mod plan;
pub mod retention;

pub use driver::run;
