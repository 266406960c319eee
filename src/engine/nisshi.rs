//! `apply` for the nisshi flavor: PostgreSQL on the storage host, then one binary, one
//! environment file and one service per broker. Brokers are stateless and know nothing of each
//! other, so every check asks each broker itself.

use super::change::{Change, Planned, When};
use super::facts::Query;
use super::{HostPlan, actions, gates, plan};
use crate::artifacts::{self, Artifact};
use crate::health::kafka::KafkaClient;
use crate::inventory::{Host, Inventory, NisshiConfig, Storage};
use crate::render::{ManagedFile, Renderer, ServiceDef, StorageAccess, services::nisshi_binary};
use crate::report::Reporter;
use crate::transport::{Session, quote};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where the storage host keeps the generated database password (root only).
const SECRET_FILE: &str = "/etc/clusterctl/nisshi-db.password";
const DB: &str = "nisshi";
const PACKAGE_TIMEOUT: Duration = Duration::from_secs(900);

/// What to ask a broker host: its managed files, the installed binary, the process, and its
/// address as an IP (the broker's listener needs one).
pub fn query<'a>(inv: &Inventory, host: &Host, services: &'a [ServiceDef]) -> Query<'a> {
    let (dir, link, _) = install_dir(inv);
    let broker = host.in_kafka;
    Query {
        paths: if broker {
            vec![
                "/etc/nisshi/nisshi.env".into(),
                "/etc/init.d/nisshi".into(),
                "/etc/systemd/system/nisshi.service".into(),
                crate::render::SUPERVISE.into(),
                crate::render::STORAGE_CA.into(),
            ]
        } else {
            vec![]
        },
        dirs: if broker {
            super::change::nisshi_dirs()
                .into_iter()
                .map(|(d, _, _)| d)
                .collect()
        } else {
            vec![]
        },
        install_dirs: if broker { vec![dir] } else { vec![] },
        links: if broker { vec![link] } else { vec![] },
        services: services.iter().collect(),
        retired: vec![],
        myid_file: None,
        meta_properties: vec![],
        server_properties: None,
        java_cmd: "java".into(),
        resolve: Some(host.address.clone()),
    }
}

/// (`/opt/nisshi-0.8.1`, `/opt/nisshi`, `nisshi-0.8.1`)
fn install_dir(inv: &Inventory) -> (String, String, String) {
    let bin = nisshi_binary(inv);
    let dir = bin.trim_end_matches("/nisshi").to_string();
    let name = dir.rsplit('/').next().unwrap_or_default().to_string();
    (dir, format!("{}/nisshi", inv.install_dir), name)
}

fn needs_install(inv: &Inventory, p: &HostPlan, a: &Artifact) -> bool {
    let (dir, link, name) = install_dir(inv);
    p.facts.installed.get(&dir) != Some(&a.sha512) || p.facts.links.get(&link) != Some(&name)
}

/// What the nisshi flavor adds to an apply's plan.
pub struct Prepared {
    binary: Artifact,
    /// The storage host's state as planned (`None`: sqlite or an external PostgreSQL).
    probe: Option<StorageProbe>,
}

/// The flavor's part of planning: resolve the binary, read the storage host (changing
/// nothing), render each broker's files for the store's current address, password and
/// certificate, and plan brokers and storage host.
pub async fn plan(
    inv: &Inventory,
    sessions: &BTreeMap<String, Session>,
    plans: &mut [HostPlan],
    in_limit: &dyn Fn(&str) -> bool,
    rep: &Reporter,
) -> Result<Prepared> {
    let n = inv.nisshi.as_ref().context("not a nisshi inventory")?;
    let binary = artifacts::nisshi::resolve(inv, n, rep).await?;
    let probe = storage_probe(inv, sessions).await?;
    if let (Some(host), Some(probe)) = (inv.storage_host(), &probe)
        && !in_limit(&host.name)
        && (probe.password.is_none() || probe.cert.is_none())
    {
        bail!(
            "{}: PostgreSQL is not set up yet; run apply without --limit (or with {} in it) first",
            host.name,
            host.name
        );
    }
    let prepared = Prepared { binary, probe };
    plan_brokers(inv, plans, in_limit, &prepared)?;
    if let (Some(host), Some(probe)) = (inv.storage_host(), &prepared.probe)
        && in_limit(&host.name)
    {
        let changes = storage_changes(probe, &host.address, plans)?;
        let p = plans.iter_mut().find(|p| p.host.name == host.name).unwrap();
        // The dry run reads the current content of what the probe found.
        p.facts.files.extend(probe.files.clone());
        p.changes = changes;
    }
    Ok(prepared)
}

