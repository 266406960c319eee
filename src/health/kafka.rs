//! A minimal async Kafka client for health checks and smoke tests.
//!
//! One TCP connection per [`KafkaClient`], one request in flight at a time
//! (every method takes `&mut self`), so a correlation id only has to match the
//! request just sent. Messages are encoded by `kafka-protocol`; this module
//! adds framing (`i32` big-endian length prefix), version negotiation and
//! timeouts.
//!
//! Version negotiation: `ApiVersions` is sent first (at v3, falling back to
//! the v0 body the broker returns with `UNSUPPORTED_VERSION`), then each API
//! is used at `min(our max, broker max)`. Produce and Fetch are capped at v12
//! because v13+ address topics by id only and we address them by name.
//!
//! Only uncompressed record batches (magic v2) are decoded: the crate is built
//! without its C compression codecs, and everything we read we wrote.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, CreateAclsRequest,
    CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest, DescribeQuorumResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, Record,
    RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const CLIENT_ID: &str = "clusterctl";
/// Responses larger than this mean a desynchronised stream or a non-Kafka
/// peer (e.g. an HTTP or TLS server answering), not a real response.
const MAX_FRAME_BYTES: usize = 64 << 20;
/// ApiVersions v3 is understood by every broker since 2.4; older brokers
/// answer `UNSUPPORTED_VERSION` with a v0 body, which we also parse.
const API_VERSIONS_VERSION: i16 = 3;
const UNSUPPORTED_VERSION: i16 = 35;
/// Per-partition fetch size: the canary records are tiny.
const FETCH_PARTITION_MAX_BYTES: i32 = 1 << 20;
/// Upper bound on Fetch round trips in one `fetch_all`, on top of its deadline.
const MAX_FETCH_ROUNDS: usize = 1000;
/// Upper bound on a single broker call inside `smoke`, whatever its budget.
const SMOKE_CALL_TIMEOUT: Duration = Duration::from_secs(10);
const SMOKE_MAX_ATTEMPTS: u32 = 30;

/// Records returned by [`KafkaClient::fetch_all`]: `(offset, key, value)`.
pub type FetchedRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// A Kafka error code returned by a broker for one API call and resource.
///
/// Kept as a typed error so callers can `downcast_ref` it and decide on
/// retries (`error.is_retriable()`, `NotLeaderOrFollower`, ...).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub broker: String,
    pub api: ApiKey,
    pub resource: String,
    pub error: ResponseError,
    pub message: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Kafka {}: {:?} for {} failed: {} (code {})",
            self.broker,
            self.api,
            self.resource,
            self.error,
            self.error.code()
        )?;
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, ": {m}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ApiError {}

/// `3` -> `UnknownTopicOrPartition (3)`.
fn code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE (0)".to_string(),
        Some(e) => format!("{e} ({code})"),
    }
}

// ---------------------------------------------------------------------------
// Metadata model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, bracketing IPv6 literals so it can be passed to `connect`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    /// Partition-level error, e.g. `LeaderNotAvailable (5)`.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    /// Topic-level error, e.g. `UnknownTopicOrPartition (3)`.
    pub error: Option<String>,
    pub partitions: Vec<PartitionInfo>,
}

/// One broker's view of the cluster. Metadata is a per-broker cache: for a
/// gate, compare the views of several brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Live (registered, in KRaft: unfenced) brokers only.
    pub brokers: Vec<BrokerInfo>,
    /// -1 if unknown. In KRaft mode brokers report a random live broker here.
    pub controller_id: i32,
    pub cluster_id: Option<String>,
    pub topics: Vec<TopicInfo>,
}

impl ClusterMetadata {
    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.iter().find(|b| b.id == id)
    }

    pub fn controller(&self) -> Option<&BrokerInfo> {
        self.broker(self.controller_id)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionInfo> {
        self.topics
            .iter()
            .find(|t| t.name == topic)?
            .partitions
            .iter()
            .find(|p| p.id == partition)
    }

    /// Partitions whose ISR is smaller than their replica set (the
    /// `kafka-topics --under-replicated-partitions` definition).
    pub fn under_replicated(&self) -> Vec<(String, i32)> {
        self.partitions_where(|p| p.isr.len() < p.replicas.len())
    }

    /// Partitions that cannot serve clients: no leader, or a leader that is
    /// not a live broker (`kafka-topics --unavailable-partitions`).
    pub fn offline(&self) -> Vec<(String, i32)> {
        self.partitions_where(|p| p.leader < 0 || self.broker(p.leader).is_none())
    }

    /// Partitions with at least one replica on an offline log dir or broker.
    pub fn with_offline_replicas(&self) -> Vec<(String, i32)> {
        self.partitions_where(|p| !p.offline.is_empty())
    }

    fn partitions_where(&self, pred: impl Fn(&PartitionInfo) -> bool) -> Vec<(String, i32)> {
        self.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .filter(|(_, p)| pred(p))
            .map(|(t, p)| (t.name.clone(), p.id))
            .collect()
    }
}

