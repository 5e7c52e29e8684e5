//! `tessera bench`: the runtime's collectives and the local operations,
//! each printed next to an anchor measured in the same run.

pub mod anchors;
pub mod comm;
pub mod ops;