/// Each broker's files and changes, for the store as `prepared` knows it.
fn plan_brokers(
    inv: &Inventory,
    plans: &mut [HostPlan],
    in_limit: &dyn Fn(&str) -> bool,
    prepared: &Prepared,
) -> Result<()> {
    let n = inv.nisshi.as_ref().context("not a nisshi inventory")?;
    render_files(inv, plans, &storage_access(inv, n, prepared.probe.as_ref()))?;
    let (dir, _, _) = install_dir(inv);
    for p in plans
        .iter_mut()
        .filter(|p| p.host.in_kafka && in_limit(&p.host.name))
    {
        let new = needs_install(inv, p, &prepared.binary);
        p.changes = super::change::plan_broker(p, new.then_some(dir.as_str()));
    }
    Ok(())
}

/// The storage host's changes as the probe shows them: package, service, password, certificate
/// (made by the storage step's scripts), and its config and hba files as diffs.
fn storage_changes(
    probe: &StorageProbe,
    address: &str,
    plans: &[HostPlan],
) -> Result<Vec<Planned>> {
    let now = |change| Planned {
        change,
        when: When::Now,
    };
    let mut v: Vec<Planned> = probe
        .pending(address)
        .into_iter()
        .map(|l| now(Change::Storage(l)))
        .collect();
    if let Some((conf, hba)) = storage_files(probe, plans)? {
        for f in [conf, hba] {
            if probe.files.get(&f.path) != Some(&HostPlan::fingerprint(&f)) {
                v.push(now(Change::File(f)));
            }
        }
    }
    Ok(v)
}

/// The storage step: PostgreSQL installed, configured, running, with the role and database.
/// When that made a new password or certificate (a first install, an address change, a
/// certificate near expiry), the brokers' files are planned again for it: no broker has been
/// touched yet.
pub async fn storage_step(
    inv: &Inventory,
    plans: &mut [HostPlan],
    sessions: &BTreeMap<String, Session>,
    prepared: &mut Prepared,
    in_limit: &dyn Fn(&str) -> bool,
    rep: &Reporter,
    step: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let n = inv.nisshi.as_ref().context("not a nisshi inventory")?;
    let host = match inv.storage_host() {
        Some(h) if n.storage == Storage::ManagedPostgres => h,
        _ => {
            rep.line(match n.storage {
                Storage::Sqlite => "  sqlite on the broker: nothing to do",
                _ => "  external PostgreSQL (nisshi.storage_url): nothing to do",
            });
            return Ok(vec![]);
        }
    };
    if !in_limit(&host.name) {
        rep.line(&format!("  {}: not in --limit, left as it is", host.name));
        return Ok(vec![]);
    }
    rep.host_busy(&host.name, step);
    let i = plans.iter().position(|p| p.host.name == host.name).unwrap();
    plans[i].take(|_| true);
    let planned = prepared
        .probe
        .clone()
        .context("the storage host was not read while planning")?;
    let (changes, probe) = ensure_postgres(&host.address, plans, &sessions[&host.name], planned)
        .await
        .with_context(|| format!("{}: step '{step}'", host.name))?;
    rep.host_done(
        &host.name,
        &if changes.is_empty() {
            "ok (no change)".to_string()
        } else {
            changes.join("; ")
        },
    );
    let before = prepared
        .probe
        .as_ref()
        .map(|p| (p.password.clone(), p.cert.clone()));
    let after = Some((probe.password.clone(), probe.cert.clone()));
    prepared.probe = Some(probe);
    if before != after {
        plan_brokers(inv, plans, in_limit, prepared)?;
    }
    Ok(vec![(host.name.clone(), changes)])
}