fn ids(v: &[BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

fn error_opt(code: i16) -> Option<String> {
    (code != 0).then(|| code_name(code))
}

fn to_cluster_metadata(resp: MetadataResponse) -> ClusterMetadata {
    ClusterMetadata {
        brokers: resp
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
            })
            .collect(),
        controller_id: resp.controller_id.0,
        cluster_id: resp.cluster_id.map(|c| c.to_string()),
        topics: resp
            .topics
            .iter()
            .map(|t| TopicInfo {
                name: t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                error: error_opt(t.error_code),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        id: p.partition_index,
                        leader: p.leader_id.0,
                        replicas: ids(&p.replica_nodes),
                        isr: ids(&p.isr_nodes),
                        offline: ids(&p.offline_replicas),
                        error: error_opt(p.error_code),
                    })
                    .collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Framing and version negotiation (pure)
// ---------------------------------------------------------------------------

/// Broker-supported version range per API key, from ApiVersions.
type BrokerVersions = BTreeMap<i16, VersionRange>;

/// A request this client sends, with its API key and response type.
///
/// kafka-protocol has its own `Request` trait, but implements it only when
/// both its `client` and `broker` features are on; we build with `client`.
trait Call: Encodable {
    const API: ApiKey;
    type Response: Decodable;
}

macro_rules! calls {
    ($($req:ty => $resp:ty, $api:ident;)*) => {
        $(impl Call for $req {
            const API: ApiKey = ApiKey::$api;
            type Response = $resp;
        })*
    };
}

calls! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    MetadataRequest => MetadataResponse, Metadata;
    CreateTopicsRequest => CreateTopicsResponse, CreateTopics;
    ProduceRequest => ProduceResponse, Produce;
    ListOffsetsRequest => ListOffsetsResponse, ListOffsets;
    FetchRequest => FetchResponse, Fetch;
    DescribeQuorumRequest => DescribeQuorumResponse, DescribeQuorum;
    DescribeClusterRequest => DescribeClusterResponse, DescribeCluster;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    DescribeUserScramCredentialsRequest => DescribeUserScramCredentialsResponse, DescribeUserScramCredentials;
    AlterUserScramCredentialsRequest => AlterUserScramCredentialsResponse, AlterUserScramCredentials;
    DescribeAclsRequest => DescribeAclsResponse, DescribeAcls;
    CreateAclsRequest => CreateAclsResponse, CreateAcls;
    DeleteAclsRequest => DeleteAclsResponse, DeleteAcls;
}

/// The versions this client is willing to speak for `api`.
fn our_versions(api: ApiKey) -> VersionRange {
    let lib = api.valid_versions();
    let limit = match api {
        // v13+ identify topics only by id; we send names.
        ApiKey::Produce | ApiKey::Fetch => VersionRange { min: 0, max: 12 },
        // Below v4 a Metadata request cannot opt out of auto topic creation,
        // and a health probe must never create topics as a side effect.
        ApiKey::Metadata => VersionRange {
            min: 4,
            max: i16::MAX,
        },
        // v0 handshakes are followed by raw SASL tokens, not SaslAuthenticate frames.
        ApiKey::SaslHandshake => VersionRange { min: 1, max: 1 },
        // v0 filters cannot say "any pattern type".
        ApiKey::DescribeAcls => VersionRange {
            min: 1,
            max: i16::MAX,
        },
        _ => VersionRange {
            min: 0,
            max: i16::MAX,
        },
    };
    lib.intersect(&limit)
}

/// Highest version both sides support: `min(ours.max, broker.max)`, provided
/// it is not below either side's minimum.
fn negotiate(api: ApiKey, ours: VersionRange, broker: Option<VersionRange>) -> Result<i16> {
    let broker = broker.with_context(|| format!("broker does not support {api:?}"))?;
    let common = ours.intersect(&broker);
    ensure!(
        !common.is_empty(),
        "no common {api:?} version: clusterctl speaks {ours}, broker {broker}"
    );
    Ok(common.max)
}

/// Encodes one request as `[len][header][body]`.
fn encode_request<R: Call>(req: &R, version: i16, correlation_id: i32) -> Result<Bytes> {
    let api = R::API;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::new();
    buf.put_i32(0); // length, patched below
    header.encode(&mut buf, api.request_header_version(version))?;
    req.encode(&mut buf, version)
        .with_context(|| format!("encoding {api:?} v{version}"))?;
    let len = i32::try_from(buf.len() - 4).context("request too large")?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Strips and checks the response header; returns the body.
fn strip_response_header(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes> {
    // ApiVersions responses always use header v0 (the broker cannot know yet
    // whether the client understands flexible headers); the table says so.
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .context("decoding response header")?;
    ensure!(
        header.correlation_id == correlation_id,
        "correlation id mismatch: sent {correlation_id}, got {}",
        header.correlation_id
    );
    Ok(frame)
}

/// Reads one length-prefixed frame (without the length).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Bytes> {
    let len = r.read_i32().await.context("reading frame length")?;
    let len = usize::try_from(len)
        .ok()
        .filter(|n| (4..=MAX_FRAME_BYTES).contains(n))
        .with_context(|| format!("implausible frame length {len} (not a Kafka listener?)"))?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .await
        .context("reading frame body")?;
    Ok(Bytes::from(body))
}

/// Parses an ApiVersions body sent in reply to a v3 request. A broker that
/// does not know v3 answers `UNSUPPORTED_VERSION` with a v0 body that still
/// lists its ranges, so that case is parsed as v0.
/// The API version ranges, and the cluster's finalized feature levels (ApiVersions v3+).
fn parse_api_versions(body: Bytes) -> Result<(BrokerVersions, BTreeMap<String, i16>)> {
    ensure!(body.len() >= 2, "ApiVersions response too short");
    let error_code = (&body[..2]).get_i16();
    let version = if error_code == UNSUPPORTED_VERSION {
        0
    } else {
        API_VERSIONS_VERSION
    };
    let resp = ApiVersionsResponse::decode(&mut body.clone(), version)
        .with_context(|| format!("decoding ApiVersions v{version} body"))?;
    if resp.error_code != 0 && resp.error_code != UNSUPPORTED_VERSION {
        bail!("ApiVersions failed: {}", code_name(resp.error_code));
    }
    let versions = resp
        .api_keys
        .iter()
        .map(|k| {
            let range = VersionRange {
                min: k.min_version,
                max: k.max_version,
            };
            (k.api_key, range)
        })
        .collect();
    let features = resp
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.max_version_level))
        .collect();
    Ok((versions, features))
}

/// Keeps only the complete record batches of a fetched `records` blob: a
/// broker may cut the last batch at `partition_max_bytes`, and the decoder
/// would fail on that fragment. Batch layout: `i64 base offset, i32 length`.
fn complete_batches(data: &Bytes) -> Bytes {
    let mut end = 0;
    while data.len() >= end + 12 {
        let len = (&data[end + 8..end + 12]).get_i32();
        let Some(next) = usize::try_from(len).ok().map(|l| end + 12 + l) else {
            break;
        };
        if next > data.len() {
            break;
        }
        end = next;
    }
    data.slice(..end)
}

/// Decodes fetched batches into `(offset, key, value)`, dropping control
/// records (transaction markers) and records before `from_offset` (a batch
/// may start before the requested offset). Also returns the next offset to
/// fetch, which accounts for control records.
fn decode_fetched(data: &Bytes, from_offset: i64) -> Result<(Vec<FetchedRecord>, i64)> {
    let mut buf = complete_batches(data);
    let mut next = from_offset;
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut buf).context("decoding record batches")? {
        for r in set.records {
            next = next.max(r.offset + 1);
            if r.control || r.offset < from_offset {
                continue;
            }
            let to_vec = |b: Option<Bytes>| b.map(|b| b.to_vec());
            out.push((r.offset, to_vec(r.key), to_vec(r.value)));
        }
    }
    Ok((out, next))
}

/// One uncompressed v2 record batch holding a single non-transactional record.
fn encode_single_record(key: Option<&[u8]>, value: &[u8], timestamp_ms: i64) -> Result<Bytes> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: NO_SEQUENCE,
        timestamp: timestamp_ms,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    };
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, [&record], &options).context("encoding record batch")?;
    Ok(buf.freeze())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// Whether a topic admin call succeeded or must be sent to the controller.
enum AdminOutcome {
    Done,
    NotController,
}

/// One connection to one broker. Every call is bounded by the timeout given
/// to [`KafkaClient::connect`].
pub struct KafkaClient {
    addr: String,
    stream: crate::net::BoxStream,
    timeout: Duration,
    next_correlation_id: i32,
    versions: BrokerVersions,
    /// The cluster's finalized feature levels, as this broker reported them at connect.
    features: BTreeMap<String, i16>,
    /// Set when a call was cut off mid-exchange (timeout, I/O error): the
    /// byte stream may be misaligned, so the connection must not be reused.
    broken: bool,
    /// The broker's TLS certificate (DER), on a TLS listener.
    peer_cert: Option<Vec<u8>>,
}

impl KafkaClient {
    /// Connects to `addr` (`host:port`) and negotiates API versions, with TLS and SASL as the
    /// command installed them for the port ([`install_auth`]).
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Self> {
        Self::connect_with(addr, timeout, &auth::for_addr(addr)).await
    }

    /// [`KafkaClient::connect`] with the listener's settings given.
    pub async fn connect_with(addr: &str, timeout: Duration, how: &ListenerAuth) -> Result<Self> {
        let stream = crate::net::dial(addr, timeout)
            .await
            .with_context(|| format!("Kafka {addr}: connect failed"))?;
        let (stream, peer_cert) = auth::secure(stream, addr, how, timeout).await?;
        let mut client = Self {
            addr: addr.to_string(),
            stream,
            timeout,
            next_correlation_id: 1,
            versions: BrokerVersions::new(),
            features: BTreeMap::new(),
            broken: false,
            peer_cert,
        };
        (client.versions, client.features) = client.api_versions().await?;
        if let Some(login) = &how.sasl {
            client.authenticate(login).await?;
        }
        Ok(client)
    }

    /// How many APIs the broker offers (its ApiVersions answer).
    pub fn api_count(&self) -> usize {
        self.versions.len()
    }

