//! Tests of the placement module.
mod labels;
mod member_of;
mod parser;
mod pod_placement;
mod props;
