//! ZooKeeper ensemble health over the four-letter-word protocol.
//!
//! We deliberately avoid a ZooKeeper client library: `srvr` on every member
//! plus `mntr` on the leader is enough to decide whether the ensemble has a
//! working quorum, and it only needs a TCP socket. Since 3.5.3 only `srvr` is
//! whitelisted by default, so the rendered `zoo.cfg` must whitelist `mntr`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::BoxStream;

/// Upper bound on a 4lw reply. `mntr` on 3.8 is ~25 KiB; anything far larger
/// means we are not talking to ZooKeeper.
const MAX_REPLY_BYTES: u64 = 1 << 20;

/// Reply of a server that has no quorum (`srvr`, `stat`, `mntr` all say this).
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";
const NOT_WHITELISTED: &str = "is not executed because it is not in the whitelist";

/// Sends a four-letter command (`srvr`, `mntr`, `ruok`, ...) to `addr`
/// (`host:port`) and returns the whole reply.
///
/// Connect, write and read-to-EOF all share one `timeout`. A reply saying the
/// command is not whitelisted is an error, because treating it as an empty
/// answer would make a misconfigured node look healthy.
pub async fn four_letter(addr: &str, cmd: &str, timeout: Duration) -> Result<String> {
    ensure!(
        cmd.len() == 4 && cmd.bytes().all(|b| b.is_ascii_lowercase()),
        "invalid ZooKeeper four-letter command {cmd:?}"
    );
    let reply = tokio::time::timeout(timeout, exchange(addr, cmd, timeout))
        .await
        .map_err(|_| anyhow!("ZooKeeper {addr}: `{cmd}` timed out after {timeout:?}"))?
        .with_context(|| format!("ZooKeeper {addr}: `{cmd}` failed"))?;
    if reply.contains(NOT_WHITELISTED) {
        bail!(
            "ZooKeeper {addr}: `{cmd}` is not in 4lw.commands.whitelist ({})",
            reply.trim()
        );
    }
    Ok(reply)
}

static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// `security.zookeeper_tls`: clusterctl's own ZooKeeper connections (four-letter words,
/// znodes) speak TLS with this configuration. Set once per command; a second call is ignored.
pub fn install_tls(cfg: Arc<rustls::ClientConfig>) {
    let _ = TLS.set(cfg);
}

/// A connection to the ZooKeeper member at `addr`: TLS when the ensemble speaks it.
pub async fn connect(addr: &str, timeout: Duration) -> Result<BoxStream> {
    let stream = crate::net::dial(addr, timeout).await?;
    match TLS.get() {
        None => Ok(stream),
        Some(cfg) => {
            let (tls, _) =
                crate::health::kafka::handshake(stream, "ZooKeeper", addr, cfg, timeout).await?;
            Ok(tls)
        }
    }
}

/// The certificate (DER) the member at `addr` presents on its TLS client port; `None`
/// without `zookeeper_tls`. The connection closes right after the handshake.
pub async fn peer_certificate(addr: &str, timeout: Duration) -> Result<Option<Vec<u8>>> {
    let Some(cfg) = TLS.get() else {
        return Ok(None);
    };
    let stream = crate::net::dial(addr, timeout).await?;
    let (_, peer) =
        crate::health::kafka::handshake(stream, "ZooKeeper", addr, cfg, timeout).await?;
    Ok(peer)
}

async fn exchange(addr: &str, cmd: &str, timeout: Duration) -> Result<String> {
    let mut stream = connect(addr, timeout).await.context("connect")?;
    stream.write_all(cmd.as_bytes()).await.context("write")?;
    stream.flush().await.context("write")?;
    let mut raw = Vec::new();
    // The server closes the connection after answering; EOF ends the reply. Over TLS a
    // close without close_notify reads as UnexpectedEof: the reply is complete all the same.
    match (&mut stream)
        .take(MAX_REPLY_BYTES)
        .read_to_end(&mut raw)
        .await
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e).context("read"),
    }
    String::from_utf8(raw).context("reply is not UTF-8")
}

/// `srvr` on `addr`, parsed.
pub async fn srvr(addr: &str, timeout: Duration) -> Result<Srvr> {
    let reply = four_letter(addr, "srvr", timeout).await?;
    parse_srvr(&reply).with_context(|| format!("ZooKeeper {addr}: bad `srvr` reply"))
}