/// The install step: the plan's `Binary` change.
pub async fn install_step(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    prepared: &Prepared,
    changes: Vec<Change>,
) -> Result<Vec<String>> {
    if changes.is_empty() {
        return Ok(vec![]);
    }
    install(inv, p, s, &prepared.binary).await
}

/// How the brokers reach their store. The managed PostgreSQL requires TLS with its own
/// certificate, which the brokers trust (and only it) through SSL_CERT_FILE: the broker's
/// rustls verifies the server even with sslmode=require.
fn storage_access(inv: &Inventory, n: &NisshiConfig, pg: Option<&StorageProbe>) -> StorageAccess {
    match (&n.storage, pg) {
        (Storage::Sqlite, _) => StorageAccess {
            url: "sqlite://nisshi.db".into(),
            ca_pem: None,
        },
        (Storage::ExternalPostgres(url), _) => StorageAccess {
            url: url.clone(),
            ca_pem: None,
        },
        (Storage::ManagedPostgres, pg) => {
            let host = inv.storage_host().map_or("", |h| h.address.as_str());
            let port = pg.map_or(5432, |p| p.port);
            // A first dry run has no password yet: the URL is masked in its diff anyway.
            let password = pg
                .and_then(|p| p.password.as_deref())
                .unwrap_or("not-yet-generated");
            StorageAccess {
                url: format!("postgres://{DB}:{password}@{host}:{port}/{DB}?sslmode=require"),
                ca_pem: pg.and_then(|p| p.cert.clone()),
            }
        }
    }
}

fn render_files(inv: &Inventory, plans: &mut [HostPlan], access: &StorageAccess) -> Result<()> {
    let r = Renderer::new(inv)?;
    for p in plans.iter_mut().filter(|p| p.host.in_kafka) {
        let ip = listen_ip(p)?;
        p.files = r.nisshi_files(inv, &p.host, &ip, access, p.init)?;
    }
    Ok(())
}

/// The broker binds its listener to an IP literal only.
fn listen_ip(p: &HostPlan) -> Result<String> {
    if p.host.address.parse::<std::net::IpAddr>().is_ok() {
        return Ok(p.host.address.clone());
    }
    p.facts.ip.clone().with_context(|| {
        format!(
            "{}: address {} does not resolve to an IPv4 address on the host (the nisshi listener needs an IP)",
            p.host.name, p.host.address
        )
    })
}

/// Push the binary (into a fresh versioned directory), then swap the stable symlink.
async fn install(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    a: &Artifact,
) -> Result<Vec<String>> {
    if !needs_install(inv, p, a) {
        return Ok(vec![]);
    }
    let (dir, link, name) = install_dir(inv);
    let tmp = format!("{}/.clusterctl-nisshi.new", inv.install_dir);
    s.upload(&a.path, &tmp, 0o755).await?;
    // Run it on the host before it replaces anything: a binary that cannot start there (it
    // needs a newer glibc than the host's) or is another version fails here, and the running
    // broker and its binary stay as they were.
    let want = inv.nisshi.as_ref().map_or("", |n| n.version.as_str());
    let out = s.exec(&format!("{} --version", quote(&tmp))).await?;
    let reported = out.stdout.trim();
    let problem = if out.status != 0 {
        Some(format!(
            "`nisshi --version` failed on this host (exit {}): {}",
            out.status,
            out.stderr.trim()
        ))
    } else if reported.split_whitespace().nth(1) != Some(want) {
        Some(format!(
            "the nisshi binary reports `{reported}`, but nisshi.version is {want}: \
             give the binary of that version, or set nisshi.version to what it is"
        ))
    } else {
        None
    };
    if let Some(problem) = problem {
        s.exec(&format!("rm -f {}", quote(&tmp))).await?;
        bail!(problem);
    }
    let tmp_link = format!("{link}.clusterctl-new");
    s.exec_ok(&format!(
        "set -e\nmkdir -p {dir}\nmv -f {tmp} {dir}/nisshi\necho {sha} > {dir}/.clusterctl-sha512\n\
         ln -sfn {name} {tl} && mv -Tf {tl} {link}\n",
        dir = quote(&dir),
        tmp = quote(&tmp),
        sha = quote(&a.sha512),
        name = quote(&name),
        tl = quote(&tmp_link),
        link = quote(&link),
    ))
    .await?;
    p.facts.installed.insert(dir.clone(), a.sha512.clone());
    p.facts.links.insert(link.clone(), name.clone());
    Ok(vec![format!("installed {dir}/nisshi; {link} -> {name}")])
}

