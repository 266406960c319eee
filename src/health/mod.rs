//! Protocol-level health checks, with no JVM and no JMX.
//!
//! * [`zookeeper`]: four-letter words (`srvr` on every member, `mntr` on the
//!   leader) and a pure ensemble verdict.
//! * [`kafka`]: a minimal async Kafka client on top of `kafka-protocol`
//!   (Metadata, DescribeQuorum, CreateTopics, DeleteTopics, CreatePartitions,
//!   DescribeConfigs, IncrementalAlterConfigs on topics and, in `kafka::broker_configs`,
//!   on a broker's own per-broker configs, Produce, ListOffsets, Fetch),
//!   verdict helpers over metadata and the KRaft quorum, and an end-to-end
//!   produce/read smoke test.
//! * [`znode`]: a minimal native ZooKeeper client (one session per call) that
//!   reads (`getData`) and deletes one znode.

pub mod kafka;
pub mod znode;
pub mod zookeeper;
