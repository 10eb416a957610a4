//! The `imagegen` command-line tool (filled by the CLI issue).
