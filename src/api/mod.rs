//! Custom resource types. No I/O here: plain data that mirrors the ECS API JSON.

pub mod placement;
