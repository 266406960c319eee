//! `lab up` / `lab down`: N SSH-reachable containers on their own network, recorded in the
//! state dir beside the inventory so `down` removes exactly what `up` made.

use super::Init;
use super::engine::{self, Engine};
use super::render::{self, Node};
use super::state::{self, BastionState, HostState, State};
use anyhow::{Context, Result, bail, ensure};
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Bound on waiting for every node's sshd (it starts in well under a second here).
const SSH_WAIT: Duration = Duration::from_secs(30);
const MAX_NODES: usize = 20;
/// Marks resources as made by `lab up` (for a person looking at `podman ps`; removal is by name).
const LABEL: &str = "clusterctl.lab";

pub fn up(
    nodes: usize,
    inventory: &Path,
    image: &str,
    kind: render::Kind,
    init: Init,
    bastion: bool,
    secure: bool,
) -> Result<()> {
    ensure!(
        !secure || kind != render::Kind::Nisshi,
        "lab up --secure: clusterctl does not secure the nisshi flavor yet"
    );
    ensure!(
        (1..=MAX_NODES).contains(&nodes),
        "lab up: {nodes} nodes: expected 1 to {MAX_NODES}"
    );
    ensure!(
        kind != render::Kind::Nisshi || nodes >= 2,
        "lab up --nisshi: one PostgreSQL node plus at least one broker: use --nodes 2 or more"
    );
    let started = Instant::now();
    let inventory = state::absolute(inventory)?;
    let dir = state::state_dir(&inventory)?;
    let stale = check_may_write(&inventory, &dir)?;
    let engine = Engine::detect()?;
    // docker's internal networks keep a gateway on this machine: the nodes would stay reachable.
    ensure!(
        !bastion || engine == Engine::Podman,
        "lab up --bastion needs podman"
    );
    // docker would need a privileged container and host cgroup mounts for systemd as PID 1.
    ensure!(
        init == Init::Sysv || engine == Engine::Podman,
        "lab up --init systemd needs podman (its --systemd=always), not {}",
        engine.program()
    );
    if !engine.image_exists(image)? {
        let flag = match init {
            Init::Sysv => "",
            Init::Systemd => " --init systemd",
        };
        bail!("image {image} not found: build it first with `clusterctl lab image{flag}`");
    }
    if let Some(old) = stale {
        eprintln!("lab up: clearing the stale record in {}", dir.display());
        teardown(&old, &dir)?;
    }

    let prefix = render::prefix(
        &inventory.file_stem().unwrap_or_default().to_string_lossy(),
        random(),
    );
    let mut containers: Vec<String> = (1..=nodes)
        .map(|k| render::container_name(&prefix, k))
        .collect();
    if bastion {
        containers.push(render::bastion_container_name(&prefix));
    }
    let mut st = State {
        runtime: engine,
        network: render::network_name(&prefix),
        containers,
        bastion: bastion.then(|| BastionState {
            edge_network: render::edge_network_name(&prefix),
            blocked_subnet: None,
        }),
        prefix,
        image: image.to_string(),
        init,
        hosts: vec![],
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Recorded before anything exists, so even a crashed `up` can be undone by `down`.
    st.save(&dir)?;
    if let Err(e) = create(&mut st, &dir, &inventory, kind, secure) {
        eprintln!("lab up: failed; removing what it created");
        if let Err(cleanup) = teardown(&st, &dir) {
            eprintln!("lab up: cleanup failed too: {cleanup:#}");
        }
        return Err(e);
    }
    eprintln!(
        "lab up: {nodes} nodes up in {} s; inventory {}",
        started.elapsed().as_secs(),
        inventory.display()
    );
    Ok(())
}

pub fn down(inventory: &Path) -> Result<()> {
    let inventory = state::absolute(inventory)?;
    let dir = state::state_dir(&inventory)?;
    match State::load(&dir)? {
        Some(st) => teardown(&st, &dir),
        None => {
            eprintln!(
                "lab down: no lab recorded in {}: nothing to remove",
                dir.display()
            );
            Ok(())
        }
    }
}

/// Refuses to replace a running lab or an inventory `up` did not write. Returns the state of a
/// lab whose containers are gone (to be cleared before starting afresh).
fn check_may_write(inventory: &Path, dir: &Path) -> Result<Option<State>> {
    match std::fs::read_to_string(inventory) {
        Ok(text) if text.lines().next() != Some(render::INVENTORY_HEADER) => bail!(
            "{} exists and was not written by `clusterctl lab up`; refusing to overwrite it",
            inventory.display()
        ),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", inventory.display())),
    }
    let Some(st) = State::load(dir)? else {
        return Ok(None);
    };
    for c in &st.containers {
        if st.runtime.container_exists(c)? {
            bail!(
                "a lab is already up for {} (container {c}); run `clusterctl lab down {}` first",
                inventory.display(),
                inventory.display()
            );
        }
    }
    Ok(Some(st))
}

fn create(
    st: &mut State,
    dir: &Path,
    inventory: &Path,
    kind: render::Kind,
    secure: bool,
) -> Result<()> {
    let engine = st.runtime;
    let key = dir.join(state::KEY_FILE);
    let pub_key = generate_client_key(&key, &st.prefix)?;

    // Behind a bastion the nodes' network is internal: no gateway on this machine.
    let internal: &[&str] = if st.bastion.is_some() {
        &["--internal"]
    } else {
        &[]
    };
    create_network(engine, &st.prefix, &st.network, internal)?;
    if let Some(b) = st.bastion.clone() {
        block_subnet(st, dir)?;
        create_network(engine, &st.prefix, &b.edge_network, &[])?;
    }

    let flags = engine.start_flags()?;
    let count = st.containers.len();
    // systemd is PID 1 itself (podman mounts what it needs); otherwise a reaper is, for the
    // services' orphans.
    let pid1 = match st.init {
        Init::Sysv => "--init",
        Init::Systemd => "--systemd=always",
    };
    for (k, container) in st.containers.iter().enumerate() {
        let is_bastion = st.bastion.is_some() && k + 1 == count;
        let host = if is_bastion {
            render::BASTION.to_string()
        } else {
            render::host_name(k + 1)
        };
        let mut run = engine.cmd();
        run.args(["run", "-d", pid1, "--name", container, "--hostname", &host]);
        match &st.bastion {
            // On both networks; the internal one has no DNS, so no alias either.
            Some(b) if is_bastion => {
                run.args(["--network", &b.edge_network, "--network", &st.network])
            }
            _ => run.args(["--network", &st.network, "--network-alias", &host]),
        };
        run.arg("--label")
            .arg(format!("{LABEL}={}", st.prefix))
            .args(&flags)
            .arg(&st.image);
        eprintln!("lab up: container {container} ({host})");
        engine::run(&mut run)?;
    }

    let deadline = Instant::now() + SSH_WAIT;
    let mut known_hosts = String::new();
    // The bastion first: the nodes' sshd is probed from it.
    let mut order: Vec<usize> = (0..count).collect();
    if st.bastion.is_some() {
        order.rotate_right(1);
    }
    let bastion_container = st
        .bastion
        .as_ref()
        .map(|_| st.containers[count - 1].clone());
    let mut hosts = Vec::new();
    for k in order {
        let container = &st.containers[k];
        let is_bastion = bastion_container.as_ref() == Some(container);
        let (name, network, via) = match &st.bastion {
            Some(b) if is_bastion => (render::BASTION.to_string(), b.edge_network.as_str(), None),
            _ => (
                render::host_name(k + 1),
                st.network.as_str(),
                bastion_container.as_deref(),
            ),
        };
        authorize(engine, container, &pub_key)?;
        let address = address(engine, container, network)?;
        let host_key = wait_for_sshd(engine, container, &address, via, deadline)?;
        if st.init == Init::Systemd {
            check_systemd(engine, container, &st.image)?;
        }
        known_hosts.push_str(&render::known_hosts_line(&address, &host_key)?);
        known_hosts.push('\n');
        hosts.push(HostState {
            name,
            container: container.clone(),
            address,
        });
    }
    st.hosts = hosts;
    let known_hosts_path = dir.join(state::KNOWN_HOSTS_FILE);
    state::write_atomic(&known_hosts_path, known_hosts.as_bytes())?;
    st.save(dir)?;

    let node = |h: &HostState| Node {
        name: h.name.clone(),
        address: h.address.clone(),
    };
    let (bastion, nodes): (Vec<&HostState>, Vec<&HostState>) = st
        .hosts
        .iter()
        .partition(|h| st.bastion.is_some() && h.name == render::BASTION);
    let nodes: Vec<Node> = nodes.into_iter().map(node).collect();
    let mut text = match bastion.first() {
        Some(b) => render::inventory_behind(&key, &known_hosts_path, &nodes, kind, &node(b)),
        None => render::inventory(&key, &known_hosts_path, &nodes, kind),
    };
    if secure {
        let secrets = dir.join("secrets");
        for user in render::SECURE_USERS {
            state::ensure_secret(&secrets, &format!("{user}.password"))?;
        }
        text.push_str(&render::secure_section(dir, &secrets, kind));
    }
    state::write_atomic(inventory, text.as_bytes())
}

fn create_network(engine: Engine, prefix: &str, name: &str, flags: &[&str]) -> Result<()> {
    let mut net = engine.cmd();
    net.args(["network", "create", "--label"])
        .arg(format!("{LABEL}={prefix}"))
        .args(flags)
        .arg(name);
    eprintln!("lab up: network {name}");
    engine::run(&mut net).map(drop)
}

/// Makes the internal network unreachable from this machine (`ip route add unreachable`):
/// otherwise its addresses would go to the default gateway, off this machine, where a
/// transparent proxy may even answer. Recorded first, so `down` removes it whatever happens.
fn block_subnet(st: &mut State, dir: &Path) -> Result<()> {
    let out = engine::run(st.runtime.cmd().args([
        "network",
        "inspect",
        "-f",
        "{{range .Subnets}}{{.Subnet}} {{end}}",
        &st.network,
    ]))?;
    let subnets: Vec<&str> = out.split_whitespace().collect();
    let [subnet] = subnets[..] else {
        bail!(
            "network {} has subnets {subnets:?}, expected one",
            st.network
        );
    };
    let b = st.bastion.as_mut().expect("only behind a bastion");
    b.blocked_subnet = Some(subnet.to_string());
    st.save(dir)?;
    eprintln!("lab up: route {subnet} unreachable from this machine");
    engine::run(Command::new("ip").args(["route", "add", "unreachable", subnet])).map(drop)
}

/// A fresh ed25519 key pair for this lab only; returns the public key line.
fn generate_client_key(key: &Path, prefix: &str) -> Result<String> {
    for stale in [key.to_path_buf(), key.with_extension("pub")] {
        // ssh-keygen would stop to ask before overwriting.
        if stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    engine::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("clusterctl-lab {prefix}"))
            .arg("-f")
            .arg(key),
    )?;
    let pub_path = key.with_extension("pub");
    std::fs::read_to_string(&pub_path).with_context(|| format!("reading {}", pub_path.display()))
}

