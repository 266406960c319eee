//! Protocol-level health checks, with no JVM and no JMX.
//!
//! * [`zookeeper`]: four-letter words (`srvr` on every member, `mntr` on the
//!   leader) and a pure ensemble verdict.
//! * [`kafka`]: a minimal async Kafka client (Metadata, CreateTopics,
//!   DeleteTopics, Produce, ListOffsets, Fetch) on top of `kafka-protocol`,
//!   metadata-based verdict helpers, and an end-to-end produce/read smoke test.

pub mod kafka;
pub mod zookeeper;
