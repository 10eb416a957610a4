//! Kolbo wire protocol (filled by the kolbo-api issue).