/// Through each broker in turn: produce one record, then read it back through the next broker
/// (they share only the storage, so this proves the storage is shared and each broker serves).
pub async fn smoke(inv: &Inventory, timeout: Duration) -> Result<String> {
    let addrs = gates::bootstrap(inv);
    let deadline = Instant::now() + timeout;
    let call = Duration::from_secs(10);
    let topic = gates::SMOKE_TOPIC;
    let started = Instant::now();
    retry(deadline, || async {
        let mut c = KafkaClient::connect(&addrs[0], call).await?;
        c.create_topic(topic, 1, 1, &[]).await
    })
    .await
    .context("smoke: create topic")?;
    for (i, from) in addrs.iter().enumerate() {
        let to = &addrs[(i + 1) % addrs.len()];
        let value = format!("clusterctl-smoke via {from} pid={}", std::process::id());
        let offset = retry(deadline, || async {
            let mut c = KafkaClient::connect(from, call).await?;
            c.produce(topic, 0, Some(b"clusterctl-smoke"), value.as_bytes())
                .await
        })
        .await
        .with_context(|| format!("smoke: produce through {from}"))?;
        retry(deadline, || async {
            let mut c = KafkaClient::connect(to, call).await?;
            let records = c.fetch_all(topic, 0, offset, call).await?;
            match records.iter().find(|(o, _, _)| *o == offset) {
                Some((_, _, v)) if v.as_deref() == Some(value.as_bytes()) => Ok(()),
                Some(_) => bail!("offset {offset} holds another record"),
                None => bail!("offset {offset} not returned"),
            }
        })
        .await
        .with_context(|| format!("smoke: read back through {to} what {from} took"))?;
    }
    Ok(format!(
        "smoke: a record produced through each of {} broker(s) was read back through another ({:.1}s)",
        addrs.len(),
        started.elapsed().as_secs_f64()
    ))
}