    /// The version this client uses for `api` with this broker, if any.
    #[cfg(test)]
    pub fn api_version(&self, api: ApiKey) -> Option<i16> {
        negotiate(
            api,
            our_versions(api),
            self.versions.get(&(api as i16)).copied(),
        )
        .ok()
    }

    async fn api_versions(&mut self) -> Result<(BrokerVersions, BTreeMap<String, i16>)> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let cid = self.correlation_id();
        let frame = encode_request(&req, API_VERSIONS_VERSION, cid)?;
        let label = format!("Kafka {}: ApiVersions", self.addr);
        let what = || label.clone();
        let body = self
            .roundtrip(&frame, self.timeout)
            .await
            .with_context(what)?;
        let body = strip_response_header(body, ApiKey::ApiVersions, API_VERSIONS_VERSION, cid)
            .with_context(what)?;
        parse_api_versions(body).with_context(what)
    }

    /// A finalized feature's level (e.g. `kraft.version`); `None`: not finalized (level 0).
    pub fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    fn correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = id.wrapping_add(1);
        id
    }

    /// Writes one frame and reads one frame, under `io_timeout`.
    async fn roundtrip(&mut self, frame: &[u8], io_timeout: Duration) -> Result<Bytes> {
        ensure!(
            !self.broken,
            "connection is unusable after an earlier failure; reconnect"
        );
        self.broken = true;
        let stream = &mut self.stream;
        let exchange = async {
            stream.write_all(frame).await.context("sending request")?;
            read_frame(stream).await
        };
        let body = tokio::time::timeout(io_timeout, exchange)
            .await
            .map_err(|_| anyhow!("no response within {io_timeout:?}"))??;
        self.broken = false;
        Ok(body)
    }

    /// Sends `req` at the negotiated version and decodes the response.
    async fn call<R: Call>(&mut self, req: &R, io_timeout: Duration) -> Result<R::Response> {
        let version = self.version(R::API)?;
        self.call_at(req, version, io_timeout).await
    }

    async fn call_at<R: Call>(
        &mut self,
        req: &R,
        version: i16,
        io_timeout: Duration,
    ) -> Result<R::Response> {
        let api = R::API;
        let label = format!("Kafka {}: {api:?} v{version}", self.addr);
        let what = || label.clone();
        let cid = self.correlation_id();
        let frame = encode_request(req, version, cid).with_context(what)?;
        let body = self
            .roundtrip(&frame, io_timeout)
            .await
            .with_context(what)?;
        // A frame that does not decode as the answer to what we just sent
        // means the peer and we disagree on the stream: do not reuse it.
        let decoded = strip_response_header(body, api, version, cid).and_then(|mut body| {
            R::Response::decode(&mut body, version).context("decoding response body")
        });
        self.broken = decoded.is_err();
        decoded.with_context(what)
    }

    fn version(&self, api: ApiKey) -> Result<i16> {
        negotiate(
            api,
            our_versions(api),
            self.versions.get(&(api as i16)).copied(),
        )
        .with_context(|| format!("Kafka {}", self.addr))
    }

    fn api_error(
        &self,
        api: ApiKey,
        resource: &str,
        code: i16,
        message: Option<&StrBytes>,
    ) -> ApiError {
        ApiError {
            broker: self.addr.clone(),
            api,
            resource: resource.to_string(),
            error: ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code)),
            message: message.map(|m| m.to_string()),
        }
    }

    /// Metadata for `topics`, or for all topics when `None` (`Some(&[])`
    /// asks for brokers and controller only). Never auto-creates topics.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let version = self.version(ApiKey::Metadata)?;
        let topics = topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        });
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        let resp = self.call_at(&req, version, self.timeout).await?;
        if resp.error_code != 0 {
            return Err(self
                .api_error(ApiKey::Metadata, "cluster", resp.error_code, None)
                .into());
        }
        Ok(to_cluster_metadata(resp))
    }

    /// Connects to the controller named by this broker's metadata.
    pub(super) async fn connect_controller(&mut self) -> Result<KafkaClient> {
        let meta = self.metadata(Some(&[])).await?;
        let controller = meta.controller().with_context(|| {
            format!(
                "Kafka {}: controller {} is not among the live brokers",
                self.addr, meta.controller_id
            )
        })?;
        KafkaClient::connect(&controller.addr(), self.timeout).await
    }

    /// Creates a topic; an existing topic is success (its settings are not
    /// compared). Brokers that are not the controller (ZooKeeper mode before
    /// forwarding) answer `NotController`: the request is then re-sent to
    /// the controller from metadata.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<()> {
        let req =
            create_topics_request(name, partitions, replication_factor, configs, self.timeout);
        if let AdminOutcome::Done = self.create_topics_here(&req, name).await? {
            return Ok(());
        }
        let mut controller = self.connect_controller().await?;
        match controller.create_topics_here(&req, name).await? {
            AdminOutcome::Done => Ok(()),
            AdminOutcome::NotController => Err(controller
                .api_error(
                    ApiKey::CreateTopics,
                    name,
                    ResponseError::NotController.code(),
                    None,
                )
                .into()),
        }
    }

    async fn create_topics_here(
        &mut self,
        req: &CreateTopicsRequest,
        name: &str,
    ) -> Result<AdminOutcome> {
        // The broker waits up to `timeout_ms` for the creation to complete.
        let resp = self.call(req, self.timeout * 2).await?;
        let result = resp
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == name)
            .with_context(|| {
                format!(
                    "Kafka {}: CreateTopics response lacks topic {name}",
                    self.addr
                )
            })?;
        match ResponseError::try_from_code(result.error_code) {
            None | Some(ResponseError::TopicAlreadyExists) => Ok(AdminOutcome::Done),
            Some(ResponseError::NotController) => Ok(AdminOutcome::NotController),
            Some(_) => Err(self
                .api_error(
                    ApiKey::CreateTopics,
                    name,
                    result.error_code,
                    result.error_message.as_ref(),
                )
                .into()),
        }
    }

    /// Produces one record with `acks=-1` and returns its offset.
    ///
    /// Caller contract: this client must be connected to the partition's
    /// current leader (see [`ClusterMetadata::partition`] and
    /// [`BrokerInfo::addr`]); otherwise the broker answers
    /// `NotLeaderOrFollower`, returned as an [`ApiError`].
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<i64> {
        let records = encode_single_record(key, value, now_ms())?;
        let data = PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records));
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(millis_i32(self.timeout))
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![data]),
            ]);
        // The broker itself waits up to `timeout_ms` for the ISR to ack.
        let resp = self.call(&req, self.timeout * 2).await?;
        let resource = format!("{topic}-{partition}");
        let p = resp
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .with_context(|| format!("Kafka {}: Produce response lacks {resource}", self.addr))?;
        if p.error_code != 0 {
            return Err(self
                .api_error(
                    ApiKey::Produce,
                    &resource,
                    p.error_code,
                    p.error_message.as_ref(),
                )
                .into());
        }
        Ok(p.base_offset)
    }

    /// The high watermark (next offset a consumer would see) of a partition.
    /// Must be sent to the leader.
    pub async fn end_offset(&mut self, topic: &str, partition: i32) -> Result<i64> {
        // Timestamp -1 = LATEST. replica_id must be -1 (a consumer): the
        // crate defaults it to 0, which would ask as if we were broker 0.
        let part = ListOffsetsPartition::default()
            .with_partition_index(partition)
            .with_timestamp(-1);
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_timeout_ms(millis_i32(self.timeout))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![part]),
            ]);
        let resp = self.call(&req, self.timeout).await?;
        let resource = format!("{topic}-{partition}");
        let p = resp
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .with_context(|| {
                format!("Kafka {}: ListOffsets response lacks {resource}", self.addr)
            })?;
        if p.error_code != 0 {
            return Err(self
                .api_error(ApiKey::ListOffsets, &resource, p.error_code, None)
                .into());
        }
        Ok(p.offset)
    }

    /// Reads every record from `from_offset` up to the high watermark taken
    /// at the start of the call (`from_offset` at or past it gives an empty
    /// list). Must be sent to the leader. `max_wait` bounds the whole call;
    /// running out of it is an error that says how far the read got.
    pub async fn fetch_all(
        &mut self,
        topic: &str,
        partition: i32,
        from_offset: i64,
        max_wait: Duration,
    ) -> Result<Vec<FetchedRecord>> {
        let deadline = Instant::now() + max_wait;
        let end = self.end_offset(topic, partition).await?;
        let mut next = from_offset;
        let mut out = Vec::new();
        for _ in 0..MAX_FETCH_ROUNDS {
            if next >= end {
                return Ok(out);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let wait = remaining.min(Duration::from_millis(500));
            let data = self.fetch_once(topic, partition, next, wait).await?;
            let (records, after) = decode_fetched(&data, next)
                .with_context(|| format!("Kafka {}: Fetch {topic}-{partition}", self.addr))?;
            out.extend(records);
            next = after;
        }
        bail!(
            "Kafka {}: Fetch {topic}-{partition} reached offset {next} of {end} within {max_wait:?}",
            self.addr
        )
    }

    async fn fetch_once(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        wait: Duration,
    ) -> Result<Bytes> {
        let part = FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(FETCH_PARTITION_MAX_BYTES);
        let req = FetchRequest::default()
            .with_max_wait_ms(millis_i32(wait))
            .with_min_bytes(1)
            .with_max_bytes(FETCH_PARTITION_MAX_BYTES)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![part]),
            ]);
        // The broker may legitimately hold the request for `wait`.
        let resp = self.call(&req, self.timeout + wait).await?;
        let resource = format!("{topic}-{partition}");
        if resp.error_code != 0 {
            return Err(self
                .api_error(ApiKey::Fetch, &resource, resp.error_code, None)
                .into());
        }
        let p = resp
            .responses
            .iter()
            .filter(|t| t.topic.0.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .with_context(|| format!("Kafka {}: Fetch response lacks {resource}", self.addr))?;
        if p.error_code != 0 {
            return Err(self
                .api_error(ApiKey::Fetch, &resource, p.error_code, None)
                .into());
        }
        Ok(p.records.clone().unwrap_or_default())
    }
}

