//! The imagegen facade (filled by the facade issue).