fn authorize(engine: Engine, container: &str, pub_key: &str) -> Result<()> {
    let script = "umask 077 && mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys";
    engine::run_with_input(
        engine
            .cmd()
            .args(["exec", "-i", container, "sh", "-c", script]),
        pub_key.as_bytes(),
    )
    .map(drop)
}

fn address(engine: Engine, container: &str, network: &str) -> Result<String> {
    let template = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let out = engine::run(engine.cmd().args(["inspect", "-f", &template, container]))?;
    let addr = out.trim();
    ensure!(
        addr.parse::<std::net::IpAddr>().is_ok(),
        "container {container} has no address on {network} (inspect printed {addr:?})"
    );
    Ok(addr.to_string())
}

/// Waits until the container's fresh host key exists and sshd accepts TCP from this machine
/// (or, behind a bastion, from the bastion container `via`); returns the host public key.
/// On timeout the container's log says why.
fn wait_for_sshd(
    engine: Engine,
    container: &str,
    address: &str,
    via: Option<&str>,
    deadline: Instant,
) -> Result<String> {
    let sock = SocketAddr::new(address.parse()?, 22);
    let mut read_key = engine.cmd();
    read_key.args([
        "exec",
        container,
        "cat",
        "/etc/ssh/ssh_host_ed25519_key.pub",
    ]);
    let mut last_error;
    loop {
        match engine::run(&mut read_key) {
            Ok(key) => match via {
                None => match TcpStream::connect_timeout(&sock, Duration::from_secs(1)) {
                    Ok(_) => return Ok(key),
                    Err(e) => last_error = format!("connect {sock}: {e}"),
                },
                Some(bastion) => {
                    let mut nc = engine.cmd();
                    nc.args(["exec", bastion, "nc", "-z", "-w", "1", address, "22"]);
                    match engine::run(&mut nc) {
                        Ok(_) => return Ok(key),
                        Err(e) => last_error = format!("from {bastion}: {e:#}"),
                    }
                }
            },
            Err(e) => last_error = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            let logs = engine::run(engine.cmd().args(["logs", "--tail", "20", container]))
                .unwrap_or_default();
            bail!(
                "sshd in {container} not ready within {} s: {last_error}\ncontainer log:\n{}",
                SSH_WAIT.as_secs(),
                logs.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// sshd answering proves the node is up, not that systemd runs it: an image without systemd
/// would be deployed to as a SysV host.
fn check_systemd(engine: Engine, container: &str, image: &str) -> Result<()> {
    let mut cmd = engine.cmd();
    cmd.args(["exec", container, "test", "-d", "/run/systemd/system"]);
    if engine::run(&mut cmd).is_err() {
        bail!(
            "{container} runs without systemd: image {image} does not boot it (build one with `clusterctl lab image --init systemd`)"
        );
    }
    Ok(())
}

/// Removes the recorded containers and network (only those, by name), then the state dir's
/// own files. Stops before forgetting anything it failed to remove, so `down` can be rerun.
fn teardown(st: &State, dir: &Path) -> Result<()> {
    let engine = st.runtime;
    ensure!(
        engine::on_path(engine.program()).is_some(),
        "the lab in {} was made with {}, which is not on PATH",
        dir.display(),
        engine.program()
    );
    for c in &st.containers {
        if engine.container_exists(c)? {
            engine::run(engine.cmd().args(["rm", "-f", c]))?;
            eprintln!("lab down: removed container {c}");
        }
    }
    if let Some(subnet) = st.bastion.as_ref().and_then(|b| b.blocked_subnet.as_ref()) {
        unblock_subnet(subnet)?;
    }
    let edge = st.bastion.as_ref().map(|b| &b.edge_network);
    for network in std::iter::once(&st.network).chain(edge) {
        if engine.network_exists(network)? {
            engine::run(engine.cmd().args(["network", "rm", network]))?;
            eprintln!("lab down: removed network {network}");
        }
    }
    for f in state::FILES {
        let p = dir.join(f);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    // Only if empty: files someone else put there are not ours to delete.
    match std::fs::remove_dir(dir) {
        Ok(()) => eprintln!("lab down: removed {}", dir.display()),
        Err(e) => eprintln!("lab down: left {} in place: {e}", dir.display()),
    }
    Ok(())
}

/// Removes the route [`block_subnet`] added, if it is still there.
fn unblock_subnet(subnet: &str) -> Result<()> {
    let shown =
        engine::run(Command::new("ip").args(["route", "show", "type", "unreachable", subnet]))?;
    if !shown.trim().is_empty() {
        engine::run(Command::new("ip").args(["route", "del", "unreachable", subnet]))?;
        eprintln!("lab down: removed route {subnet}");
    }
    Ok(())
}

/// 64 random bits without a crate: std's RandomState is seeded from the OS per process and
/// advanced per instance; time and pid are mixed in for good measure.
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_inventory_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("prod.yaml");
        std::fs::write(&inv, "hosts:\n  a:\n    address: 10.0.0.1\n").unwrap();
        let err = check_may_write(&inv, &state::state_dir(&inv).unwrap()).unwrap_err();
        assert!(err.to_string().contains("not written by"), "{err}");
    }

    #[test]
    fn may_write_its_own_inventory_without_state() {
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("lab.yaml");
        std::fs::write(&inv, format!("{}\nssh: {{}}\n", render::INVENTORY_HEADER)).unwrap();
        assert!(
            check_may_write(&inv, &state::state_dir(&inv).unwrap())
                .unwrap()
                .is_none()
        );
        assert!(
            check_may_write(&dir.path().join("new.yaml"), dir.path())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn down_without_state_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        down(&dir.path().join("nothing.yaml")).unwrap();
    }

    #[test]
    fn random_differs_between_calls() {
        assert_ne!(random(), random());
    }
}
