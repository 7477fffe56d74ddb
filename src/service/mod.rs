pub mod build;
mod driver;
pub mod nodes;
pub mod plan;

pub use driver::run;
