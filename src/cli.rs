//! Command line: commands, flags, exit codes (0 done/healthy, 1 failed/unhealthy, 2 bad input).

use crate::engine::{self, ApplyOptions};
use crate::inventory::{self, Inventory};
use crate::ops::Target;
use crate::ops::restart::RollOptions;
use crate::ops::roller::Policy;
use crate::render::{Ids, InitSystem, Renderer};
use crate::report::Reporter;
use crate::security::Renew;
use crate::topics::{self, TopicCommand};
use crate::transport::HostKeyPolicy;
use crate::{lab, ops, status};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "clusterctl",
    version,
    about = "Deploy and operate ZooKeeper + Kafka clusters over SSH from one inventory file"
)]
pub struct Cli {
    /// Print more: each remote command as it runs (validate: each host's SSH settings).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check an inventory; touches no network.
    Validate {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
    },
    /// Write every host's rendered files under DIR/<host>/ without connecting anywhere.
    Render {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// Directory to write into (one subdirectory per host)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Which service files to render (the real apply detects it per host).
        #[arg(long, value_enum, default_value = "sysv")]
        init: InitArg,
    },
    /// Install, configure and start the cluster; prove it healthy.
    Apply {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// Print per host what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only change these hosts (comma-separated names); health gates still cover all.
        #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
        limit: Option<Vec<String>>,
        /// Learn host keys of hosts not yet in known_hosts (a changed key is still refused).
        #[arg(long)]
        accept_new_host_keys: bool,
        /// Second phase of an upgrade, once every node runs the new version: drop the old
        /// inter-broker protocol pin (ZooKeeper mode, rolls the brokers) or raise
        /// metadata.version (KRaft). Cannot be undone.
        #[arg(long)]
        finalize_upgrade: bool,
        /// Delete every topic (but Kafka's internal `__` ones) the inventory does not declare.
        #[arg(long)]
        prune_topics: bool,
        /// Delete the SCRAM users and ACLs the inventory does not declare (secured clusters).
        #[arg(long)]
        prune_access: bool,
        /// Run this playbook instead of the built-in playbooks/apply.yaml.
        #[arg(long, value_name = "FILE")]
        playbook: Option<PathBuf>,
        /// Skip these pre-flight host checks (comma-separated; repeatable).
        #[arg(long, value_enum, value_delimiter = ',', value_name = "CHECK")]
        skip_preflight: Vec<crate::engine::preflight::Check>,
        /// Delete the Kafka log dirs of each broker this apply retires, once it has stopped
        /// (default: kept, so the host can come back).
        #[arg(long)]
        delete_data: bool,
    },
    /// Move a ZooKeeper-mode cluster to KRaft (Kafka 3.9), phase by phase, each gated, up to
    /// the soak point (brokers in KRaft, controllers still writing to ZooKeeper). Resumable:
    /// it reads the phase from the hosts.
    Migrate {
        /// Inventory file with groups.controller beside groups.zookeeper [default:
        /// $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// From the soak point: roll the controllers without ZooKeeper, the irreversible last
        /// step (refused unless the cluster is healthy at the soak point).
        #[arg(long, conflicts_with = "rollback")]
        finalize: bool,
        /// From any phase before finalize: back to ZooKeeper mode, after Kafka's documented
        /// revert (the controllers stopped and their metadata deleted).
        #[arg(long)]
        rollback: bool,
        /// Learn host keys of hosts not yet in known_hosts (a changed key is still refused).
        #[arg(long)]
        accept_new_host_keys: bool,
    },
    /// Health of every host and service, with a one-line verdict; exit 0 only when healthy.
    Status {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// Text for people, or JSON for scripts
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Output,
    },
    /// Restart services host by host without taking the cluster below its safety margins.
    Restart {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// One host at a time, each gated (or one rack at a time, --by-rack); required so
        /// scripts say what they mean.
        #[arg(long, required = true)]
        rolling: bool,
        /// Only this service [default: zookeeper, then kafka].
        #[arg(long, value_enum)]
        service: Option<ServiceArg>,
        /// Only these hosts (comma-separated names).
        #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
        limit: Option<Vec<String>>,
        /// Start even if pre-flight finds the cluster degraded (loudly).
        #[arg(long)]
        force: bool,
        /// Pre-flight tolerates under-replicated partitions as long as every ISR is at or above
        /// min.insync.replicas.
        #[arg(long)]
        allow_under_replicated: bool,
        /// Accept that topics with replication factor <= min.insync.replicas stop taking
        /// acks=all writes while a replica restarts.
        #[arg(long)]
        allow_unavailable_topics: bool,
        /// SIGKILL a process still running this many seconds after SIGTERM (default: never kill;
        /// wait the service's stop timeout and fail).
        #[arg(long, value_name = "SECS")]
        sigkill_after: Option<u64>,
        /// Kafka: restart the brokers of one rack (hosts.<name>.rack) together when every
        /// partition keeps min.insync.replicas in-sync replicas in the other racks; otherwise
        /// one at a time, saying why. KRaft controllers and ZooKeeper still go one at a time.
        #[arg(long)]
        by_rack: bool,
    },
    /// Kafka topics: list, describe, create, delete, alter (Kafka's admin API; no JVM needed).
    #[command(subcommand_precedence_over_arg = true)]
    Topics {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// Text for people, or JSON for scripts
        #[arg(
            short = 'o',
            long = "output",
            value_enum,
            default_value = "text",
            global = true
        )]
        output: Output,
        #[command(subcommand)]
        command: TopicsArgs,
    },
    /// Move replicas so every broker holds an even share of replicas and preferred leaders.
    Rebalance {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// Replication throttle while replicas copy, in MB/s (10^6 bytes) per broker; removed
        /// when done [default: unthrottled].
        #[arg(long, value_name = "MB/s")]
        throttle: Option<f64>,
        /// Print the reassignment; submit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Cancel the reassignments under way and remove the throttles.
        #[arg(long, conflicts_with = "throttle")]
        cancel: bool,
    },
    /// Move every replica off one host's broker, so that apply can retire it once the host
    /// leaves groups.kafka.
    #[command(override_usage = "clusterctl drain [OPTIONS] [INVENTORY] HOST")]
    Drain {
        /// [INVENTORY] HOST: INVENTORY defaults to $CLUSTERCTL_INVENTORY or ./inventory.yaml;
        /// HOST is the inventory host whose broker is emptied
        #[arg(num_args = 1..=2, value_name = "ARG", required = true)]
        args: Vec<String>,
        /// Replication throttle while replicas copy, in MB/s (10^6 bytes) per broker; removed
        /// when done [default: unthrottled].
        #[arg(long, value_name = "MB/s")]
        throttle: Option<f64>,
        /// Print the reassignment; submit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A service's log on one host, read over SSH: the last lines, or followed (-f).
    #[command(override_usage = "clusterctl logs [OPTIONS] [INVENTORY] HOST SERVICE")]
    Logs {
        /// [INVENTORY] HOST SERVICE: INVENTORY defaults to $CLUSTERCTL_INVENTORY or
        /// ./inventory.yaml; SERVICE is zookeeper, kafka or nisshi
        #[arg(num_args = 2..=3, value_name = "ARG", required = true)]
        args: Vec<String>,
        /// How many of the last lines to print
        #[arg(short = 'n', long, default_value_t = 100, value_name = "N")]
        lines: u32,
        /// Keep printing what the service writes until interrupted
        #[arg(short, long)]
        follow: bool,
    },
    /// The managed cluster CA and the hosts' certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Write a client's configuration for a secured cluster (bootstrap servers, protocol,
    /// mechanism, credentials; the CA beside it as FILE.ca.pem), mode 0600.
    ClientConfig {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// The user (declared under users) the client logs in as
        #[arg(long)]
        user: String,
        /// Java clients' properties (also Kafka's console tools), or librdkafka's (kcat -F)
        #[arg(long, value_enum)]
        format: ClientFormat,
        /// Where to write it
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Throwaway hosts in containers (podman or docker) for smoke clusters and tests.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Print a shell completion script: `clusterctl completions bash > /etc/bash_completion.d/clusterctl`.
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum TopicsArgs {
    /// Every topic with partition count, replication factor and health; internal topics marked.
    List,
    /// Per partition: leader, replicas, ISR, offline replicas, flags; and the topic's configs.
    Describe {
        /// Omit for every topic.
        topic: Option<String>,
    },
    /// Create a topic; no change when it already exists exactly as asked.
    Create {
        /// The topic's name
        topic: String,
        /// [default: kafka.num_partitions of the inventory]
        #[arg(long)]
        partitions: Option<i32>,
        /// [default: kafka.default_replication_factor of the inventory]
        #[arg(long)]
        replication_factor: Option<i16>,
        /// Topic config, repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = topics::parse_config_arg)]
        configs: Vec<(String, String)>,
    },
    /// Delete a topic.
    Delete {
        /// The topic's name
        topic: String,
    },
    /// Add partitions (never fewer), set configs, remove config overrides.
    Alter {
        /// The topic's name
        topic: String,
        /// New total partition count.
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a topic config, repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = topics::parse_config_arg)]
        set: Vec<(String, String)>,
        /// Remove a topic config override (back to the broker's default), repeatable.
        #[arg(long = "delete-config", value_name = "KEY", value_parser = topics::parse_config_key)]
        delete: Vec<String>,
    },
}

