//! `vigil.toml`: serde configuration, resolved into settings.
