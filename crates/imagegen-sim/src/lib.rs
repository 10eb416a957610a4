//! Local simulator of both provider APIs (filled by the simulator issue).