fn create_topics_request(
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
    timeout: Duration,
) -> CreateTopicsRequest {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(configs);
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(millis_i32(timeout))
}

mod access_calls;
mod auth;
mod scram;
pub use access_calls::{
    AclBinding, AclOperation, AclPattern, AclPermission, AclResourceType, ScramUpsert,
};
pub use auth::{
    ListenerAuth, SaslLogin, SaslMechanism, handshake, install_auth, is_auth_failure, tls_config,
    tls_config_with_certificate,
};
pub use scram::{salted_password, server_keys};
mod broker_configs;
pub use broker_configs::{BrokerConfig, SOURCE_DYNAMIC_BROKER};

// ---------------------------------------------------------------------------
// Topic administration
// ---------------------------------------------------------------------------

mod reassign;

mod quorum;
pub use quorum::QuorumInfo;
pub use reassign::{Ongoing, RESOURCE_BROKER, RESOURCE_TOPIC, Reassignment};

/// DeleteTopics, CreatePartitions, DescribeConfigs and IncrementalAlterConfigs
/// for `clusterctl topics`, as more [`KafkaClient`] methods. A module of its
/// own so that its imports stay next to it.
mod admin {
    use anyhow::{Context, Result};
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, DeleteTopicsRequest,
        DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    use kafka_protocol::protocol::StrBytes;

    use super::{AdminOutcome, Call, KafkaClient, TopicInfo, code_name, millis_i32, topic_name};

    calls! {
        DeleteTopicsRequest => DeleteTopicsResponse, DeleteTopics;
        CreatePartitionsRequest => CreatePartitionsResponse, CreatePartitions;
        DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs;
        IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse, IncrementalAlterConfigs;
    }

    /// `ConfigResource.Type.TOPIC`.
    const RESOURCE_TOPIC: i8 = 2;
    /// `ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG`: set on the topic itself.
    const SOURCE_TOPIC_OVERRIDE: i8 = 1;
    /// `AlterConfigOp.OpType` SET and DELETE.
    const OP_SET: i8 = 0;
    const OP_DELETE: i8 = 1;

    impl TopicInfo {
        /// False when the broker answered `UnknownTopicOrPartition` for it.
        pub fn exists(&self) -> bool {
            self.error.as_deref()
                != Some(code_name(ResponseError::UnknownTopicOrPartition.code()).as_str())
        }
    }

    impl KafkaClient {
        /// Deletes a topic; a topic that does not exist is success. Redirects to
        /// the controller like [`KafkaClient::create_topic`]. In ZooKeeper mode
        /// the deletion completes in the background after this returns.
        pub async fn delete_topic(&mut self, name: &str) -> Result<()> {
            if let AdminOutcome::Done = self.delete_topic_here(name).await? {
                return Ok(());
            }
            let mut controller = self.connect_controller().await?;
            match controller.delete_topic_here(name).await? {
                AdminOutcome::Done => Ok(()),
                AdminOutcome::NotController => Err(controller
                    .api_error(
                        ApiKey::DeleteTopics,
                        name,
                        ResponseError::NotController.code(),
                        None,
                    )
                    .into()),
            }
        }

        async fn delete_topic_here(&mut self, name: &str) -> Result<AdminOutcome> {
            let version = self.version(ApiKey::DeleteTopics)?;
            let req = delete_topics_request(name, version, millis_i32(self.timeout));
            let resp = self.call_at(&req, version, self.timeout * 2).await?;
            let result = resp
                .responses
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
                .with_context(|| {
                    format!(
                        "Kafka {}: DeleteTopics response lacks topic {name}",
                        self.addr
                    )
                })?;
            match ResponseError::try_from_code(result.error_code) {
                None | Some(ResponseError::UnknownTopicOrPartition) => Ok(AdminOutcome::Done),
                Some(ResponseError::NotController) => Ok(AdminOutcome::NotController),
                Some(_) => Err(self
                    .api_error(
                        ApiKey::DeleteTopics,
                        name,
                        result.error_code,
                        result.error_message.as_ref(),
                    )
                    .into()),
            }
        }

        /// Grows `topic` to `total_count` partitions; new partitions get
        /// replicas placed by the controller. Kafka cannot shrink a topic: a
        /// count at or below the current one is an `InvalidPartitions` error.
        /// Redirects to the controller like [`KafkaClient::create_topic`].
        pub async fn create_partitions(&mut self, topic: &str, total_count: i32) -> Result<()> {
            let req = create_partitions_request(topic, total_count, millis_i32(self.timeout));
            if let AdminOutcome::Done = self.create_partitions_here(&req, topic).await? {
                return Ok(());
            }
            let mut controller = self.connect_controller().await?;
            match controller.create_partitions_here(&req, topic).await? {
                AdminOutcome::Done => Ok(()),
                AdminOutcome::NotController => Err(controller
                    .api_error(
                        ApiKey::CreatePartitions,
                        topic,
                        ResponseError::NotController.code(),
                        None,
                    )
                    .into()),
            }
        }

