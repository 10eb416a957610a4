//! The imagegen facade (being filled by the facade issue).

pub mod journal;
pub mod naming;
