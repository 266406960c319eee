// TEMPORARY: manual verification against a hand-started Kafka 3.9.1 + ZooKeeper 3.8.4; deleted afterwards.
use super::kafka::*;
use super::zookeeper::*;
use std::time::Duration;

#[tokio::test]
async fn live_kafka() {
    let t = Duration::from_secs(10);
    let mut c = KafkaClient::connect("127.0.0.1:29092", t).await.unwrap();
    for api in [kafka_protocol::messages::ApiKey::Metadata, kafka_protocol::messages::ApiKey::Produce, kafka_protocol::messages::ApiKey::Fetch, kafka_protocol::messages::ApiKey::ListOffsets, kafka_protocol::messages::ApiKey::CreateTopics, kafka_protocol::messages::ApiKey::DeleteTopics] {
        println!("{api:?} -> v{:?}", c.api_version(api));
    }
    let meta = c.metadata(Some(&[])).await.unwrap();
    println!("{meta:#?}");
    assert_eq!(meta.brokers.len(), 1);
    assert_eq!(meta.controller_id, 0);
    c.create_topic("live-a", 1, 1, &[("min.insync.replicas".into(), "1".into())]).await.unwrap();
    c.create_topic("live-a", 1, 1, &[]).await.unwrap(); // exists -> ok
    let err = c.create_topic("live-bad", 1, 3, &[]).await.unwrap_err();
    println!("rf=3 on 1 broker: {err:#}");
    let mut leader = None;
    for _ in 0..50 {
        let m = c.metadata(Some(&["live-a".to_string()])).await.unwrap();
        if let Some(p) = m.partition("live-a", 0) { if p.leader >= 0 { leader = Some(p.leader); println!("{:?}", m.topics); break; } }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(leader, Some(0));
    let start = c.end_offset("live-a", 0).await.unwrap();
    let mut offs = vec![];
    for i in 0..3 {
        let k = format!("k{i}");
        let key = if i == 1 { None } else { Some(k.as_bytes()) };
        offs.push(c.produce("live-a", 0, key, format!("v{i}").as_bytes()).await.unwrap());
    }
    println!("start={start} produced at {offs:?}");
    let recs = c.fetch_all("live-a", 0, start, Duration::from_secs(5)).await.unwrap();
    println!("{recs:?}");
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1], (offs[1], None, Some(b"v1".to_vec())));
    assert_eq!(recs[2].2.as_deref(), Some(&b"v2"[..]));
    let tail = c.fetch_all("live-a", 0, offs[2], Duration::from_secs(5)).await.unwrap();
    assert_eq!(tail.len(), 1);
    let err = c.produce("nope-topic", 0, None, b"x").await.unwrap_err();
    println!("produce unknown topic: {err:#}");
    let err = c.fetch_all("live-a", 0, 1_000_000, Duration::from_secs(1)).await;
    println!("fetch beyond end: {err:?}");
    let all = c.metadata(None).await.unwrap();
    println!("all topics: {:?} urp={:?} offline={:?}", all.topics.iter().map(|t| &t.name).collect::<Vec<_>>(), all.under_replicated(), all.offline());
    c.delete_topic("live-a").await.unwrap();
    c.delete_topic("live-a").await.unwrap();
    let rep = smoke(&["127.0.0.1:1".to_string(), "127.0.0.1:29092".to_string()], "__clusterctl_canary", 1, Duration::from_secs(60)).await.unwrap();
    println!("{rep:#?}");
    let rep2 = smoke(&["127.0.0.1:29092".to_string()], "__clusterctl_canary", 1, Duration::from_secs(60)).await.unwrap();
    println!("{rep2:#?}");
    assert!(rep2.offset > rep.offset);
    let err = smoke(&["127.0.0.1:29092".to_string()], "__clusterctl_canary", 3, Duration::from_secs(10)).await.unwrap_err();
    println!("smoke rf=3 on existing rf=1 topic: {err:#}");
    let started = std::time::Instant::now();
    let err = smoke(&["127.0.0.1:29092".to_string()], "clusterctl-rf3", 3, Duration::from_secs(5)).await.unwrap_err();
    println!("smoke rf=3 on 1 broker ({:?}): {err:#}", started.elapsed());
}

#[tokio::test]
async fn live_zk() {
    let t = Duration::from_secs(5);
    let s = srvr("127.0.0.1:22181", t).await.unwrap();
    println!("{s:?}");
    assert_eq!(s.mode, ZkMode::Standalone);
    let m = mntr("127.0.0.1:22181", t).await.unwrap();
    println!("mntr keys={} state={}", m.len(), m["zk_server_state"]);
    println!("ruok={:?}", four_letter("127.0.0.1:22181", "ruok", t).await.unwrap());
    println!("single: {:?}", probe_ensemble(&["127.0.0.1:22181".to_string()], t).await);
    let ens: Vec<String> = (1..=3).map(|i| format!("127.0.0.1:2228{i}")).collect();
    let v = probe_ensemble(&ens, t).await;
    println!("ensemble: {v:?}");
    assert!(v.healthy);
    println!("conf on ens (not whitelisted): {:#}", four_letter(&ens[0], "conf", t).await.unwrap_err());
    let mut with_dead = ens.clone();
    with_dead.push("127.0.0.1:22289".into());
    println!("with dead member: {:?}", probe_ensemble(&with_dead, t).await);
}

#[tokio::test]
async fn live_two_brokers() {
    let t = Duration::from_secs(10);
    let mut c1 = KafkaClient::connect("127.0.0.1:29093", t).await.unwrap();
    let meta = c1.metadata(Some(&[])).await.unwrap();
    println!("brokers={:?} controller={}", meta.brokers.iter().map(|b| b.id).collect::<Vec<_>>(), meta.controller_id);
    let ctl = meta.controller_id;
    let (non_ctl_addr, _) = if ctl == 0 { ("127.0.0.1:29093", 1) } else { ("127.0.0.1:29092", 0) };
    let mut nc = KafkaClient::connect(non_ctl_addr, t).await.unwrap();
    nc.create_topic("live-b", 2, 2, &[]).await.unwrap();
    println!("create via non-controller {non_ctl_addr}: ok");
    let mut m = None;
    for _ in 0..50 {
        let mm = nc.metadata(Some(&["live-b".to_string()])).await.unwrap();
        if mm.partition("live-b", 0).is_some_and(|p| p.leader >= 0 && p.isr.len() == 2) && mm.partition("live-b", 1).is_some_and(|p| p.leader >= 0 && p.isr.len() == 2) { m = Some(mm); break; }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = m.expect("live-b ready");
    println!("{:?}", m.topics);
    let p0 = m.partition("live-b", 0).unwrap();
    let follower = *p0.replicas.iter().find(|&&r| r != p0.leader).unwrap();
    let mut fc = KafkaClient::connect(&m.broker(follower).unwrap().addr(), t).await.unwrap();
    let err = fc.produce("live-b", 0, None, b"x").await.unwrap_err();
    println!("produce to follower: {err:#}");
    let err = fc.fetch_all("live-b", 0, 0, Duration::from_secs(2)).await.unwrap_err();
    println!("fetch from follower: {err:#}");
    let rep = smoke(&["127.0.0.1:29093".to_string()], "__clusterctl_canary2", 2, Duration::from_secs(60)).await.unwrap();
    println!("{rep:?}");
    nc.delete_topic("live-b").await.unwrap();
    println!("delete via non-controller ok");
}
