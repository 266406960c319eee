//! Artifacts
