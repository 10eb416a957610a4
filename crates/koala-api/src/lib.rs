//! KoalaImages wire protocol (filled by the koala-api issue).