        async fn create_partitions_here(
            &mut self,
            req: &CreatePartitionsRequest,
            topic: &str,
        ) -> Result<AdminOutcome> {
            // The broker waits up to `timeout_ms` for the new partitions.
            let resp = self.call(req, self.timeout * 2).await?;
            let result = resp
                .results
                .iter()
                .find(|r| r.name.0.as_str() == topic)
                .with_context(|| {
                    format!(
                        "Kafka {}: CreatePartitions response lacks topic {topic}",
                        self.addr
                    )
                })?;
            match ResponseError::try_from_code(result.error_code) {
                None => Ok(AdminOutcome::Done),
                Some(ResponseError::NotController) => Ok(AdminOutcome::NotController),
                Some(_) => Err(self
                    .api_error(
                        ApiKey::CreatePartitions,
                        topic,
                        result.error_code,
                        result.error_message.as_ref(),
                    )
                    .into()),
            }
        }

        /// The configs set on `topic` itself (what `kafka-configs --describe
        /// --entity-type topics` shows), sorted by name: broker settings and
        /// built-in defaults are left out. Any broker can answer.
        pub async fn describe_topic_configs(
            &mut self,
            topic: &str,
        ) -> Result<Vec<(String, String)>> {
            let resource = DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None);
            let req = DescribeConfigsRequest::default().with_resources(vec![resource]);
            let resp = self.call(&req, self.timeout).await?;
            let result = resp
                .results
                .iter()
                .find(|r| r.resource_type == RESOURCE_TOPIC && r.resource_name.as_str() == topic)
                .with_context(|| {
                    format!(
                        "Kafka {}: DescribeConfigs response lacks topic {topic}",
                        self.addr
                    )
                })?;
            if result.error_code != 0 {
                return Err(self
                    .api_error(
                        ApiKey::DescribeConfigs,
                        topic,
                        result.error_code,
                        result.error_message.as_ref(),
                    )
                    .into());
            }
            Ok(topic_overrides(result))
        }

        /// Sets (`Some(value)`) or removes (`None`: back to the broker's
        /// default) configs of `topic` in one IncrementalAlterConfigs call.
        /// The broker checks names and values and applies all or nothing.
        pub async fn alter_topic_configs(
            &mut self,
            topic: &str,
            changes: &[(String, Option<String>)],
        ) -> Result<()> {
            let req = alter_configs_request(topic, changes);
            let resp = self.call(&req, self.timeout).await?;
            let result = resp
                .responses
                .iter()
                .find(|r| r.resource_type == RESOURCE_TOPIC && r.resource_name.as_str() == topic)
                .with_context(|| {
                    format!(
                        "Kafka {}: IncrementalAlterConfigs response lacks topic {topic}",
                        self.addr
                    )
                })?;
            if result.error_code != 0 {
                return Err(self
                    .api_error(
                        ApiKey::IncrementalAlterConfigs,
                        topic,
                        result.error_code,
                        result.error_message.as_ref(),
                    )
                    .into());
            }
            Ok(())
        }
    }

    /// v6 moved names into `topics` (which may carry ids instead).
    fn delete_topics_request(name: &str, version: i16, timeout_ms: i32) -> DeleteTopicsRequest {
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
        if version >= 6 {
            req.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(name)))];
        } else {
            req.topic_names = vec![topic_name(name)];
        }
        req
    }

    fn create_partitions_request(
        topic: &str,
        total_count: i32,
        timeout_ms: i32,
    ) -> CreatePartitionsRequest {
        let t = CreatePartitionsTopic::default()
            .with_name(topic_name(topic))
            .with_count(total_count)
            .with_assignments(None);
        CreatePartitionsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(timeout_ms)
    }

    /// Topic-level overrides, sorted by name. Brokers never return the value
    /// of a sensitive config; it reads `<sensitive>`.
    fn topic_overrides(result: &DescribeConfigsResult) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = result
            .configs
            .iter()
            .filter(|c| c.config_source == SOURCE_TOPIC_OVERRIDE)
            .map(|c| {
                let value = match &c.value {
                    Some(v) => v.to_string(),
                    None if c.is_sensitive => "<sensitive>".to_string(),
                    None => String::new(),
                };
                (c.name.to_string(), value)
            })
            .collect();
        out.sort();
        out
    }

    fn alter_configs_request(
        topic: &str,
        changes: &[(String, Option<String>)],
    ) -> IncrementalAlterConfigsRequest {
        let configs = changes
            .iter()
            .map(|(name, value)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(if value.is_some() { OP_SET } else { OP_DELETE })
                    .with_value(value.clone().map(StrBytes::from_string))
            })
            .collect();
        let resource = AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(configs);
        IncrementalAlterConfigsRequest::default().with_resources(vec![resource])
    }

    #[cfg(test)]
    mod tests {
        use super::super::encode_request;
        use super::*;
        use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;

        #[test]
        fn delete_request_names_the_topic_in_the_field_of_its_version() {
            let v6 = delete_topics_request("t", 6, 5000);
            assert_eq!(v6.topics[0].name.as_ref().map(|n| n.0.as_str()), Some("t"));
            assert!(v6.topic_names.is_empty());
            assert!(encode_request(&v6, 6, 1).is_ok());
            let v5 = delete_topics_request("t", 5, 5000);
            assert_eq!(v5.topic_names[0].0.as_str(), "t");
            assert!(v5.topics.is_empty());
            assert!(encode_request(&v5, 5, 1).is_ok());
            // A v6 body cannot be sent as v5: the version switch matters.
            assert!(encode_request(&v6, 5, 1).is_err());
        }

        #[test]
        fn create_partitions_request_asks_for_the_total_count() {
            let req = create_partitions_request("t", 6, 3000);
            assert_eq!(req.timeout_ms, 3000);
            assert_eq!(req.topics[0].name.0.as_str(), "t");
            assert_eq!(req.topics[0].count, 6);
            assert!(req.topics[0].assignments.is_none());
            assert!(!req.validate_only);
            assert!(encode_request(&req, 3, 1).is_ok());
        }

        #[test]
        fn alter_request_sets_and_deletes() {
            let changes = [
                ("retention.ms".to_string(), Some("60000".to_string())),
                ("cleanup.policy".to_string(), None),
            ];
            let req = alter_configs_request("orders", &changes);
            // v0 (classic) and v1 (flexible), the versions Kafka 2.3+ offers.
            for version in 0..=1 {
                assert!(encode_request(&req, version, 1).is_ok(), "v{version}");
            }
            let r = &req.resources[0];
            assert_eq!((r.resource_type, r.resource_name.as_str()), (2, "orders"));
            let ops: Vec<_> = r
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.as_str(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.as_str()),
                    )
                })
                .collect();
            assert_eq!(
                ops,
                vec![
                    ("retention.ms", OP_SET, Some("60000")),
                    ("cleanup.policy", OP_DELETE, None)
                ]
            );
        }

        #[test]
        fn only_topic_overrides_are_reported_sorted() {
            let entry = |name: &str, value: Option<&str>, source: i8, sensitive: bool| {
                DescribeConfigsResourceResult::default()
                    .with_name(StrBytes::from_string(name.to_string()))
                    .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
                    .with_config_source(source)
                    .with_is_sensitive(sensitive)
            };
            let result = DescribeConfigsResult::default().with_configs(vec![
                entry("segment.bytes", Some("1073741824"), 4, false), // static broker
                entry("retention.ms", Some("60000"), SOURCE_TOPIC_OVERRIDE, false),
                entry(
                    "cleanup.policy",
                    Some("compact"),
                    SOURCE_TOPIC_OVERRIDE,
                    false,
                ),
                entry("flush.ms", Some("9223372036854775807"), 5, false), // default
                entry("secret.thing", None, SOURCE_TOPIC_OVERRIDE, true),
            ]);
            assert_eq!(
                topic_overrides(&result),
                vec![
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    ("retention.ms".to_string(), "60000".to_string()),
                    ("secret.thing".to_string(), "<sensitive>".to_string()),
                ]
            );
        }

        #[test]
        fn unknown_topic_does_not_exist() {
            let t = |error: Option<&str>| TopicInfo {
                name: "t".into(),
                error: error.map(str::to_string),
                partitions: vec![],
            };
            assert!(!t(Some("UnknownTopicOrPartition (3)")).exists());
            assert!(t(Some("LeaderNotAvailable (5)")).exists());
            assert!(t(None).exists());
        }
    }
}

