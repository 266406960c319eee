//! `clusterctl lab`: throwaway SSH hosts (containers) to deploy onto, on one machine.
//!
//! - [`image`] builds the node image (Debian bookworm + sshd, no JDK), or with `--init
//!   systemd` one that boots systemd as PID 1.
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
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use render::Kind;

/// The node image `clusterctl lab image` builds and `lab up` uses unless told otherwise.
/// Bump the tag when the image's content changes, so old local images are not reused.
pub const DEFAULT_IMAGE: &str = "localhost/clusterctl-node:bookworm-1";
/// The same node with systemd as PID 1 (`--init systemd`), built on top of [`DEFAULT_IMAGE`].
pub const SYSTEMD_IMAGE: &str = "localhost/clusterctl-node:bookworm-systemd-1";

/// What runs as PID 1 in the nodes: a reaper with sshd (SysV init scripts), or systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    #[default]
    Sysv,
    Systemd,
}

impl Init {
    pub fn default_image(self) -> &'static str {
        match self {
            Init::Sysv => DEFAULT_IMAGE,
            Init::Systemd => SYSTEMD_IMAGE,
        }
    }
}

/// Builds the node image `name` unless it already exists (for systemd, the plain image
/// first, which it is built on).
pub fn image(name: &str, init: Init) -> Result<()> {
    let engine = engine::Engine::detect()?;
    if engine.image_exists(name)? {
        eprintln!(
            "lab image: {name} already exists in {}: nothing to do",
            engine.program()
        );
        return Ok(());
    }
    match init {
        Init::Sysv => image::build(engine, name),
        Init::Systemd => {
            if !engine.image_exists(DEFAULT_IMAGE)? {
                image::build(engine, DEFAULT_IMAGE)?;
            }
            image::build_systemd(engine, DEFAULT_IMAGE, name)
        }
    }
}

/// Starts `nodes` containers from `image` and writes the inventory file `inventory` for them.
/// Refuses if a lab recorded beside `inventory` is still up, or if `inventory` exists and was
/// not written by `lab up`.
/// With `bastion`, the nodes sit on an internal network this machine cannot reach, and one more
/// container on both networks is their jump host.
pub fn up(
    nodes: usize,
    inventory: &Path,
    image: &str,
    kind: Kind,
    init: Init,
    bastion: bool,
    secure: bool,
) -> Result<()> {
    nodes::up(nodes, inventory, image, kind, init, bastion, secure)
}

/// Removes the containers and network recorded beside `inventory`, then the record. Leaves the
/// inventory file. Idempotent.
pub fn down(inventory: &Path) -> Result<()> {
    nodes::down(inventory)
}
