//! The advisory database: the OSV model, import of OSV JSON and zip exports, and the on-disk index.
