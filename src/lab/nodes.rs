//! `lab up` / `lab down`: N SSH-reachable containers on their own network, recorded in the
//! state dir beside the inventory so `down` removes exactly what `up` made.

use super::Init;
use super::engine::{self, Engine};
use super::render::{self, Node};
use super::state::{self, HostState, State};
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
) -> Result<()> {
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
    let mut st = State {
        runtime: engine,
        network: render::network_name(&prefix),
        containers: (1..=nodes)
            .map(|k| render::container_name(&prefix, k))
            .collect(),
        prefix,
        image: image.to_string(),
        init,
        hosts: vec![],
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Recorded before anything exists, so even a crashed `up` can be undone by `down`.
    st.save(&dir)?;
    if let Err(e) = create(&mut st, &dir, &inventory, kind) {
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

fn create(st: &mut State, dir: &Path, inventory: &Path, kind: render::Kind) -> Result<()> {
    let engine = st.runtime;
    let key = dir.join(state::KEY_FILE);
    let pub_key = generate_client_key(&key, &st.prefix)?;

    let mut net = engine.cmd();
    net.args(["network", "create", "--label"])
        .arg(format!("{LABEL}={}", st.prefix))
        .arg(&st.network);
    eprintln!("lab up: network {}", st.network);
    engine::run(&mut net)?;

    let flags = engine.start_flags()?;
    // systemd is PID 1 itself (podman mounts what it needs); otherwise a reaper is, for the
    // services' orphans.
    let pid1 = match st.init {
        Init::Sysv => "--init",
        Init::Systemd => "--systemd=always",
    };
    for (k, container) in st.containers.iter().enumerate() {
        let host = render::host_name(k + 1);
        let mut run = engine.cmd();
        run.args(["run", "-d", pid1, "--name", container, "--hostname", &host])
            .args(["--network", &st.network, "--network-alias", &host])
            .arg("--label")
            .arg(format!("{LABEL}={}", st.prefix))
            .args(&flags)
            .arg(&st.image);
        eprintln!("lab up: container {container} ({host})");
        engine::run(&mut run)?;
    }

    let deadline = Instant::now() + SSH_WAIT;
    let mut known_hosts = String::new();
    for (k, container) in st.containers.iter().enumerate() {
        authorize(engine, container, &pub_key)?;
        let address = address(engine, container, &st.network)?;
        let host_key = wait_for_sshd(engine, container, &address, deadline)?;
        if st.init == Init::Systemd {
            check_systemd(engine, container, &st.image)?;
        }
        known_hosts.push_str(&render::known_hosts_line(&address, &host_key)?);
        known_hosts.push('\n');
        st.hosts.push(HostState {
            name: render::host_name(k + 1),
            container: container.clone(),
            address,
        });
    }
    let known_hosts_path = dir.join(state::KNOWN_HOSTS_FILE);
    state::write_atomic(&known_hosts_path, known_hosts.as_bytes())?;
    st.save(dir)?;

    let nodes: Vec<Node> = st
        .hosts
        .iter()
        .map(|h| Node {
            name: h.name.clone(),
            address: h.address.clone(),
        })
        .collect();
    let text = render::inventory(&key, &known_hosts_path, &nodes, kind);
    state::write_atomic(inventory, text.as_bytes())
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

/// Waits until the container's fresh host key exists and sshd accepts TCP from this machine;
/// returns the host public key. On timeout the container's log says why.
fn wait_for_sshd(
    engine: Engine,
    container: &str,
    address: &str,
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
            Ok(key) => match TcpStream::connect_timeout(&sock, Duration::from_secs(1)) {
                Ok(_) => return Ok(key),
                Err(e) => last_error = format!("connect {sock}: {e}"),
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
    if engine.network_exists(&st.network)? {
        engine::run(engine.cmd().args(["network", "rm", &st.network]))?;
        eprintln!("lab down: removed network {}", st.network);
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
