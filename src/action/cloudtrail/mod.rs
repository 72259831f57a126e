//! CloudTrail: what was done to the function and with its role, preserved
//! as evidence (`cloudtrail.collect`).

pub mod collect;
pub mod lookup;
pub mod records;
pub mod sources;
pub mod trail;
pub mod window;
