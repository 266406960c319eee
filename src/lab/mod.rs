//! `clusterctl lab`: throwaway SSH hosts (containers) to deploy onto, on one machine.
//!
//! - [`image`] builds the node image (Debian bookworm + sshd, no JDK).
//! - [`up`] starts N nodes on a private network and writes a ready-to-use inventory, with a
//!   fresh client key and a known_hosts file of the nodes' fresh host keys (strict checking,
//!   no trust on first use). What it made is recorded in `<inventory stem>.lab/` beside it.
//! - [`down`] removes exactly what that record names.
//!
//! podman is used (docker when podman is absent) through its command line.

mod engine;
mod image;
mod nodes;
mod render;
mod state;

use anyhow::Result;
use std::path::Path;

pub use render::Kind;

/// The node image `clusterctl lab image` builds and `lab up` uses unless told otherwise.
/// Bump the tag when the image's content changes, so old local images are not reused.
pub const DEFAULT_IMAGE: &str = "localhost/clusterctl-node:bookworm-1";

/// Builds the node image `name` unless it already exists.
pub fn image(name: &str) -> Result<()> {
    let engine = engine::Engine::detect()?;
    if engine.image_exists(name)? {
        eprintln!(
            "lab image: {name} already exists in {}: nothing to do",
            engine.program()
        );
        return Ok(());
    }
    image::build(engine, name)
}

/// Starts `nodes` containers from `image` and writes the inventory file `inventory` for them.
/// Refuses if a lab recorded beside `inventory` is still up, or if `inventory` exists and was
/// not written by `lab up`.
/// With `bastion`, the nodes sit on an internal network this machine cannot reach, and one more
/// container on both networks is their jump host.
pub fn up(nodes: usize, inventory: &Path, image: &str, kind: Kind, bastion: bool) -> Result<()> {
    nodes::up(nodes, inventory, image, kind, bastion)
}

/// Removes the containers and network recorded beside `inventory`, then the record. Leaves the
/// inventory file. Idempotent.
pub fn down(inventory: &Path) -> Result<()> {
    nodes::down(inventory)
}
