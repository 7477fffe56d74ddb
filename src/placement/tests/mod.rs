//! Tests of the placement module.
mod parser;
