//! Matching: inventory x advisories -> findings (ranges, source packages, severity, patchable).
