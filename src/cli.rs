//! Command-line arguments (clap). No I/O here.
