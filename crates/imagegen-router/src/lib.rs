//! Credit-cost-aware routing (filled by the router issue).
