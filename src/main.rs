//! clusterctl: deploy and operate ZooKeeper + Kafka clusters over SSH from one inventory.

mod access;
mod artifacts;
mod cli;
mod engine;
mod health;
mod inventory;
mod lab;
mod logs;
mod net;
mod ops;
mod pki;
mod quote;
mod rebalance;
mod render;
mod report;
mod security;
mod status;
mod topics;
mod transport;
mod versions;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