// ---------------------------------------------------------------------------
// Smoke test
// ---------------------------------------------------------------------------

/// What [`smoke`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeReport {
    pub topic: String,
    pub partition: i32,
    pub leader_id: i32,
    pub leader_addr: String,
    pub offset: i64,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Attempts across all steps (1 per step when nothing had to be retried).
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Marks an error that retrying cannot fix.
#[derive(Debug)]
struct Permanent(String);

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Permanent {}

/// Whether a smoke step failing with `e` may succeed later. Transport
/// errors and retriable Kafka errors can (brokers restarting, leaders
/// moving); so can a too-high replication factor while brokers are still
/// registering.
fn worth_retrying(e: &anyhow::Error) -> bool {
    if e.is::<Permanent>() || is_auth_failure(e) {
        return false;
    }
    match e.downcast_ref::<ApiError>() {
        None => true,
        Some(a) => {
            a.error.is_retriable()
                || matches!(
                    a.error,
                    ResponseError::InvalidReplicationFactor
                        | ResponseError::NotController
                        | ResponseError::BrokerNotAvailable
                        | ResponseError::NotEnoughReplicasAfterAppend
                )
        }
    }
}

/// Runs `step` until it succeeds, fails permanently, the deadline passes or
/// `SMOKE_MAX_ATTEMPTS` is reached, with exponential backoff (200 ms..2 s).
async fn retry<T, F, Fut>(
    what: &str,
    deadline: Instant,
    attempts: &mut u32,
    mut step: F,
) -> Result<T>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=SMOKE_MAX_ATTEMPTS {
        *attempts += 1;
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(SMOKE_CALL_TIMEOUT);
        if budget.is_zero() {
            bail!("{what}: no time left (earlier steps used the whole budget)");
        }
        let err = match step(budget).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let out_of_time = Instant::now() + delay >= deadline;
        if !worth_retrying(&err) || out_of_time || attempt == SMOKE_MAX_ATTEMPTS {
            return Err(err.context(format!("{what}: gave up after {attempt} attempt(s)")));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    unreachable!("the last attempt returns")
}

/// Connects to the first bootstrap address that answers.
pub async fn connect_any(bootstrap: &[String], timeout: Duration) -> Result<KafkaClient> {
    let mut failures = Vec::new();
    for addr in bootstrap {
        match KafkaClient::connect(addr, timeout).await {
            Ok(c) => return Ok(c),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if bootstrap.is_empty() {
        return Err(Permanent("no bootstrap brokers given".into()).into());
    }
    bail!("no bootstrap broker answered: {}", failures.join("; "))
}

/// The partition once it has a live leader and a full ISR, with the leader.
fn ready_partition(
    meta: &ClusterMetadata,
    topic: &str,
    partition: i32,
    rf: i16,
) -> Result<(BrokerInfo, PartitionInfo)> {
    let p = meta
        .partition(topic, partition)
        .with_context(|| format!("{topic}-{partition} is not in metadata yet"))?;
    if let Some(e) = &p.error {
        // LeaderNotAvailable right after creation; retried.
        bail!("{topic}-{partition}: {e}");
    }
    if p.replicas.len() < rf as usize {
        // The topic existed with a smaller replication factor: waiting
        // cannot fix that.
        return Err(Permanent(format!(
            "{topic}-{partition} has replicas {:?}, fewer than the requested replication factor {rf}",
            p.replicas
        ))
        .into());
    }
    let leader = meta.broker(p.leader).with_context(|| {
        format!(
            "{topic}-{partition} has no live leader (leader {})",
            p.leader
        )
    })?;
    ensure!(
        p.isr.len() == p.replicas.len(),
        "{topic}-{partition} ISR {:?} is not yet all replicas {:?}",
        p.isr,
        p.replicas
    );
    Ok((leader.clone(), p.clone()))
}

/// End-to-end check: create `topic` (1 partition, replication factor `rf`,
/// `min.insync.replicas = min(2, rf)`), wait until its partition has a live
/// leader and a full ISR, produce a unique record to the leader with
/// `acks=-1`, and read it back from the leader.
///
/// `timeout` bounds the whole call. Each step is retried with backoff while
/// the cluster may still be settling; every broker call gets at most 10 s.
/// The topic is kept, so repeated runs reuse it.
pub async fn smoke(
    bootstrap: &[String],
    topic: &str,
    rf: i16,
    timeout: Duration,
) -> Result<SmokeReport> {
    ensure!(
        rf >= 1,
        "smoke: replication factor must be at least 1, got {rf}"
    );
    let started = Instant::now();
    let deadline = started + timeout;
    let mut attempts = 0;
    let configs = &[(
        "min.insync.replicas".to_string(),
        rf.clamp(1, 2).to_string(),
    )];

    retry(
        "smoke: create topic",
        deadline,
        &mut attempts,
        |t| async move {
            let mut c = connect_any(bootstrap, t).await?;
            c.create_topic(topic, 1, rf, configs).await
        },
    )
    .await?;

    let wait_ready = |t| async move {
        let mut c = connect_any(bootstrap, t).await?;
        let meta = c.metadata(Some(&[topic.to_string()])).await?;
        ready_partition(&meta, topic, 0, rf)
    };
    retry(
        "smoke: wait for leader and full ISR",
        deadline,
        &mut attempts,
        wait_ready,
    )
    .await?;

    let value = format!(
        "clusterctl-smoke pid={} t={}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let key: &[u8] = b"clusterctl-smoke";
    let (leader, part, offset) = retry("smoke: produce", deadline, &mut attempts, |t| {
        let value = value.as_bytes();
        async move {
            // Re-read the leader each attempt: it may have moved.
            let (leader, part) = wait_ready(t).await?;
            let mut c = KafkaClient::connect(&leader.addr(), t).await?;
            let offset = c.produce(topic, 0, Some(key), value).await?;
            Ok((leader, part, offset))
        }
    })
    .await?;

    let leader_addr = leader.addr();
    retry("smoke: read back", deadline, &mut attempts, |t| {
        let value = value.as_bytes();
        async move {
            // From the leader of now: leadership may move right after the produce (a preferred
            // leader election after a roll), and the record was acknowledged by the whole ISR.
            let (now, _) = wait_ready(t).await?;
            let mut c = KafkaClient::connect(&now.addr(), t).await?;
            let records = c.fetch_all(topic, 0, offset, t).await?;
            check_read_back(&records, offset, key, value)
        }
    })
    .await?;

    Ok(SmokeReport {
        topic: topic.to_string(),
        partition: 0,
        leader_id: leader.id,
        leader_addr,
        offset,
        replicas: part.replicas,
        isr: part.isr,
        attempts,
        elapsed: started.elapsed(),
    })
}

fn check_read_back(records: &[FetchedRecord], offset: i64, key: &[u8], value: &[u8]) -> Result<()> {
    let (_, k, v) = records
        .iter()
        .find(|(o, _, _)| *o == offset)
        .with_context(|| format!("record at offset {offset} not returned by Fetch"))?;
    if k.as_deref() != Some(key) || v.as_deref() != Some(value) {
        return Err(Permanent(format!(
            "record at offset {offset} has a different key/value than produced"
        ))
        .into());
    }
    Ok(())
}

/// Fabricated metadata for unit tests across the crate.
#[cfg(test)]
pub mod fixtures {
    use super::{BrokerInfo, PartitionInfo};

    pub fn broker(id: i32) -> BrokerInfo {
        BrokerInfo {
            id,
            host: format!("kafka{id}"),
            port: 9092,
            rack: None,
        }
    }

    pub fn partition(id: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionInfo {
        PartitionInfo {
            id,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline: vec![],
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{broker, partition};
    use super::*;
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::protocol::buf::ByteBuf;

    fn cluster(brokers: &[i32], partitions: Vec<PartitionInfo>) -> ClusterMetadata {
        ClusterMetadata {
            brokers: brokers.iter().map(|&id| broker(id)).collect(),
            controller_id: brokers[0],
            cluster_id: Some("abc".into()),
            topics: vec![TopicInfo {
                name: "t".into(),
                error: None,
                partitions,
            }],
        }
    }

    #[test]
    fn under_replicated_and_offline() {
        let mut lost = partition(3, 2, &[2, 3], &[2]);
        lost.offline = vec![3];
        let meta = cluster(
            &[1, 2],
            vec![
                partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                partition(1, 1, &[1, 2, 3], &[1, 2]),
                partition(2, -1, &[3], &[]),
                lost,
                // Leader 3 is not a live broker: stale metadata, unavailable.
                partition(4, 3, &[3, 1], &[3, 1]),
            ],
        );
        let t = |p| ("t".to_string(), p);
        assert_eq!(meta.under_replicated(), vec![t(1), t(2), t(3)]);
        assert_eq!(meta.offline(), vec![t(2), t(4)]);
        assert_eq!(meta.with_offline_replicas(), vec![t(3)]);
        assert_eq!(meta.controller().map(|b| b.id), Some(1));
        assert_eq!(meta.partition("t", 1).map(|p| p.isr.len()), Some(2));
        assert!(meta.partition("u", 1).is_none());
    }

    #[test]
    fn ready_partition_needs_live_leader_and_full_isr() {
        let ready = cluster(&[1, 2, 3], vec![partition(0, 2, &[2, 3, 1], &[2, 3, 1])]);
        let (leader, p) = ready_partition(&ready, "t", 0, 3).unwrap();
        assert_eq!((leader.id, leader.addr()), (2, "kafka2:9092".to_string()));
        assert_eq!(p.replicas, vec![2, 3, 1]);

        let shrunk = cluster(&[1, 2, 3], vec![partition(0, 2, &[2, 3, 1], &[2, 3])]);
        let err = ready_partition(&shrunk, "t", 0, 3).unwrap_err();
        assert!(err.to_string().contains("ISR [2, 3]"), "{err}");
        assert!(worth_retrying(&err));

        let leaderless = cluster(&[1, 2, 3], vec![partition(0, -1, &[2, 3, 1], &[])]);
        assert!(ready_partition(&leaderless, "t", 0, 3).is_err());

        let small = cluster(&[1, 2, 3], vec![partition(0, 1, &[1], &[1])]);
        let err = ready_partition(&small, "t", 0, 3).unwrap_err();
        assert!(!worth_retrying(&err), "{err}");

        let missing = cluster(&[1], vec![]);
        assert!(worth_retrying(
            &ready_partition(&missing, "t", 0, 1).unwrap_err()
        ));
    }

    #[test]
    fn ipv6_broker_addr_is_bracketed() {
        let b = BrokerInfo {
            id: 1,
            host: "::1".into(),
            port: 9092,
            rack: None,
        };
        assert_eq!(b.addr(), "[::1]:9092");
    }

    #[test]
    fn versions_are_clamped_to_the_common_range() {
        let range = |min, max| Some(VersionRange { min, max });
        // Kafka 3.9 advertises Produce 0..11 and Fetch 0..17.
        assert_eq!(
            negotiate(ApiKey::Produce, our_versions(ApiKey::Produce), range(0, 11)).unwrap(),
            11
        );
        assert_eq!(
            negotiate(ApiKey::Fetch, our_versions(ApiKey::Fetch), range(0, 17)).unwrap(),
            12
        );
        // A 4.1 broker would offer v13 (topic ids); we stay on names.
        assert_eq!(
            negotiate(ApiKey::Produce, our_versions(ApiKey::Produce), range(3, 13)).unwrap(),
            12
        );
        assert_eq!(
            negotiate(
                ApiKey::Metadata,
                our_versions(ApiKey::Metadata),
                range(0, 12)
            )
            .unwrap(),
            12
        );
        let old = negotiate(
            ApiKey::Metadata,
            our_versions(ApiKey::Metadata),
            range(0, 2),
        )
        .unwrap_err();
        assert!(
            old.to_string().contains("no common Metadata version"),
            "{old}"
        );
        let none = negotiate(
            ApiKey::CreateTopics,
            our_versions(ApiKey::CreateTopics),
            None,
        )
        .unwrap_err();
        assert!(
            none.to_string().contains("does not support CreateTopics"),
            "{none}"
        );
    }

    #[test]
    fn request_frame_layout() {
        let req = MetadataRequest::default().with_topics(None);
        let frame = encode_request(&req, 12, 42).unwrap();
        let mut buf = frame.clone();
        assert_eq!(buf.get_i32() as usize, frame.len() - 4);
        assert_eq!(buf.get_i16(), ApiKey::Metadata as i16);
        assert_eq!(buf.get_i16(), 12);
        assert_eq!(buf.get_i32(), 42);
        // Header v2: client id as a (non-compact) nullable string.
        assert_eq!(buf.get_i16() as usize, CLIENT_ID.len());
        assert_eq!(
            buf.try_get_bytes(CLIENT_ID.len()).unwrap(),
            CLIENT_ID.as_bytes()
        );
    }

    #[test]
    fn invalid_field_for_version_is_an_encoding_error() {
        // v4+ would be fine; v3 cannot express "no auto-creation".
        let req = MetadataRequest::default().with_allow_auto_topic_creation(false);
        let err = encode_request(&req, 3, 1).unwrap_err();
        assert!(format!("{err:#}").contains("Metadata v3"), "{err:#}");
    }

    fn api_versions_v3_body(entries: &[(i16, i16, i16)]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_u8(entries.len() as u8 + 1); // compact array length (uvarint n+1)
        for &(k, min, max) in entries {
            b.put_i16(k);
            b.put_i16(min);
            b.put_i16(max);
            b.put_u8(0); // no tagged fields
        }
        b.put_i32(0); // throttle
        b.put_u8(0); // no tagged fields
        b.freeze()
    }

    #[test]
    fn parses_api_versions_v3() {
        let body = api_versions_v3_body(&[(0, 0, 11), (3, 0, 12), (18, 0, 4)]);
        let (v, features) = parse_api_versions(body).unwrap();
        assert!(features.is_empty());
        assert_eq!(v[&3], VersionRange { min: 0, max: 12 });
        assert_eq!(v[&18].max, 4);
    }

    #[test]
    fn unsupported_version_reply_is_parsed_as_v0() {
        let mut b = BytesMut::new();
        b.put_i16(UNSUPPORTED_VERSION);
        b.put_i32(2);
        for (k, min, max) in [(3i16, 0i16, 8i16), (18, 0, 2)] {
            b.put_i16(k);
            b.put_i16(min);
            b.put_i16(max);
        }
        let (v, _) = parse_api_versions(b.freeze()).unwrap();
        assert_eq!(v[&18], VersionRange { min: 0, max: 2 });
        assert_eq!(v[&3].max, 8);
    }

    #[test]
    fn response_header_correlation_is_checked() {
        let mut frame = BytesMut::new();
        frame.put_i32(7);
        frame.put_slice(b"body");
        let body =
            strip_response_header(frame.clone().freeze(), ApiKey::ApiVersions, 3, 7).unwrap();
        assert_eq!(&body[..], b"body");
        let err = strip_response_header(frame.freeze(), ApiKey::ApiVersions, 3, 8).unwrap_err();
        assert!(err.to_string().contains("correlation id mismatch"), "{err}");
        // Metadata v12 uses the flexible header v1: id + empty tagged fields.
        let mut flex = BytesMut::new();
        flex.put_i32(9);
        flex.put_u8(0);
        flex.put_slice(b"x");
        let body = strip_response_header(flex.freeze(), ApiKey::Metadata, 12, 9).unwrap();
        assert_eq!(&body[..], b"x");
    }

    #[tokio::test]
    async fn frames_are_length_prefixed_and_bounded() {
        let mut input: &[u8] = &[0, 0, 0, 5, 1, 2, 3, 4, 5, 0xff];
        assert_eq!(&read_frame(&mut input).await.unwrap()[..], &[1, 2, 3, 4, 5]);
        // "HTTP" read as a length: a non-Kafka peer.
        let mut http: &[u8] = b"HTTP/1.1 400 Bad Request";
        let err = read_frame(&mut http).await.unwrap_err();
        assert!(
            err.to_string().contains("implausible frame length"),
            "{err}"
        );
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(read_frame(&mut short).await.is_err());
    }

    #[test]
    fn records_round_trip_and_partial_batches_are_dropped() {
        let a = encode_single_record(Some(b"k"), b"v1", 1_700_000_000_000).unwrap();
        let b = encode_single_record(None, b"v2", 1_700_000_000_001).unwrap();
        // Fake broker-assigned offsets 5 and 6 (base offset is the first i64).
        let mut blob = BytesMut::new();
        blob.put_i64(5);
        blob.put_slice(&a[8..]);
        blob.put_i64(6);
        blob.put_slice(&b[8..]);
        let whole = blob.clone().freeze();
        blob.put_slice(&a[..20]); // a truncated third batch
        let truncated = blob.freeze();
        assert_eq!(complete_batches(&truncated).len(), whole.len());

        let (records, next) = decode_fetched(&truncated, 5).unwrap();
        assert_eq!(
            records,
            vec![
                (5, Some(b"k".to_vec()), Some(b"v1".to_vec())),
                (6, None, Some(b"v2".to_vec())),
            ]
        );
        assert_eq!(next, 7);
        // Records before the requested offset are skipped but advance `next`.
        let (records, next) = decode_fetched(&whole, 6).unwrap();
        assert_eq!((records.len(), next), (1, 7));
        let (records, next) = decode_fetched(&Bytes::new(), 6).unwrap();
        assert_eq!((records.len(), next), (0, 6));
    }

    #[test]
    fn api_error_names_broker_api_and_code() {
        let e = ApiError {
            broker: "10.0.0.1:9092".into(),
            api: ApiKey::Produce,
            resource: "t-0".into(),
            error: ResponseError::NotLeaderOrFollower,
            message: None,
        };
        assert_eq!(
            e.to_string(),
            "Kafka 10.0.0.1:9092: Produce for t-0 failed: NotLeaderOrFollower (code 6)"
        );
        assert!(worth_retrying(&anyhow::Error::from(e.clone())));
        let denied = ApiError {
            error: ResponseError::TopicAuthorizationFailed,
            ..e
        };
        assert!(!worth_retrying(
            &anyhow::Error::from(denied).context("wrapped")
        ));
        assert_eq!(code_name(3), "UnknownTopicOrPartition (3)");
    }

    #[test]
    fn read_back_must_match() {
        let recs = vec![(4, Some(b"k".to_vec()), Some(b"v".to_vec()))];
        assert!(check_read_back(&recs, 4, b"k", b"v").is_ok());
        assert!(check_read_back(&recs, 5, b"k", b"v").is_err());
        assert!(!worth_retrying(
            &check_read_back(&recs, 4, b"k", b"w").unwrap_err()
        ));
    }

    #[tokio::test]
    async fn retry_is_bounded_by_attempts_and_stops_on_permanent_errors() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempts = 0;
        let err = retry("perm", deadline, &mut attempts, |_| async {
            Err::<(), _>(Permanent("nope".into()).into())
        })
        .await
        .unwrap_err();
        assert_eq!(attempts, 1);
        assert!(format!("{err:#}").contains("perm: gave up after 1 attempt(s): nope"));

        let mut attempts = 0;
        let mut calls = 0;
        let ok = retry("flaky", deadline, &mut attempts, |_| {
            calls += 1;
            let n = calls;
            async move { if n < 3 { bail!("transient") } else { Ok(n) } }
        })
        .await
        .unwrap();
        assert_eq!((ok, attempts), (3, 3));
    }

    #[tokio::test]
    async fn retry_stops_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut attempts = 0;
        let started = Instant::now();
        let err = retry("slow", deadline, &mut attempts, |_| async {
            Err::<(), _>(anyhow!("down"))
        })
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!((1..5).contains(&attempts), "{attempts}");
        assert!(format!("{err:#}").contains("down"));
    }

    /// A fake broker that answers ApiVersions and then a reply with a wrong
    /// correlation id: the client must negotiate, then reject that reply and
    /// refuse to reuse the connection.
    #[tokio::test]
    async fn client_negotiates_and_stops_reusing_a_desynced_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let req = read_frame(&mut sock).await.unwrap();
            let cid = (&req[4..8]).get_i32();
            let body = api_versions_v3_body(&[(3, 0, 12), (19, 2, 7)]);
            let mut resp = BytesMut::new();
            resp.put_i32(body.len() as i32 + 4);
            resp.put_i32(cid);
            resp.put_slice(&body);
            sock.write_all(&resp).await.unwrap();
            // Next request: answer with the wrong correlation id.
            let req = read_frame(&mut sock).await.unwrap();
            let cid = (&req[4..8]).get_i32();
            sock.write_all(&[0, 0, 0, 5]).await.unwrap();
            sock.write_all(&(cid + 100).to_be_bytes()).await.unwrap();
            sock.write_all(&[0]).await.unwrap();
        });
        let mut client = KafkaClient::connect(&addr, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(client.api_version(ApiKey::Metadata), Some(12));
        assert_eq!(client.api_version(ApiKey::CreateTopics), Some(7));
        assert_eq!(client.api_version(ApiKey::Produce), None);
        let err = client.metadata(None).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&addr) && msg.contains("Metadata v12") && msg.contains("correlation"),
            "{msg}"
        );
        server.await.unwrap();
        let err = client.metadata(None).await.unwrap_err();
        assert!(format!("{err:#}").contains("unusable"), "{err:#}");
        let err = client.produce("t", 0, None, b"x").await.unwrap_err();
        assert!(
            format!("{err:#}").contains("does not support Produce"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn silent_broker_times_out_and_names_the_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let err = match KafkaClient::connect(&addr, Duration::from_millis(200)).await {
            Ok(_) => panic!("connected to a silent peer"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains(&addr) && err.contains("ApiVersions") && err.contains("no response"),
            "{err}"
        );
        drop(listener);
    }
}