impl TopicsArgs {
    /// The command, with the cluster's defaults where the user gave none.
    fn command(self, inv: &Inventory) -> TopicCommand {
        match self {
            TopicsArgs::List => TopicCommand::List,
            TopicsArgs::Describe { topic } => TopicCommand::Describe { topic },
            TopicsArgs::Create {
                topic,
                partitions,
                replication_factor,
                configs,
            } => TopicCommand::Create {
                topic,
                partitions: partitions.unwrap_or(inv.kafka.num_partitions as i32),
                replication_factor: replication_factor
                    .unwrap_or(inv.kafka.default_replication_factor as i16),
                configs,
            },
            TopicsArgs::Delete { topic } => TopicCommand::Delete { topic },
            TopicsArgs::Alter {
                topic,
                partitions,
                set,
                delete,
            } => TopicCommand::Alter {
                topic,
                partitions,
                set,
                delete,
            },
        }
    }
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Print the cluster CA certificate (public; what clients trust). During a CA rotation it
    /// prints both CAs, old first: give clients that bundle before stage 2. Creates the
    /// managed CA if it does not exist yet.
    Ca {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
    },
    /// Issue every host a new certificate and roll it in, one node at a time under the
    /// roller's gates. Refused while the inventory holds any other change (apply it first).
    Rotate {
        /// Inventory file [default: $CLUSTERCTL_INVENTORY or ./inventory.yaml]
        inventory: Option<PathBuf>,
        /// Replace the managed CA instead, one stage per run, each a full roll: 1 trust a new
        /// CA beside the old, 2 issue host certificates from it, 3 drop the old CA (to
        /// pki/retired/). Between 1 and 2, give clients the bundle `certs ca` prints.
        #[arg(long)]
        ca: bool,
        /// Print what the rotation would change and stop
        #[arg(long)]
        dry_run: bool,
        /// Trust and record the host key of a host seen for the first time (default: refuse)
        #[arg(long)]
        accept_new_host_keys: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ClientFormat {
    Java,
    Librdkafka,
}

#[derive(Subcommand)]
enum LabCommand {
    /// Build the node image (Debian + sshd; with --init systemd, booting systemd).
    Image {
        /// Image name [default: localhost/clusterctl-node:bookworm-1, or
        /// localhost/clusterctl-node:bookworm-systemd-1 with --init systemd]
        #[arg(long)]
        name: Option<String>,
        /// What the nodes run as PID 1: sshd under a reaper (SysV init scripts), or systemd.
        #[arg(long, value_enum, default_value = "sysv")]
        init: lab::Init,
    },
    /// Start N containers and write a ready inventory for them.
    Up {
        /// The inventory file to write (the lab's record goes beside it, in <stem>.lab/)
        inventory: PathBuf,
        /// How many nodes
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Node image [default: the one `lab image` builds for --init]
        #[arg(long)]
        image: Option<String>,
        /// What the nodes run as PID 1: sshd under a reaper (SysV init scripts), or systemd.
        #[arg(long, value_enum, default_value = "sysv")]
        init: lab::Init,
        /// KRaft: the first 3 nodes are combined broker+controller nodes, no ZooKeeper.
        #[arg(long, conflicts_with = "nisshi")]
        kraft: bool,
        /// The nisshi broker: the first node runs PostgreSQL, the others the broker.
        #[arg(long)]
        nisshi: bool,
        /// The nodes on an internal network this machine cannot reach, plus a `bastion` host on
        /// both networks as every node's ssh.jump.
        #[arg(long)]
        bastion: bool,
        /// SASL_SSL listeners with a managed CA, an admin, a broker and an `app` user (their
        /// passwords generated into the lab's directory), with or without --kraft.
        #[arg(long, conflicts_with = "nisshi")]
        secure: bool,
    },
    /// Remove the containers and network that `lab up` made for this inventory.
    Down {
        /// The inventory file `lab up` wrote
        inventory: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ServiceArg {
    Zookeeper,
    /// KRaft controllers only.
    Controller,
    /// Every Kafka node (KRaft controllers first, then brokers).
    Kafka,
}

#[derive(Clone, Copy, ValueEnum)]
enum InitArg {
    Sysv,
    Systemd,
}

const OK: u8 = 0;
const FAILED: u8 = 1;
const BAD_INPUT: u8 = 2;

pub fn run(cli: Cli) -> ExitCode {
    let verbose = cli.verbose;
    crate::transport::set_verbose(verbose);
    ExitCode::from(match cli.command {
        Command::Validate { inventory } => match load(inventory) {
            Ok(inv) if verbose => {
                println!("{}: ok", inv.file.display());
                for h in &inv.hosts {
                    println!("  {}", ssh_settings(h));
                }
                OK
            }
            Ok(inv) if inv.flavor == crate::inventory::Flavor::Nisshi => {
                let n = inv.nisshi.as_ref().unwrap();
                println!(
                    "{}: ok ({} hosts: {} nisshi broker(s) {}, storage {})",
                    inv.file.display(),
                    inv.hosts.len(),
                    inv.kafka_hosts().count(),
                    n.version,
                    match (&n.storage, inv.storage_host()) {
                        (crate::inventory::Storage::Sqlite, _) => "sqlite".to_string(),
                        (_, Some(h)) => format!("PostgreSQL on {}", h.name),
                        _ => "external PostgreSQL".to_string(),
                    }
                );
                OK
            }
            Ok(inv) => {
                let sides = inv.hosts.iter().filter(|h| h.side_of.is_some()).count();
                let n = inv.controller_hosts().count();
                let beside = match sides {
                    0 => String::new(),
                    s => format!(" ({s} as kafka-controller beside a broker)"),
                };
                let zookeeper = inv.zookeeper_hosts().count();
                println!(
                    "{}: ok ({} hosts: {}, {} Kafka broker(s) {})",
                    inv.file.display(),
                    inv.hosts.len() - sides,
                    match (inv.kafka.kraft, inv.kafka.migrating) {
                        (true, _) => format!("{n} KRaft controller(s){beside}"),
                        (false, true) => format!(
                            "{zookeeper} ZooKeeper, {n} KRaft controller(s) to migrate to{beside}"
                        ),
                        _ => format!("{zookeeper} ZooKeeper"),
                    },
                    inv.kafka_hosts().count(),
                    inv.kafka.version
                );
                OK
            }
            Err(code) => code,
        },
        Command::Render {
            inventory,
            out,
            init,
        } => match load(inventory) {
            Ok(inv) => report(render(&inv, &out, init), BAD_INPUT),
            Err(code) => code,
        },
        Command::Apply {
            inventory,
            dry_run,
            limit,
            accept_new_host_keys,
            finalize_upgrade,
            prune_topics,
            prune_access,
            playbook,
            skip_preflight,
            delete_data,
        } => match load(inventory) {
            Ok(inv) => {
                let opts = ApplyOptions {
                    dry_run,
                    finalize_upgrade,
                    prune_topics,
                    prune_access,
                    limit,
                    policy: policy(accept_new_host_keys),
                    playbook,
                    skip_preflight,
                    delete_data,
                    certificates_only: false,
                };
                tunnels(&inv, opts.policy);
                apply(&inv, &opts)
            }
            Err(code) => code,
        },
        Command::Migrate {
            inventory,
            finalize,
            rollback,
            accept_new_host_keys,
        } => match load(inventory) {
            Ok(inv) => {
                let opts = crate::ops::migrate::MigrateOptions {
                    policy: policy(accept_new_host_keys),
                    finalize,
                    rollback,
                };
                tunnels(&inv, opts.policy);
                let rep = Reporter::new();
                let r = runtime().block_on(crate::ops::migrate::migrate(&inv, &opts, &rep));
                rep.clear();
                if r.is_err() {
                    eprintln!(
                        "migrate stopped; fix the cause and re-run: it reads the phase from the hosts and goes on from there"
                    );
                }
                report(r, FAILED)
            }
            Err(code) => code,
        },
        Command::Status { inventory, output } => match load(inventory) {
            Ok(inv) => {
                tunnels(&inv, HostKeyPolicy::Strict);
                let s = runtime().block_on(status::collect(&inv, HostKeyPolicy::Strict));
                match output {
                    Output::Json => println!("{}", serde_json::to_string_pretty(&s).unwrap()),
                    Output::Text => status::print_text(&s),
                }
                if s.healthy { OK } else { FAILED }
            }
            Err(code) => code,
        },
        Command::Restart {
            inventory,
            rolling: _,
            service,
            limit,
            force,
            allow_under_replicated,
            allow_unavailable_topics,
            sigkill_after,
            by_rack,
        } => match load(inventory) {
            Ok(inv) => {
                let targets = match service {
                    None => vec![Target::ZooKeeper, Target::Kafka],
                    Some(ServiceArg::Zookeeper) => vec![Target::ZooKeeper],
                    Some(ServiceArg::Controller) => vec![Target::Controllers],
                    Some(ServiceArg::Kafka) => vec![Target::Kafka],
                };
                let opts = RollOptions {
                    policy: Policy {
                        strict: !allow_under_replicated,
                        allow_unavailable_low_rf: allow_unavailable_topics,
                    },
                    force,
                    sigkill_after,
                    settle: std::time::Duration::ZERO,
                    by_rack,
                };
                tunnels(&inv, HostKeyPolicy::Strict);
                restart(&inv, &targets, limit.as_deref(), opts)
            }
            Err(code) => code,
        },
        Command::Topics {
            inventory,
            output,
            command,
        } => match load(inventory) {
            Ok(inv) => {
                tunnels(&inv, HostKeyPolicy::Strict);
                let bootstrap = engine::gates::bootstrap(&inv);
                let json = matches!(output, Output::Json);
                match runtime().block_on(topics::run(&bootstrap, command.command(&inv), json)) {
                    Ok(text) => {
                        println!("{text}");
                        OK
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        if e.is::<topics::InvalidArgs>() {
                            BAD_INPUT
                        } else {
                            FAILED
                        }
                    }
                }
            }
            Err(code) => code,
        },
        Command::Rebalance {
            inventory,
            throttle,
            dry_run,
            cancel,
        } => rebalance(
            inventory,
            crate::rebalance::Options {
                throttle,
                dry_run,
                cancel,
                drain: None,
            },
        ),
        Command::Drain {
            args,
            throttle,
            dry_run,
        } => {
            let (inventory, host) = match &args[..] {
                [i, h] => (Some(PathBuf::from(i)), h.clone()),
                [h] => (None, h.clone()),
                _ => unreachable!("clap takes 1 or 2"),
            };
            rebalance(
                inventory,
                crate::rebalance::Options {
                    throttle,
                    dry_run,
                    cancel: false,
                    drain: Some(host),
                },
            )
        }
        Command::Logs {
            args,
            lines,
            follow,
        } => {
            let (inventory, host, service) = match &args[..] {
                [i, h, s] => (Some(PathBuf::from(i)), h, s),
                [h, s] => (None, h, s),
                _ => unreachable!("clap takes 2 or 3"),
            };
            let svc = match service.as_str() {
                "zookeeper" => crate::render::Service::ZooKeeper,
                "kafka" => crate::render::Service::Kafka,
                "nisshi" => crate::render::Service::Nisshi,
                other => {
                    eprintln!(
                        "error: unknown service {other:?}: expected zookeeper, kafka or nisshi"
                    );
                    return ExitCode::from(BAD_INPUT);
                }
            };
            match load(inventory) {
                Ok(inv) => {
                    if let Err(e) = crate::logs::source(&inv, host, svc, None) {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(BAD_INPUT);
                    }
                    match runtime().block_on(crate::logs::run(&inv, host, svc, lines, follow)) {
                        Ok(0) => OK,
                        Ok(n) => {
                            eprintln!("error: reading the log on {host} exited with status {n}");
                            FAILED
                        }
                        Err(e) => {
                            eprintln!("error: {e:#}");
                            FAILED
                        }
                    }
                }
                Err(code) => code,
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "clusterctl",
                &mut std::io::stdout(),
            );
            OK
        }
        Command::Certs {
            command: CertsCommand::Ca { inventory },
        } => match load(inventory) {
            Ok(inv) => report(crate::security::print_ca(&inv), FAILED),
            Err(code) => code,
        },
        Command::Certs {
            command:
                CertsCommand::Rotate {
                    inventory,
                    ca,
                    dry_run,
                    accept_new_host_keys,
                },
        } => match load(inventory) {
            Ok(inv) => rotate(&inv, ca, dry_run, policy(accept_new_host_keys)),
            Err(code) => code,
        },
        Command::ClientConfig {
            inventory,
            user,
            format,
            out,
        } => match load(inventory) {
            Ok(inv) => {
                let format = match format {
                    ClientFormat::Java => crate::security::ClientFormat::Java,
                    ClientFormat::Librdkafka => crate::security::ClientFormat::Librdkafka,
                };
                match crate::security::client_config(&inv, &user, format, &out) {
                    Ok(msg) => {
                        println!("{msg}");
                        OK
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        BAD_INPUT
                    }
                }
            }
            Err(code) => code,
        },
        Command::Lab { command } => report(
            match command {
                LabCommand::Image { name, init } => {
                    lab::image(name.as_deref().unwrap_or(init.default_image()), init)
                }
                LabCommand::Up {
                    nodes,
                    inventory,
                    image,
                    init,
                    kraft,
                    nisshi,
                    bastion,
                    secure,
                } => {
                    let kind = match (kraft, nisshi) {
                        (true, _) => lab::Kind::Kraft,
                        (_, true) => lab::Kind::Nisshi,
                        _ => lab::Kind::ZooKeeper,
                    };
                    let image = image.as_deref().unwrap_or(init.default_image());
                    lab::up(nodes, &inventory, image, kind, init, bastion, secure)
                }
                LabCommand::Down { inventory } => lab::down(&inventory),
            },
            FAILED,
        ),
    })
}

/// Routes this run's connections to service ports through the bastions that need it, and
/// loads a secured cluster's passwords and certificates for them (before any host is touched:
/// a missing password file ends the command here).
fn tunnels(inv: &Inventory, policy: HostKeyPolicy) {
    tunnels_renewing(inv, policy, Renew::AsNeeded);
}

/// [`tunnels`], with the certificates `certs rotate` renews (apply reports and writes them).
fn tunnels_renewing(inv: &Inventory, policy: HostKeyPolicy, renew: Renew) {
    crate::net::install(crate::net::Dialer::new(inv.tunnels(), policy));
    if let Err(e) = crate::security::prepare(inv, renew) {
        eprintln!("error: {e:#}\nnothing was changed");
        std::process::exit(BAD_INPUT.into());
    }
}

/// `certs rotate`: an apply that may change only key and trust files; with `--ca`, one stage
/// of the CA's rotation, recorded as done once its roll has finished.
fn rotate(inv: &Inventory, ca: bool, dry_run: bool, policy: HostKeyPolicy) -> u8 {
    let managed = match inv.security.as_ref().and_then(|s| s.tls.as_ref()) {
        None => {
            eprintln!("error: security.tls is not set: there are no certificates to rotate");
            return BAD_INPUT;
        }
        Some(crate::inventory::Tls::Managed { dir, .. }) => Some(dir.clone()),
        Some(crate::inventory::Tls::Provided { .. }) => None,
    };
    if ca && managed.is_none() {
        eprintln!(
            "error: --ca replaces the CA clusterctl manages, and this inventory's certificates \
             are provided: put the new files in place (CA bundle first), then run `clusterctl \
             certs rotate` to roll them in; nothing was changed"
        );
        return BAD_INPUT;
    }
    let renew = match (ca, &managed) {
        (true, _) => Renew::Ca,
        (false, Some(_)) => Renew::HostCertificates,
        // Provided files: roll in what changed on disk.
        (false, None) => Renew::AsNeeded,
    };
    let opts = ApplyOptions {
        dry_run,
        finalize_upgrade: false,
        prune_topics: false,
        prune_access: false,
        limit: None,
        policy,
        playbook: None,
        skip_preflight: vec![],
        delete_data: false,
        certificates_only: true,
    };
    tunnels_renewing(inv, policy, renew);
    let code = apply(inv, &opts);
    if code != OK || dry_run || !ca {
        return code;
    }
    let dir = managed.expect("--ca needs a managed CA");
    match crate::pki::finish(&dir) {
        Ok(Some(stage)) => {
            let next = match stage {
                crate::pki::Stage::Trust => format!(
                    "give every client the CA bundle (`clusterctl certs ca {f}`; it holds both \
                     CAs), then run `clusterctl certs rotate {f} --ca` for stage 2",
                    f = inv.file.display()
                ),
                crate::pki::Stage::Issue => format!(
                    "once no client trusts only the old CA, run `clusterctl certs rotate {} \
                     --ca` for stage 3 (drops it)",
                    inv.file.display()
                ),
                crate::pki::Stage::Drop => format!(
                    "the rotation is finished; the old CA is kept in {}",
                    dir.join("retired").display()
                ),
            };
            println!(
                "certs rotate: stage {} of 3 done ({}); next: {next}",
                stage.number(),
                stage.describe()
            );
            OK
        }
        Ok(None) => OK,
        Err(e) => {
            eprintln!(
                "error: the hosts have the stage's files, but recording that failed: {e:#}; re-run \
                 `clusterctl certs rotate --ca` (it finds nothing to change and records it)"
            );
            FAILED
        }
    }
}

fn policy(accept_new: bool) -> HostKeyPolicy {
    if accept_new {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Load and validate; print warnings; on errors print them all and return exit code 2.
fn load(path: Option<PathBuf>) -> Result<Inventory, u8> {
    let path = inventory::default_path(path);
    match inventory::load(&path) {
        Ok(inv) => {
            for w in &inv.warnings {
                eprintln!("{w}");
            }
            Ok(inv)
        }
        Err(e) => {
            eprintln!("{e}");
            let n = e
                .diags
                .iter()
                .filter(|d| d.severity == inventory::Severity::Error)
                .count();
            eprintln!("{n} error(s) in {}; nothing was changed", path.display());
            Err(BAD_INPUT)
        }
    }
}

fn report(r: anyhow::Result<()>, code: u8) -> u8 {
    match r {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            code
        }
    }
}

fn apply(inv: &Inventory, opts: &ApplyOptions) -> u8 {
    let rep = Reporter::new();
    match runtime().block_on(engine::apply(inv, opts, &rep)) {
        Ok(summary) if opts.dry_run => {
            let _ = summary;
            OK
        }
        Ok(summary) => {
            rep.clear();
            if summary.changed() {
                println!("apply: done; changes:");
                for (host, changes) in &summary.changes {
                    if changes.is_empty() {
                        println!("  {host}: no change");
                    }
                    for c in changes {
                        println!("  {host}: {c}");
                    }
                }
            } else {
                println!("apply: no change; every host was already as wanted, nothing restarted");
            }
            OK
        }
        Err(e) => {
            rep.clear();
            eprintln!("error: {e:#}");
            eprintln!(
                "apply stopped; fix the cause and re-run: finished steps are skipped as no-ops"
            );
            FAILED
        }
    }
}

fn rebalance(inventory: Option<PathBuf>, opts: crate::rebalance::Options) -> u8 {
    if let Err(e) = crate::rebalance::check_options(&opts) {
        eprintln!("error: {e}");
        return BAD_INPUT;
    }
    let inv = match load(inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    if let Some(h) = &opts.drain
        && !inv.hosts.iter().any(|x| &x.name == h)
    {
        eprintln!("error: no host {h:?} in {}", inv.file.display());
        return BAD_INPUT;
    }
    tunnels(&inv, HostKeyPolicy::Strict);
    let rep = Reporter::new();
    let r = runtime().block_on(crate::rebalance::run(&inv, &opts, &rep));
    rep.clear();
    report(r, FAILED)
}

fn restart(inv: &Inventory, targets: &[Target], limit: Option<&[String]>, opts: RollOptions) -> u8 {
    let rep = Reporter::new();
    let t = std::time::Instant::now();
    match runtime().block_on(ops::restart_rolling(inv, targets, limit, opts, &rep)) {
        Ok(rolls) => {
            rep.clear();
            let parts: f64 = rolls
                .iter()
                .map(|r| (r.stop + r.start + r.catch_up).as_secs_f64())
                .sum();
            for r in &rolls {
                println!("  {}: {}: {}", r.host, r.service, r.message);
            }
            println!(
                "restart: {} node(s) rolled in {:.1}s (stop + start + catch-up of each: {parts:.1}s)",
                rolls.len(),
                t.elapsed().as_secs_f64()
            );
            OK
        }
        Err(e) => {
            rep.clear();
            eprintln!("error: {e:#}");
            FAILED
        }
    }
}

/// One host's SSH settings as apply will use them, on one line.
fn ssh_settings(h: &crate::inventory::Host) -> String {
    let t = &h.ssh;
    let mut s = format!("{}: ssh {}@{}:{}", h.name, t.user, t.address, t.port);
    match &t.key {
        Some(k) => s.push_str(&format!(", key {}", k.display())),
        None => s.push_str(", key from ssh-agent"),
    }
    s.push_str(&format!(
        ", known_hosts {}{}, connect timeout {}s",
        t.known_hosts.display(),
        if t.accept_new { " (accept-new)" } else { "" },
        t.connect_timeout.as_secs()
    ));
    if let Some(j) = &t.jump {
        s.push_str(&format!(", via {}@{}:{}", j.user, j.address, j.port));
        s.push_str(if h.tunnel_checks {
            ", health checks tunnelled"
        } else {
            ", health checks direct"
        });
    }
    if !h.ssh_from_config.is_empty() {
        s.push_str(&format!(
            "; from ~/.ssh/config: {}",
            h.ssh_from_config.join(", ")
        ));
    }
    s
}

/// Offline rendering: ids from pins, then free ids by host name (a real apply lets ids
/// already on the hosts win).
fn render(inv: &Inventory, out: &Path, init: InitArg) -> anyhow::Result<()> {
    let none = vec![Default::default(); inv.hosts.len()];
    let ids: Ids = crate::engine::plan::resolve_ids(inv, &none)?;
    if inv.security.is_some() {
        // A preview never reads a password or a key: stand-ins show where they go.
        crate::security::install(crate::security::Material::placeholder(inv));
    }
    let r = Renderer::new(inv)?;
    let init = match init {
        InitArg::Sysv => InitSystem::SysV,
        InitArg::Systemd => InitSystem::Systemd,
    };
    // Offline: each product's logging library as its official release ships it.
    let logging = crate::engine::plan::logging_for(inv, &[]);
    let mut count = BTreeMap::new();
    for h in &inv.hosts {
        for f in r.host_files(inv, h, &ids, init, logging)? {
            let dest = out.join(&h.name).join(f.path.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap())?;
            std::fs::write(&dest, &f.content)?;
            *count.entry(h.name.clone()).or_insert(0) += 1;
        }
    }
    for (h, n) in count {
        println!("{}/{h}: {n} files", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, subcommand and argument says what it is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if a.get_help().is_none() && !["help", "version"].contains(&id) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in c.get_subcommands() {
                if s.get_name() == "help" {
                    continue;
                }
                let p = format!("{path} {}", s.get_name());
                if s.get_about().is_none() {
                    missing.push(format!("{p} (the command)"));
                }
                walk(s, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "clusterctl", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
        Cli::command().debug_assert();
    }
}
