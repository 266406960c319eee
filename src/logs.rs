//! `clusterctl logs`: a service's log read over SSH, the last lines or followed.

use crate::engine::plan::host_services;
use crate::inventory::Inventory;
use crate::render::{InitSystem, Service, ServiceDef};
use crate::transport::{HostKeyPolicy, Session, quote};
use anyhow::{Result, bail};

/// Where a service's log is read from on one host.
#[derive(Debug, PartialEq)]
pub enum Source {
    /// The file its logging library writes (ZooKeeper's and Kafka's).
    File(String),
    /// A service that only writes stdout: under systemd its journal, else the init script's
    /// capture file.
    Journal(&'static str),
}

/// The command printing the last `lines` lines of `src`, following it with `follow`.
pub fn command(src: &Source, lines: u32, follow: bool) -> String {
    match src {
        // -F: a rotated log is followed into its new file.
        Source::File(f) => format!(
            "tail -n {lines}{} -- {}",
            if follow { " -F" } else { "" },
            quote(f)
        ),
        Source::Journal(unit) => format!(
            "journalctl --no-pager -u {unit} -n {lines}{}",
            if follow { " -f" } else { "" }
        ),
    }
}

/// Which log to read for `svc`: refuses a host the inventory does not give that service.
pub fn source(
    inv: &Inventory,
    host: &str,
    svc: Service,
    init: Option<InitSystem>,
) -> Result<Source> {
    let Some(h) = inv.host(host) else {
        bail!(
            "no host {host} in {}: hosts are {}",
            inv.file.display(),
            inv.hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if !host_services(inv, h).contains(&svc) {
        bail!("host {host} does not run {svc} in this inventory");
    }
    let def = ServiceDef::new(svc, inv, h);
    Ok(match (&def.log_file, init) {
        (Some(f), _) => Source::File(f.clone()),
        (None, Some(InitSystem::Systemd)) => Source::Journal(def.name),
        (None, _) => Source::File(format!("{}/{}.out", def.log_dir, def.name)),
    })
}

/// Prints the log to stdout; returns the remote command's exit status.
pub async fn run(
    inv: &Inventory,
    host: &str,
    svc: Service,
    lines: u32,
    follow: bool,
) -> Result<u32> {
    // Checked before connecting: a typo costs no round trip.
    source(inv, host, svc, None)?;
    let h = inv.host(host).unwrap();
    let s = Session::connect(&h.ssh, HostKeyPolicy::Strict).await?;
    let init = s
        .exec("[ -d /run/systemd/system ] && echo systemd")
        .await?
        .stdout
        .contains("systemd")
        .then_some(InitSystem::Systemd);
    let src = source(inv, host, svc, init)?;
    let status = s
        .stream(&command(&src, lines, follow), &mut std::io::stdout())
        .await?;
    s.close().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(text: &str) -> Inventory {
        crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap()
    }

    #[test]
    fn each_service_reads_its_own_log() {
        let i = inv(
            "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n\
             groups:\n  zookeeper: [a]\n  kafka: [a, b]\n",
        );
        assert_eq!(
            source(&i, "a", Service::ZooKeeper, None).unwrap(),
            Source::File("/var/log/zookeeper/zookeeper.log".into())
        );
        assert_eq!(
            command(&source(&i, "b", Service::Kafka, None).unwrap(), 50, true),
            "tail -n 50 -F -- /var/log/kafka/server.log"
        );
        let e = source(&i, "b", Service::ZooKeeper, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "host b does not run zookeeper in this inventory"
        );
        let e = source(&i, "c", Service::Kafka, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no host c in i.yaml: hosts are a, b"),
            "{e}"
        );
    }

    #[test]
    fn nisshi_logs_to_stdout() {
        let i = inv("flavor: nisshi\nhosts:\n  b: { address: 10.0.0.1 }\n\
             groups:\n  kafka: [b]\nnisshi:\n  version: 0.8.1\n  storage: sqlite\n");
        let sysv = source(&i, "b", Service::Nisshi, Some(InitSystem::SysV)).unwrap();
        assert_eq!(
            command(&sysv, 10, false),
            "tail -n 10 -- /var/log/nisshi/nisshi.out"
        );
        let systemd = source(&i, "b", Service::Nisshi, Some(InitSystem::Systemd)).unwrap();
        assert_eq!(
            command(&systemd, 10, true),
            "journalctl --no-pager -u nisshi -n 10 -f"
        );
    }
}