/// `mntr` on `addr`, parsed into key/value pairs.
pub async fn mntr(addr: &str, timeout: Duration) -> Result<BTreeMap<String, String>> {
    let reply = four_letter(addr, "mntr", timeout).await?;
    ensure!(
        !reply.contains(NOT_SERVING),
        "ZooKeeper {addr}: not serving requests (no quorum)"
    );
    Ok(parse_mntr(&reply))
}

/// Role of a server as reported by `srvr` (`Mode:` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkMode {
    Leader,
    Follower,
    Observer,
    Standalone,
    /// E.g. `read-only` (a partitioned server with readonlymode enabled).
    Other(String),
}

impl ZkMode {
    fn parse(s: &str) -> Self {
        match s {
            "leader" => Self::Leader,
            "follower" => Self::Follower,
            "observer" => Self::Observer,
            "standalone" => Self::Standalone,
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ZkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leader => f.write_str("leader"),
            Self::Follower => f.write_str("follower"),
            Self::Observer => f.write_str("observer"),
            Self::Standalone => f.write_str("standalone"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// Parsed `srvr` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srvr {
    pub mode: ZkMode,
    pub zxid: u64,
    /// Release only, e.g. `3.8.4` (the git hash and build date are dropped).
    pub version: String,
    pub connections: Option<u64>,
    pub outstanding: Option<u64>,
    pub node_count: Option<u64>,
}

/// Parses a `srvr` (or `stat`) reply. A server without quorum answers with a
/// fixed sentence instead of the key/value lines; that is an error here.
pub fn parse_srvr(text: &str) -> Result<Srvr> {
    ensure!(
        !text.contains(NOT_SERVING),
        "not serving requests (no quorum or still electing a leader)"
    );
    let mut mode = None;
    let mut zxid = None;
    let mut version = None;
    let mut srvr = Srvr {
        mode: ZkMode::Other(String::new()),
        zxid: 0,
        version: String::new(),
        connections: None,
        outstanding: None,
        node_count: None,
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Zookeeper version" => version = Some(short_version(value)),
            "Mode" => mode = Some(ZkMode::parse(value)),
            "Zxid" => zxid = Some(parse_zxid(value)?),
            "Connections" => srvr.connections = value.parse().ok(),
            "Outstanding" => srvr.outstanding = value.parse().ok(),
            "Node count" => srvr.node_count = value.parse().ok(),
            _ => {}
        }
    }
    srvr.mode = mode.context("no `Mode:` line")?;
    srvr.zxid = zxid.context("no `Zxid:` line")?;
    srvr.version = version.context("no `Zookeeper version:` line")?;
    Ok(srvr)
}

/// `3.8.4-9316c2a7..., built on 2024-02-12 22:16 UTC` -> `3.8.4`.
fn short_version(full: &str) -> String {
    full.split(['-', ','])
        .next()
        .unwrap_or(full)
        .trim()
        .to_string()
}

fn parse_zxid(value: &str) -> Result<u64> {
    let hex = value
        .strip_prefix("0x")
        .with_context(|| format!("zxid {value:?} is not hex"))?;
    u64::from_str_radix(hex, 16).with_context(|| format!("zxid {value:?} is not hex"))
}

/// Parses a `mntr` reply (`zk_key<TAB>value` lines). Lines that do not split
/// on a tab are ignored; values keep their inner spaces (`zk_version`).
pub fn parse_mntr(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Outcome of [`ensemble_verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleVerdict {
    pub healthy: bool,
    /// Host of the unique leader, if there is exactly one.
    pub leader: Option<String>,
    /// Human-readable reasons the ensemble is not healthy, each naming hosts.
    pub problems: Vec<String>,
}

/// Decides whether an ensemble is healthy from every member's `srvr` result
/// and, when available, the leader's `mntr`.
///
/// Healthy iff every member answered, exactly one is leader, all others are
/// followers or observers, and the leader's synced learners (followers +
/// observers) equal `members - 1`. A single member in `standalone` mode is a
/// healthy one-node deployment; `standalone` in a multi-member ensemble means
/// the node did not get the `server.N` lines and is not part of the quorum.
///
/// zxid epochs are not compared: followers of a freshly formed ensemble report
/// `Zxid: 0x0` until the first write while the leader already has epoch 1.
pub fn ensemble_verdict(
    members: &[(String, Result<Srvr>)],
    leader_mntr: Option<&BTreeMap<String, String>>,
) -> EnsembleVerdict {
    let mut problems = Vec::new();
    let mut leaders = Vec::new();
    for (host, result) in members {
        match result {
            Err(e) => problems.push(format!("{host}: no usable `srvr` answer: {e:#}")),
            Ok(s) => match &s.mode {
                ZkMode::Leader => leaders.push(host.clone()),
                ZkMode::Follower | ZkMode::Observer => {}
                ZkMode::Standalone if members.len() == 1 => leaders.push(host.clone()),
                ZkMode::Standalone => problems.push(format!(
                    "{host}: runs standalone although the ensemble has {} members",
                    members.len()
                )),
                ZkMode::Other(m) => problems.push(format!("{host}: unexpected mode {m:?}")),
            },
        }
    }
    match leaders.len() {
        0 => problems.push(format!("no leader among {} member(s)", members.len())),
        1 => {}
        _ => problems.push(format!("more than one leader: {}", leaders.join(", "))),
    }
    let leader = (leaders.len() == 1).then(|| leaders[0].clone());
    if let (Some(leader), Some(mntr)) = (&leader, leader_mntr) {
        problems.extend(check_synced(leader, members.len(), mntr));
    }
    EnsembleVerdict {
        healthy: problems.is_empty(),
        leader,
        problems,
    }
}

/// The leader's view: it must have every other member synced.
fn check_synced(leader: &str, members: usize, mntr: &BTreeMap<String, String>) -> Option<String> {
    let state = mntr.get("zk_server_state").map(String::as_str);
    if members == 1 && state == Some("standalone") {
        return None;
    }
    if state != Some("leader") {
        return Some(format!(
            "{leader}: mntr reports zk_server_state={} instead of leader",
            state.unwrap_or("<missing>")
        ));
    }
    let count = |key: &str| mntr.get(key).and_then(|v| v.parse::<usize>().ok());
    let Some(followers) = count("zk_synced_followers") else {
        return Some(format!("{leader}: mntr has no zk_synced_followers"));
    };
    // A member just added to the ensemble syncs as a non-voting follower until the leader
    // restarts with the new configuration; zk_synced_followers already counts it (seen on
    // ZooKeeper 3.8: 3 synced followers, 1 of them non-voting, in a 4-member ensemble).
    let synced = followers + count("zk_synced_observers").unwrap_or(0);
    (synced != members - 1).then(|| {
        format!(
            "{leader}: leader has {synced} synced follower(s)/observer(s), expected {}",
            members - 1
        )
    })
}

/// Probes every member (`srvr` concurrently, then `mntr` on the leader) and
/// returns each member's answer with the verdict. `members` are
/// `(name, host:port)` pairs; problems and `leader` use the names.
pub async fn probe_ensemble(
    members: &[(String, String)],
    timeout: Duration,
) -> (Vec<(String, Result<Srvr>)>, EnsembleVerdict) {
    let results = futures::future::join_all(members.iter().map(|(_, a)| srvr(a, timeout))).await;
    let answers: Vec<(String, Result<Srvr>)> = members
        .iter()
        .map(|(n, _)| n.clone())
        .zip(results)
        .collect();
    let first = ensemble_verdict(&answers, None);
    let Some((leader, addr)) = members
        .iter()
        .find(|(n, _)| Some(n) == first.leader.as_ref())
    else {
        return (answers, first);
    };
    let verdict = match mntr(addr, timeout).await {
        Ok(m) => ensemble_verdict(&answers, Some(&m)),
        Err(e) => {
            let mut v = first;
            v.problems.push(format!("{leader}: mntr failed: {e:#}"));
            v.healthy = false;
            v
        }
    };
    (answers, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from ZooKeeper 3.8.4 (the version Kafka 3.9 bundles), a
    // three-node ensemble on loopback.
    const SRVR_LEADER: &str = "Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC
Latency min/avg/max: 0/0.0/0
Received: 1
Sent: 0
Connections: 1
Outstanding: 0
Zxid: 0x100000000
Mode: leader
Node count: 5
Proposal sizes last/min/max: -1/-1/-1
";
    const SRVR_FOLLOWER: &str = "Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC
Latency min/avg/max: 0/0.0/0
Received: 1
Sent: 0
Connections: 1
Outstanding: 0
Zxid: 0x0
Mode: follower
Node count: 5
";
    const SRVR_STANDALONE: &str = "Zookeeper version: 3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC
Latency min/avg/max: 0/0.0/0
Received: 1
Sent: 0
Connections: 1
Outstanding: 0
Zxid: 0x2a
Mode: standalone
Node count: 5
";
    // Excerpt: the real reply has ~400 lines of latency histograms.
    const MNTR_LEADER: &str =
        "zk_version\t3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC
zk_server_state\tleader
zk_peer_state\tleading - broadcast
zk_ephemerals_count\t0
zk_num_alive_connections\t1
zk_outstanding_requests\t0
zk_znode_count\t5
zk_synced_followers\t2
zk_synced_non_voting_followers\t0
zk_synced_observers\t0
zk_pending_syncs\t0
zk_leader_uptime\t11291
zk_learners\t2
zk_quorum_size\t3
zk_avg_latency\t0.0
zk_p99_readlatency\t0
";
    const MNTR_FOLLOWER: &str =
        "zk_version\t3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC
zk_server_state\tfollower
zk_peer_state\tfollowing - broadcast
zk_quorum_size\t3
";

    fn srvr_with(mode: ZkMode) -> Result<Srvr> {
        Ok(Srvr {
            mode,
            zxid: 0x1_0000_0007,
            version: "3.8.4".into(),
            connections: Some(1),
            outstanding: Some(0),
            node_count: Some(5),
        })
    }

    fn mntr_synced(n: usize) -> BTreeMap<String, String> {
        parse_mntr(&MNTR_LEADER.replace(
            "zk_synced_followers\t2",
            &format!("zk_synced_followers\t{n}"),
        ))
    }

    fn three(modes: [Result<Srvr>; 3]) -> Vec<(String, Result<Srvr>)> {
        ["zk1", "zk2", "zk3"]
            .into_iter()
            .map(String::from)
            .zip(modes)
            .collect()
    }

    #[test]
    fn parses_leader_srvr() {
        let s = parse_srvr(SRVR_LEADER).unwrap();
        assert_eq!(s.mode, ZkMode::Leader);
        assert_eq!(s.zxid, 0x1_0000_0000);
        assert_eq!(s.zxid >> 32, 1);
        assert_eq!(s.version, "3.8.4");
        assert_eq!(s.connections, Some(1));
        assert_eq!(s.node_count, Some(5));
    }

    #[test]
    fn parses_follower_and_standalone_srvr() {
        let f = parse_srvr(SRVR_FOLLOWER).unwrap();
        assert_eq!(f.zxid, 0);
        assert_eq!(f.mode, ZkMode::Follower);
        let s = parse_srvr(SRVR_STANDALONE).unwrap();
        assert_eq!((s.mode, s.zxid), (ZkMode::Standalone, 0x2a));
    }

    #[test]
    fn srvr_without_quorum_is_an_error() {
        let err = parse_srvr(&format!("{NOT_SERVING}\n")).unwrap_err();
        assert!(err.to_string().contains("not serving"), "{err}");
    }

    #[test]
    fn srvr_missing_mode_is_an_error() {
        let text = SRVR_LEADER.replace("Mode: leader\n", "");
        assert!(parse_srvr(&text).unwrap_err().to_string().contains("Mode"));
    }

    #[test]
    fn unknown_mode_is_kept() {
        let text = SRVR_FOLLOWER.replace("Mode: follower", "Mode: read-only");
        assert_eq!(
            parse_srvr(&text).unwrap().mode,
            ZkMode::Other("read-only".into())
        );
    }

    #[test]
    fn parses_mntr() {
        let m = parse_mntr(MNTR_LEADER);
        assert_eq!(m["zk_server_state"], "leader");
        assert_eq!(m["zk_synced_followers"], "2");
        assert_eq!(m["zk_peer_state"], "leading - broadcast");
        assert_eq!(
            m["zk_version"],
            "3.8.4-9316c2a7a97e1666d8f4593f34dd6fc36ecc436c, built on 2024-02-12 22:16 UTC"
        );
        assert!(!parse_mntr(MNTR_FOLLOWER).contains_key("zk_synced_followers"));
    }

    #[test]
    fn healthy_three_node_ensemble() {
        let members = three([
            srvr_with(ZkMode::Follower),
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Follower),
        ]);
        let v = ensemble_verdict(&members, Some(&mntr_synced(2)));
        assert!(v.healthy, "{:?}", v.problems);
        assert_eq!(v.leader.as_deref(), Some("zk2"));
        // Without mntr the srvr-only part still passes.
        assert!(ensemble_verdict(&members, None).healthy);
    }

    #[test]
    fn observer_counts_as_synced_learner() {
        let members = three([
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Follower),
            srvr_with(ZkMode::Observer),
        ]);
        let mut mntr = mntr_synced(1);
        mntr.insert("zk_synced_observers".into(), "1".into());
        assert!(ensemble_verdict(&members, Some(&mntr)).healthy);
    }

    #[test]
    fn a_new_member_syncing_as_non_voting_follower_counts() {
        // Added to zoo.cfg everywhere, but the leader still runs the old configuration.
        let mut members = three([
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Follower),
            srvr_with(ZkMode::Follower),
        ]);
        members.push(("zk4".into(), srvr_with(ZkMode::Follower)));
        let mut mntr = mntr_synced(3);
        mntr.insert("zk_synced_non_voting_followers".into(), "1".into());
        assert!(ensemble_verdict(&members, Some(&mntr)).healthy);
    }

    #[test]
    fn two_leaders_are_unhealthy() {
        let members = three([
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Follower),
        ]);
        let v = ensemble_verdict(&members, None);
        assert!(!v.healthy);
        assert_eq!(v.leader, None);
        assert_eq!(v.problems, vec!["more than one leader: zk1, zk2"]);
    }

    #[test]
    fn unreachable_member_is_named() {
        let members = three([
            srvr_with(ZkMode::Leader),
            Err(anyhow!("ZooKeeper zk2:2181: `srvr` timed out after 5s")),
            srvr_with(ZkMode::Follower),
        ]);
        let v = ensemble_verdict(&members, Some(&mntr_synced(1)));
        assert!(!v.healthy);
        assert_eq!(v.leader.as_deref(), Some("zk1"));
        assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
        assert!(v.problems[0].starts_with("zk2: ") && v.problems[0].contains("timed out"));
        assert!(v.problems[1].contains("1 synced") && v.problems[1].contains("expected 2"));
    }

    #[test]
    fn standalone_member_of_an_ensemble_is_unhealthy() {
        let members = three([
            srvr_with(ZkMode::Standalone),
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Follower),
        ]);
        let v = ensemble_verdict(&members, None);
        assert!(!v.healthy);
        assert!(
            v.problems[0].starts_with("zk1: runs standalone"),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn single_standalone_node_is_healthy() {
        let members = vec![("zk1".to_string(), parse_srvr(SRVR_STANDALONE))];
        let mntr = parse_mntr("zk_server_state\tstandalone\n");
        let v = ensemble_verdict(&members, Some(&mntr));
        assert!(v.healthy, "{:?}", v.problems);
        assert_eq!(v.leader.as_deref(), Some("zk1"));
    }

    #[test]
    fn all_followers_without_leader_are_unhealthy() {
        let members = three([
            srvr_with(ZkMode::Follower),
            srvr_with(ZkMode::Follower),
            srvr_with(ZkMode::Follower),
        ]);
        let v = ensemble_verdict(&members, None);
        assert!(!v.healthy);
        assert_eq!(v.problems, vec!["no leader among 3 member(s)"]);
    }

    #[test]
    fn mntr_from_a_non_leader_is_flagged() {
        let members = three([
            srvr_with(ZkMode::Leader),
            srvr_with(ZkMode::Follower),
            srvr_with(ZkMode::Follower),
        ]);
        let v = ensemble_verdict(&members, Some(&parse_mntr(MNTR_FOLLOWER)));
        assert!(!v.healthy);
        assert!(
            v.problems[0].contains("zk_server_state=follower"),
            "{:?}",
            v.problems
        );
    }

    #[tokio::test]
    async fn invalid_command_is_rejected_before_connecting() {
        let err = four_letter("127.0.0.1:1", "stats", Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }

    /// A fake server that answers like a ZooKeeper with a default whitelist.
    #[tokio::test]
    async fn whitelist_refusal_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut cmd = [0u8; 4];
            sock.read_exact(&mut cmd).await.unwrap();
            let reply = format!("{} {NOT_WHITELISTED}.\n", String::from_utf8_lossy(&cmd));
            sock.write_all(reply.as_bytes()).await.unwrap();
        });
        let err = four_letter(&addr, "mntr", Duration::from_secs(5))
            .await
            .unwrap_err();
        server.await.unwrap();
        assert!(err.to_string().contains("whitelist"), "{err}");
        assert!(err.to_string().contains(&addr), "{err}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Accepts (via the backlog) but never answers nor closes.
        let err = four_letter(&addr, "srvr", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        drop(listener);
    }
}