async fn retry<T, F, Fut>(deadline: Instant, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() + delay >= deadline => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL on the storage host

/// What the storage host has now (read-only).
#[derive(Clone)]
struct StorageProbe {
    installed: bool,
    /// `15 main` and whether it runs.
    cluster: Option<(String, String, bool)>,
    port: u16,
    password: Option<String>,
    /// The server certificate the brokers trust (PEM).
    cert: Option<String>,
    /// Fingerprints of the managed config files, as the facts script reports them.
    files: BTreeMap<String, String>,
}

impl StorageProbe {
    /// What the storage step's scripts will make, as plan lines.
    fn pending(&self, address: &str) -> Vec<String> {
        let mut v = Vec::new();
        if !self.installed {
            v.push("install package postgresql".to_string());
        }
        match &self.cluster {
            Some((_, _, true)) => {}
            _ => v.push("start PostgreSQL".into()),
        }
        if self.password.is_none() {
            v.push(format!(
                "generate the database password ({SECRET_FILE}); create role and database {DB}"
            ));
        }
        if self.cert.is_none() {
            v.push(format!(
                "generate a TLS certificate for {address} ({CERT_DIR}/server.crt)"
            ));
        }
        v
    }
}

/// The server certificate and key clusterctl makes for the managed PostgreSQL.
const CERT_DIR: &str = "/etc/postgresql/clusterctl";

const PROBE: &str = "command -v pg_lsclusters >/dev/null 2>&1 && echo installed\n\
    command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h | awk 'NR==1 {print \"cluster\", $1, $2, $3, $4}'\n\
    [ -s /etc/clusterctl/nisshi-db.password ] && echo \"secret $(cat /etc/clusterctl/nisshi-db.password)\"\n\
    [ -s /etc/postgresql/clusterctl/server.crt ] && sed 's/^/cert /' /etc/postgresql/clusterctl/server.crt\n\
    for f in /etc/postgresql/*/*/conf.d/clusterctl.conf /etc/postgresql/*/*/clusterctl_hba.conf; do \
      [ -f \"$f\" ] && printf 'file %s %s %s\\n' \"$f\" \"$(sha256sum < \"$f\" | cut -d' ' -f1)\" \"$(stat -c '%a:%U:%G' \"$f\")\"; done\n\
    true\n";

fn parse_probe(out: &str) -> StorageProbe {
    let mut p = StorageProbe {
        installed: false,
        cluster: None,
        port: 5432,
        password: None,
        cert: None,
        files: BTreeMap::new(),
    };
    for line in out.lines() {
        if let Some(pem) = line.strip_prefix("cert ") {
            let c = p.cert.get_or_insert_with(String::new);
            c.push_str(pem);
            c.push('\n');
            continue;
        }
        let mut f = line.split_whitespace();
        match f.next() {
            Some("installed") => p.installed = true,
            Some("cluster") => {
                let (v, name, port, status) = (f.next(), f.next(), f.next(), f.next());
                if let (Some(v), Some(name)) = (v, name) {
                    p.cluster = Some((v.into(), name.into(), status == Some("online")));
                }
                p.port = port.and_then(|x| x.parse().ok()).unwrap_or(5432);
            }
            Some("secret") => p.password = f.next().map(str::to_string),
            Some("file") => {
                if let (Some(path), Some(sha), Some(meta)) = (f.next(), f.next(), f.next()) {
                    p.files.insert(path.into(), format!("{sha} {meta}"));
                }
            }
            _ => {}
        }
    }
    p
}

async fn storage_probe(
    inv: &Inventory,
    sessions: &BTreeMap<String, Session>,
) -> Result<Option<StorageProbe>> {
    let n = inv.nisshi.as_ref().unwrap();
    match inv.storage_host() {
        Some(h) if n.storage == Storage::ManagedPostgres => {
            let out = sessions[&h.name].exec_ok(PROBE).await?;
            Ok(Some(parse_probe(&out.stdout)))
        }
        _ => Ok(None),
    }
}

/// Install, configure and start PostgreSQL, and make the role and database the brokers use.
/// Returns the changes, the port and the password (generated once, kept on the host).
/// `probe`: what planning read from the host (this run is the only one changing it).
async fn ensure_postgres(
    address: &str,
    plans: &[HostPlan],
    s: &Session,
    mut probe: StorageProbe,
) -> Result<(Vec<String>, StorageProbe)> {
    let mut changes = Vec::new();
    if !probe.installed {
        s.exec_ok_timeout(
            "set -e\ncommand -v apt-get >/dev/null || { echo 'no apt-get: install PostgreSQL yourself and set nisshi.storage_url' >&2; exit 1; }\n\
             export DEBIAN_FRONTEND=noninteractive\napt-get update -qq\n\
             apt-get install -y -qq --no-install-recommends postgresql >/dev/null\n",
            PACKAGE_TIMEOUT,
        )
        .await?;
        changes.push("installed package postgresql".to_string());
        probe = parse_probe(&s.exec_ok(PROBE).await?.stdout);
    }
    let (version, cluster, online) = match probe.cluster.clone() {
        Some(c) => c,
        None => bail!(
            "PostgreSQL is installed but has no cluster (pg_lsclusters is empty); create one with pg_createcluster"
        ),
    };
    let cert_changed = {
        let out = s
            .exec_ok(&cert_script(address))
            .await
            .context("making the TLS certificate (openssl)")?;
        out.stdout.trim() == "changed"
    };
    if cert_changed {
        changes.push(format!(
            "generated a TLS certificate for {address} ({CERT_DIR}/server.crt)"
        ));
        probe.cert = parse_probe(&s.exec_ok(PROBE).await?.stdout).cert;
    }
    let (conf, hba) = storage_files(&probe, plans)?.context("no PostgreSQL cluster")?;
    let conf_changed = write_if_changed(s, &conf).await?;
    let hba_changed = write_if_changed(s, &hba).await?;
    for (f, c) in [(&conf, conf_changed), (&hba, hba_changed)] {
        if c {
            changes.push(format!("wrote {}", f.path));
        }
    }
    let ctl = format!("pg_ctlcluster {version} {cluster}");
    if !online {
        s.exec_ok(&format!("{ctl} start")).await?;
        changes.push(format!("started PostgreSQL {version}/{cluster}"));
    } else if conf_changed {
        // listen_addresses, max_connections and hba_file take effect only on a restart.
        s.exec_ok(&format!("{ctl} restart")).await?;
        changes.push(format!("restarted PostgreSQL {version}/{cluster}"));
    } else if hba_changed || cert_changed {
        s.exec_ok(&format!("{ctl} reload")).await?;
        changes.push(format!("reloaded PostgreSQL {version}/{cluster}"));
    }
    let (password, new) = match probe.password {
        Some(p) => (p, false),
        None => {
            let p = plan::base64url(&plan::random_bytes::<24>()?);
            let secret = ManagedFile {
                path: SECRET_FILE.into(),
                content: p.clone(),
                mode: 0o600,
                owner: "root".into(),
                group: "root".into(),
                restarts: None,
                secret: true,
            };
            write_if_changed(s, &secret).await?;
            changes.push(format!("generated the database password ({SECRET_FILE})"));
            (p, true)
        }
    };
    let out = s
        .exec_with_input_ok(&role_script(new), password.as_bytes())
        .await
        .context("creating the role and database (psql)")?;
    changes.extend(out.stdout.lines().map(str::to_string));
    Ok((
        changes,
        StorageProbe {
            password: Some(password),
            ..probe
        },
    ))
}

/// The managed PostgreSQL's config and hba files, for the cluster the probe found (`None`
/// before PostgreSQL is installed).
fn storage_files(
    probe: &StorageProbe,
    plans: &[HostPlan],
) -> Result<Option<(ManagedFile, ManagedFile)>> {
    let Some((version, cluster, _)) = &probe.cluster else {
        return Ok(None);
    };
    let conf_dir = format!("/etc/postgresql/{version}/{cluster}");
    let hba_path = format!("{conf_dir}/clusterctl_hba.conf");
    let brokers: Vec<String> = plans
        .iter()
        .filter(|p| p.host.in_kafka)
        .map(listen_ip)
        .collect::<Result<_>>()?;
    // Each broker pools up to 16 connections; keep room for admin sessions.
    let max_connections = (16 * brokers.len() + 20).max(100);
    let conf = ManagedFile {
        path: format!("{conf_dir}/conf.d/clusterctl.conf"),
        content: format!(
            "# Managed by clusterctl: PostgreSQL for the nisshi brokers.\n\
             listen_addresses = '*'\nmax_connections = {max_connections}\nhba_file = '{hba_path}'\n\
             ssl = on\nssl_cert_file = '{CERT_DIR}/server.crt'\nssl_key_file = '{CERT_DIR}/server.key'\n"
        ),
        mode: 0o644,
        owner: "postgres".into(),
        group: "postgres".into(),
        restarts: None,
        secret: false,
    };
    let mut hba = String::from(
        "# Managed by clusterctl: local administration, and the nisshi brokers by address, over TLS.\n\
         local all postgres peer\nlocal all all peer\n",
    );
    for ip in &brokers {
        hba.push_str(&format!("hostssl {DB} {DB} {ip}/32 scram-sha-256\n"));
    }
    let hba = ManagedFile {
        path: hba_path,
        content: hba,
        mode: 0o640,
        owner: "postgres".into(),
        group: "postgres".into(),
        restarts: None,
        secret: false,
    };
    Ok(Some((conf, hba)))
}

/// A self-signed server certificate for `address` (an end-entity certificate: the brokers
/// trust exactly it), made once, and again only when it no longer names the address or
/// expires within 30 days. Prints `changed` when it made one.
fn cert_script(address: &str) -> String {
    let (check, san) = if address.parse::<std::net::IpAddr>().is_ok() {
        ("-checkip", format!("IP:{address}"))
    } else {
        ("-checkhost", format!("DNS:{address}"))
    };
    format!(
        "set -e\ncommand -v openssl >/dev/null || {{ echo 'openssl not found (PostgreSQL needs it for TLS)' >&2; exit 1; }}\n\
         d={d}\nmkdir -p $d\n\
         if [ -s $d/server.crt ] && [ -s $d/server.key ] \\\n\
            && openssl x509 -in $d/server.crt -noout -checkend 2592000 >/dev/null \\\n\
            && openssl x509 -in $d/server.crt -noout {check} {a} | grep -q 'does match'; then exit 0; fi\n\
         umask 077\n\
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \\\n\
           -subj {subj} -addext {san} -addext basicConstraints=critical,CA:FALSE \\\n\
           -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=serverAuth \\\n\
           -keyout $d/server.key.new -out $d/server.crt.new 2>/dev/null\n\
         chown postgres:postgres $d/server.key.new $d/server.crt.new\n\
         chmod 600 $d/server.key.new\nchmod 644 $d/server.crt.new\n\
         mv -f $d/server.key.new $d/server.key\nmv -f $d/server.crt.new $d/server.crt\necho changed\n",
        d = CERT_DIR,
        a = quote(address),
        subj = quote(&format!("/CN={address}")),
        san = quote(&format!("subjectAltName={san}")),
    )
}

/// Role and database, idempotently. The password arrives on stdin (never on a command line)
/// and psql's errors are masked before they can echo it. `set_password`: the password was
/// just generated, so an existing role gets it too.
fn role_script(set_password: bool) -> String {
    format!(
        "set -e\ncd /\npw=$(cat)\n\
         q() {{ runuser -u postgres -- psql -XtAq -v ON_ERROR_STOP=1 -d postgres \"$@\"; }}\n\
         role=$(q -c \"SELECT 1 FROM pg_roles WHERE rolname='{DB}'\")\n\
         if [ \"$role\" != 1 ] || [ {set} = 1 ]; then\n\
           if [ \"$role\" = 1 ]; then verb=ALTER; done_msg='set the password of role {DB}'; \
           else verb=CREATE; done_msg='created role {DB}'; fi\n\
           err=$(mktemp)\n\
           if ! printf \"%s ROLE {DB} LOGIN PASSWORD '%s'\" \"$verb\" \"$pw\" | q 2>\"$err\"; then\n\
             sed \"s/PASSWORD '[^']*'/PASSWORD '********'/g\" \"$err\" >&2; rm -f \"$err\"; exit 1\n\
           fi\n\
           rm -f \"$err\"; echo \"$done_msg\"\n\
         fi\n\
         db=$(q -c \"SELECT 1 FROM pg_database WHERE datname='{DB}'\")\n\
         if [ \"$db\" != 1 ]; then runuser -u postgres -- createdb -O {DB} {DB}; echo 'created database {DB}'; fi\n",
        set = if set_password { 1 } else { 0 },
    )
}

/// Write `f` only if its content, mode or owner differ; returns whether it wrote.
async fn write_if_changed(s: &Session, f: &ManagedFile) -> Result<bool> {
    let out = s
        .exec_with_input_ok(&actions::write_script(f, true), f.content.as_bytes())
        .await
        .with_context(|| format!("writing {}", f.path))?;
    Ok(out.stdout.trim() == "changed")
}

/// For status: is the storage host's PostgreSQL running?
pub async fn storage_online(s: &Session) -> Result<bool> {
    let p = parse_probe(&s.exec_ok(PROBE).await?.stdout);
    Ok(matches!(p.cluster, Some((_, _, true))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_parses() {
        let p = parse_probe(
            "installed\ncluster 15 main 5433 online\nsecret abc\ncert -----BEGIN CERTIFICATE-----\ncert MIIB\n",
        );
        assert_eq!(
            p.cert.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\nMIIB\n")
        );
        assert!(p.installed);
        assert_eq!(p.cluster, Some(("15".into(), "main".into(), true)));
        assert_eq!((p.port, p.password.as_deref()), (5433, Some("abc")));
        let p = parse_probe("installed\ncluster 15 main 5432 down\n");
        assert_eq!(p.cluster, Some(("15".into(), "main".into(), false)));
        assert!(p.password.is_none());
        assert!(!parse_probe("").installed);
        assert_eq!(
            parse_probe("").pending("10.0.0.9").len(),
            4,
            "install, start, password, certificate"
        );
    }

    /// The real script under a real `sh` with a fake `runuser`/`psql` that records its input:
    /// the password reaches psql on stdin only, and psql's error output is masked.
    #[test]
    fn role_script_never_leaks_the_password() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = d.path().join("log");
        // runuser -u postgres -- psql ARGS: answers "no role/db" to queries, and fails a
        // CREATE ROLE fed on stdin, echoing it on stderr as psql does for a syntax error.
        std::fs::write(
            bin.join("runuser"),
            format!(
                "#!/bin/sh\nshift 3\necho \"ARGS $*\" >> {log}\n\
                 case \"$*\" in *-c*) exit 0;; esac\n\
                 if [ \"$1\" = createdb ]; then exit 0; fi\n\
                 sql=$(cat); echo \"STDIN $sql\" >> {log}\n\
                 echo \"ERROR: boom LINE 1: $sql\" >&2; exit 1\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", bin.join("runuser").to_str().unwrap()])
            .status()
            .unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(role_script(true))
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"s3cretPW").unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("PASSWORD '********'"), "{stderr}");
        assert!(!stderr.contains("s3cretPW"), "{stderr}");
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(
            log.contains("STDIN CREATE ROLE nisshi LOGIN PASSWORD 's3cretPW'"),
            "{log}"
        );
        assert!(
            log.lines()
                .filter(|l| l.starts_with("ARGS"))
                .all(|l| !l.contains("s3cretPW")),
            "{log}"
        );
    }

    #[test]
    fn install_dir_is_versioned() {
        let inv = crate::inventory::parse(
            std::path::Path::new("/x/inv.yaml"),
            "flavor: nisshi\nhosts:\n  b1: {address: 10.0.0.1}\n  pg: {address: 10.0.0.9}\n\
             groups:\n  kafka: [b1]\n  storage: [pg]\nnisshi:\n  version: 0.8.1\n",
        )
        .unwrap();
        assert_eq!(
            install_dir(&inv),
            (
                "/opt/nisshi-0.8.1".into(),
                "/opt/nisshi".into(),
                "nisshi-0.8.1".into()
            )
        );
        let n = inv.nisshi.as_ref().unwrap();
        let probe = parse_probe("cluster 15 main 5433 online\nsecret pw\ncert PEM\n");
        let a = storage_access(&inv, n, Some(&probe));
        assert_eq!(
            a.url,
            "postgres://nisshi:pw@10.0.0.9:5433/nisshi?sslmode=require"
        );
        assert_eq!(a.ca_pem.as_deref(), Some("PEM\n"));
    }
}
