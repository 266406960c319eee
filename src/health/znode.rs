//! A minimal native ZooKeeper client: read (`getData`), create and delete one znode.
//!
//! Each call opens its own session over the client wire protocol (jute: big-endian, every
//! packet prefixed by its `i32` length), sends one request, reads its reply and closes the
//! session. No watches, no reconnects, no pipelining: callers need a znode or two, not a
//! ZooKeeper library (and the JVM's `zkCli.sh` is slow and hard to parse).

// The callers are written separately; until they land, only the tests use this module.

use std::io;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Largest packet we accept: ZooKeeper's default `jute.maxbuffer` is 1 MiB, so this leaves
/// headroom while keeping a broken or hostile server from making us allocate without bound.
const MAX_PACKET: usize = 16 << 20;

/// Session timeout we ask for (ms). A call lasts far less; the server clamps it to its
/// own `minSessionTimeout..maxSessionTimeout` anyway.
const SESSION_TIMEOUT_MS: i32 = 10_000;

// The rollback of a migration deletes /controller and /migration (issue 10, next part).
#[cfg_attr(not(test), allow(dead_code))]
const OP_DELETE: i32 = 2;
const OP_CREATE: i32 = 1;
const OP_GET_DATA: i32 = 4;
const OP_CLOSE_SESSION: i32 = -11;

/// Our request and our closeSession; any positive xids do.
const XID_REQUEST: i32 = 1;
const XID_CLOSE: i32 = 2;
/// Server-initiated packets that are not replies to us.
const XID_WATCH_EVENT: i32 = -1;
const XID_PING: i32 = -2;

const ZOK: i32 = 0;
const ZNONODE: i32 = -101;
const ZNOAUTH: i32 = -102;
const ZBADVERSION: i32 = -103;
const ZNODEEXISTS: i32 = -110;
const ZNOTEMPTY: i32 = -111;

/// ZooKeeper's `world:anyone` with every permission (READ|WRITE|CREATE|DELETE|ADMIN): what
/// Kafka itself gives its znodes without `zookeeper.set.acl`.
const PERMS_ALL: i32 = 31;

/// A znode's data and the parts of its Stat callers use.
#[derive(Debug, Clone, PartialEq)]
pub struct Znode {
    pub data: Vec<u8>,
    pub version: i32,
    pub mtime_ms: i64,
}

/// getData on `path` at `addr` ("host:port"). Ok(None) when the znode does not exist (NONODE).
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<Option<Znode>> {
    check_path(addr, "getData", path)?;
    let what = || format!("ZooKeeper {addr}: getData {path}");
    let mut body = Vec::new();
    put_ustring(&mut body, path);
    put_bool(&mut body, false); // no watch: the session ends with this call
    let (err, reply) = call(addr, OP_GET_DATA, &body, timeout)
        .await
        .with_context(what)?;
    match err {
        ZOK => parse_get_data(&reply)
            .map(Some)
            .with_context(|| format!("{}: bad reply", what())),
        ZNONODE => Ok(None),
        code => bail!("{}: {}", what(), describe(code)),
    }
}

/// create of a persistent `path` holding `data`, open to every client as Kafka's own znodes
/// are without `zookeeper.set.acl`. Ok(false) when it exists already (left as it is); its
/// parent must exist (NONODE is an error).
pub async fn create(addr: &str, path: &str, data: &[u8], timeout: Duration) -> Result<bool> {
    check_path(addr, "create", path)?;
    let what = || format!("ZooKeeper {addr}: create {path}");
    let mut body = Vec::new();
    put_ustring(&mut body, path);
    put_buffer(&mut body, data);
    put_i32(&mut body, 1); // one ACL
    put_i32(&mut body, PERMS_ALL);
    put_ustring(&mut body, "world");
    put_ustring(&mut body, "anyone");
    put_i32(&mut body, 0); // flags: persistent, not sequential
    let (err, _) = call(addr, OP_CREATE, &body, timeout)
        .await
        .with_context(what)?;
    match err {
        ZOK => Ok(true),
        ZNODEEXISTS => Ok(false),
        ZNONODE => bail!("{}: {} (its parent does not exist)", what(), describe(err)),
        ZNOAUTH => bail!(
            "{}: {} (the parent's ACL does not allow us)",
            what(),
            describe(err)
        ),
        code => bail!("{}: {}", what(), describe(code)),
    }
}

/// delete of `path` at `version` (-1: any version). Ok(false) when it did not exist.
/// Errors on NOTEMPTY, BADVERSION, NOAUTH etc., naming the error.
pub async fn delete(addr: &str, path: &str, version: i32, timeout: Duration) -> Result<bool> {
    check_path(addr, "delete", path)?;
    let what = || format!("ZooKeeper {addr}: delete {path}");
    let mut body = Vec::new();
    put_ustring(&mut body, path);
    put_i32(&mut body, version);
    let (err, _) = call(addr, OP_DELETE, &body, timeout)
        .await
        .with_context(what)?;
    match err {
        ZOK => Ok(true),
        ZNONODE => Ok(false),
        ZNOTEMPTY => bail!("{}: {} (it has children)", what(), describe(err)),
        ZBADVERSION => bail!(
            "{}: {} (its version is no longer {version})",
            what(),
            describe(err)
        ),
        ZNOAUTH => bail!("{}: {} (its ACL does not allow us)", what(), describe(err)),
        code => bail!("{}: {}", what(), describe(code)),
    }
}

/// Refused before connecting: the server would answer BADARGUMENTS or worse, and a control
/// character in a path is a caller bug that must not reach the wire (or the logs) silently.
/// The path is quoted here, not printed raw as in every other message, since it may hold
/// exactly the characters that would garble one.
fn check_path(addr: &str, op: &str, path: &str) -> Result<()> {
    if !path.starts_with('/') || path.chars().any(char::is_control) {
        bail!(
            "ZooKeeper {addr}: {op}: invalid znode path {path:?} (must start with '/', no control characters)"
        );
    }
    Ok(())
}

/// One session: connect, one request, its reply (error code and body), closeSession.
/// Everything but the closing is bounded by `timeout`; the close gets what is left of it.
async fn call(addr: &str, op: i32, body: &[u8], timeout: Duration) -> Result<(i32, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let exchange = async {
        let mut stream = super::zookeeper::connect(addr, timeout)
            .await
            .context("connect")?;
        handshake(&mut stream).await?;
        let mut request = header(XID_REQUEST, op);
        request.extend_from_slice(body);
        write_packet(&mut stream, &request)
            .await
            .context("send request")?;
        let reply = read_reply(&mut stream, XID_REQUEST)
            .await
            .map_err(|e| lost(e, "read reply"))?;
        Ok::<_, anyhow::Error>((stream, reply))
    };
    let (mut stream, reply) = tokio::time::timeout_at(deadline, exchange)
        .await
        .map_err(|_| anyhow!("no answer within {timeout:?}"))??;
    // Politeness only: the answer is in hand, so neither an error nor the deadline here
    // matters. Without it the server keeps the session until it expires.
    let _ = tokio::time::timeout_at(deadline, close_session(&mut stream)).await;
    Ok(reply)
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<()> {
    let mut req = Vec::with_capacity(45);
    put_i32(&mut req, 0); // protocolVersion
    put_i64(&mut req, 0); // lastZxidSeen: a fresh client has seen nothing
    put_i32(&mut req, SESSION_TIMEOUT_MS);
    put_i64(&mut req, 0); // sessionId 0: a new session
    put_buffer(&mut req, &[0; 16]); // passwd
    put_bool(&mut req, false); // readOnly: a partitioned read-only server must refuse us
    let answer = match write_packet(stream, &req).await {
        Ok(()) => read_packet(stream).await,
        Err(e) => Err(e),
    };
    let packet = match answer {
        Ok(p) => p,
        // What a member without quorum (or still starting) does with a new session.
        Err(e) if closed(&e) => bail!(
            "session refused: the server closed the connection (it is not serving requests: no quorum, or still starting)"
        ),
        Err(e) => return Err(e).context("session handshake"),
    };
    let mut r = Reader::new(&packet);
    let parsed = (|| {
        let _protocol_version = r.i32()?;
        let timeout = r.i32()?;
        let _session_id = r.i64()?;
        let _passwd = r.buffer()?;
        // A trailing readOnly byte follows on 3.4+; older servers omit it. Unused either way.
        Ok::<_, anyhow::Error>(timeout)
    })();
    let negotiated = parsed.context("bad ConnectResponse")?;
    if negotiated <= 0 {
        bail!(
            "session refused (negotiated session timeout {negotiated}): the server is not serving requests"
        );
    }
    Ok(())
}

/// Reads packets until the reply to `xid`, skipping watch events and pings (neither is ours
/// to answer). Returns the reply's error code and the bytes after its header.
async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S, xid: i32) -> Result<(i32, Vec<u8>)> {
    loop {
        let packet = read_packet(stream).await?;
        let mut r = Reader::new(&packet);
        let got = r.i32().context("bad ReplyHeader")?;
        let _zxid = r.i64().context("bad ReplyHeader")?;
        let err = r.i32().context("bad ReplyHeader")?;
        match got {
            XID_WATCH_EVENT | XID_PING => continue,
            x if x == xid => return Ok((err, r.rest().to_vec())),
            x => bail!("unexpected reply xid {x} (waiting for {xid})"),
        }
    }
}

async fn close_session<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<()> {
    write_packet(stream, &header(XID_CLOSE, OP_CLOSE_SESSION)).await?;
    // The server answers, then closes; waiting for it makes sure the close was processed.
    read_reply(stream, XID_CLOSE).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Names an I/O failure that means the server hung up, so the error says so plainly.
fn lost(e: anyhow::Error, what: &str) -> anyhow::Error {
    match e.downcast_ref::<io::Error>() {
        Some(io) if closed(io) => anyhow!("{what}: the server closed the connection"),
        _ => e.context(what.to_string()),
    }
}

fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// ZooKeeper's name for an error code (KeeperException.Code), with the number.
fn describe(code: i32) -> String {
    let name = match code {
        -1 => "SYSTEMERROR",
        -2 => "RUNTIMEINCONSISTENCY",
        -3 => "DATAINCONSISTENCY",
        -4 => "CONNECTIONLOSS",
        -5 => "MARSHALLINGERROR",
        -6 => "UNIMPLEMENTED",
        -7 => "OPERATIONTIMEOUT",
        -8 => "BADARGUMENTS",
        ZNONODE => "NONODE",
        ZNOAUTH => "NOAUTH",
        ZBADVERSION => "BADVERSION",
        -108 => "NOCHILDRENFOREPHEMERALS",
        ZNODEEXISTS => "NODEEXISTS",
        ZNOTEMPTY => "NOTEMPTY",
        -112 => "SESSIONEXPIRED",
        -114 => "INVALIDACL",
        -115 => "AUTHFAILED",
        -118 => "SESSIONMOVED",
        -119 => "NOTREADONLY",
        _ => return format!("ZooKeeper error code {code}"),
    };
    format!("{name} ({code})")
}

/// GetDataResponse: data buffer, then the Stat.
fn parse_get_data(body: &[u8]) -> Result<Znode> {
    let mut r = Reader::new(body);
    let data = r.buffer()?;
    let _czxid = r.i64()?;
    let _mzxid = r.i64()?;
    let _ctime = r.i64()?;
    let mtime_ms = r.i64()?;
    let version = r.i32()?;
    let _cversion = r.i32()?;
    let _aversion = r.i32()?;
    let _ephemeral_owner = r.i64()?;
    let _data_length = r.i32()?;
    let _num_children = r.i32()?;
    let _pzxid = r.i64()?;
    Ok(Znode {
        data,
        version,
        mtime_ms,
    })
}

fn header(xid: i32, op: i32) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    put_i32(&mut h, xid);
    put_i32(&mut h, op);
    h
}

fn put_i32(buf: &mut Vec<u8>, v: i32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_bool(buf: &mut Vec<u8>, v: bool) {
    buf.push(u8::from(v));
}

fn put_buffer(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Paths and our 16-byte passwd: far below i32::MAX.
    put_i32(buf, bytes.len() as i32);
    buf.extend_from_slice(bytes);
}

fn put_ustring(buf: &mut Vec<u8>, s: &str) {
    put_buffer(buf, s.as_bytes());
}

async fn write_packet<S: AsyncWrite + Unpin>(stream: &mut S, payload: &[u8]) -> io::Result<()> {
    let len = i32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= MAX_PACKET)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "request too large"))?;
    // One write per packet: the length and its payload leave together.
    let mut framed = Vec::with_capacity(4 + payload.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(payload);
    stream.write_all(&framed).await?;
    stream.flush().await
}

async fn read_packet<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_PACKET)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("packet length {len} out of range (0..={MAX_PACKET})"),
            )
        })?;
    let mut packet = vec![0; len];
    stream.read_exact(&mut packet).await?;
    Ok(packet)
}

/// Decodes jute fields from one packet; running out of bytes is an error, never a panic.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!("truncated: needed {n} bytes, {} left", self.buf.len());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into()?))
    }

    /// A jute buffer; length -1 is null, which callers treat as empty.
    fn buffer(&mut self) -> Result<Vec<u8>> {
        match self.i32()? {
            -1 => Ok(Vec::new()),
            n if n < 0 => bail!("bad buffer length {n}"),
            n => Ok(self.take(n as usize)?.to_vec()),
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    const LONG: Duration = Duration::from_secs(5);

    async fn listen() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    /// Accepts one client and checks its ConnectRequest field by field, as a server parses it.
    async fn accept_connect(listener: &TcpListener) -> TcpStream {
        let (mut s, _) = listener.accept().await.unwrap();
        let packet = read_packet(&mut s).await.unwrap();
        let mut r = Reader::new(&packet);
        assert_eq!(r.i32().unwrap(), 0, "protocolVersion");
        assert_eq!(r.i64().unwrap(), 0, "lastZxidSeen");
        assert_eq!(r.i32().unwrap(), SESSION_TIMEOUT_MS, "timeOut");
        assert_eq!(r.i64().unwrap(), 0, "sessionId");
        assert_eq!(r.buffer().unwrap(), vec![0; 16], "passwd");
        assert_eq!(r.rest(), [0], "readOnly false, and nothing after it");
        s
    }

    /// A ConnectResponse granting `timeout` ms.
    async fn grant(s: &mut TcpStream, timeout: i32) {
        let mut p = Vec::new();
        put_i32(&mut p, 0);
        put_i32(&mut p, timeout);
        put_i64(&mut p, 0x1234_5678);
        put_buffer(&mut p, &[7; 16]);
        put_bool(&mut p, false);
        write_packet(s, &p).await.unwrap();
    }

    /// A session is up: accepted, checked and granted.
    async fn session(listener: &TcpListener) -> TcpStream {
        let mut s = accept_connect(listener).await;
        grant(&mut s, SESSION_TIMEOUT_MS).await;
        s
    }

    async fn reply(s: &mut TcpStream, xid: i32, err: i32, body: &[u8]) {
        let mut p = Vec::new();
        put_i32(&mut p, xid);
        put_i64(&mut p, 0x100);
        put_i32(&mut p, err);
        p.extend_from_slice(body);
        write_packet(s, &p).await.unwrap();
    }

    /// Reads the client's request; returns its type, path and the bytes after the path.
    async fn request(s: &mut TcpStream) -> (i32, String, Vec<u8>) {
        let packet = read_packet(s).await.unwrap();
        let mut r = Reader::new(&packet);
        assert_eq!(r.i32().unwrap(), XID_REQUEST);
        let op = r.i32().unwrap();
        let path = String::from_utf8(r.buffer().unwrap()).unwrap();
        (op, path, r.rest().to_vec())
    }

    /// The client ends politely: a closeSession, answered like a server does.
    async fn expect_close(s: &mut TcpStream) {
        let packet = read_packet(s).await.unwrap();
        let mut r = Reader::new(&packet);
        let xid = r.i32().unwrap();
        assert_eq!(r.i32().unwrap(), OP_CLOSE_SESSION);
        assert!(r.rest().is_empty());
        reply(s, xid, ZOK, &[]).await;
    }

    fn get_data_body(data: &[u8], version: i32, mtime: i64) -> Vec<u8> {
        let mut b = Vec::new();
        put_buffer(&mut b, data);
        for v in [11, 12, 1_600_000_000_000, mtime] {
            put_i64(&mut b, v); // czxid, mzxid, ctime, mtime
        }
        put_i32(&mut b, version);
        put_i32(&mut b, 0); // cversion
        put_i32(&mut b, 0); // aversion
        put_i64(&mut b, 0); // ephemeralOwner
        put_i32(&mut b, data.len() as i32);
        put_i32(&mut b, 0); // numChildren
        put_i64(&mut b, 13); // pzxid
        b
    }

    /// Serves one getData of `path` with `answer` (err, body), after `before` extra packets.
    fn serve_get(
        listener: TcpListener,
        path: &'static str,
        before: Vec<(i32, Vec<u8>)>,
        answer: (i32, Vec<u8>),
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut s = session(&listener).await;
            let (op, got, rest) = request(&mut s).await;
            assert_eq!((op, got.as_str()), (OP_GET_DATA, path));
            assert_eq!(rest, [0], "watch false");
            for (xid, body) in before {
                reply(&mut s, xid, ZOK, &body).await;
            }
            reply(&mut s, XID_REQUEST, answer.0, &answer.1).await;
            expect_close(&mut s).await;
        })
    }

    /// Serves one delete of `path`, checking the version sent, answering `err`.
    fn serve_delete(
        listener: TcpListener,
        path: &'static str,
        version: i32,
        err: i32,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut s = session(&listener).await;
            let (op, got, rest) = request(&mut s).await;
            assert_eq!((op, got.as_str()), (OP_DELETE, path));
            assert_eq!(rest, version.to_be_bytes());
            reply(&mut s, XID_REQUEST, err, &[]).await;
            expect_close(&mut s).await;
        })
    }

    #[tokio::test]
    async fn get_returns_data_version_and_mtime() {
        let (listener, addr) = listen().await;
        let body = get_data_body(b"{\"kraft\":true}", 7, 1_700_000_000_123);
        let server = serve_get(listener, "/migration", vec![], (ZOK, body));
        let got = get(&addr, "/migration", LONG).await.unwrap();
        server.await.unwrap();
        assert_eq!(
            got,
            Some(Znode {
                data: b"{\"kraft\":true}".to_vec(),
                version: 7,
                mtime_ms: 1_700_000_000_123,
            })
        );
    }

    #[tokio::test]
    async fn get_null_data_is_empty() {
        let (listener, addr) = listen().await;
        // A znode created without data carries a null buffer (length -1).
        let mut body = get_data_body(b"", 0, 5);
        body[..4].copy_from_slice(&(-1i32).to_be_bytes());
        let server = serve_get(listener, "/controller", vec![], (ZOK, body));
        let got = get(&addr, "/controller", LONG).await.unwrap().unwrap();
        server.await.unwrap();
        assert!(got.data.is_empty());
    }

    #[tokio::test]
    async fn get_nonode_is_none() {
        let (listener, addr) = listen().await;
        let server = serve_get(listener, "/migration", vec![], (ZNONODE, vec![]));
        assert_eq!(get(&addr, "/migration", LONG).await.unwrap(), None);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn get_skips_watch_events_and_pings() {
        let (listener, addr) = listen().await;
        // A notification (WatcherEvent: type, state, path) and a ping reply arrive first;
        // taking either for our reply would parse garbage as the znode.
        let mut event = Vec::new();
        put_i32(&mut event, 3); // NodeDataChanged
        put_i32(&mut event, 3); // SyncConnected
        put_ustring(&mut event, "/other");
        let before = vec![(XID_WATCH_EVENT, event), (XID_PING, vec![])];
        let body = get_data_body(b"x", 2, 9);
        let server = serve_get(listener, "/a", before, (ZOK, body));
        let got = get(&addr, "/a", LONG).await.unwrap().unwrap();
        server.await.unwrap();
        assert_eq!((got.data, got.version), (b"x".to_vec(), 2));
    }

    /// Serves one create of `path`, checking data, ACL and flags, answering `err`.
    fn serve_create(
        listener: TcpListener,
        path: &'static str,
        data: &'static [u8],
        err: i32,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut s = session(&listener).await;
            let (op, got, rest) = request(&mut s).await;
            assert_eq!((op, got.as_str()), (OP_CREATE, path));
            let mut r = Reader::new(&rest);
            assert_eq!(r.buffer().unwrap(), data);
            assert_eq!(r.i32().unwrap(), 1, "one ACL");
            assert_eq!(r.i32().unwrap(), 31, "every permission");
            assert_eq!(r.buffer().unwrap(), b"world");
            assert_eq!(r.buffer().unwrap(), b"anyone");
            assert_eq!(r.i32().unwrap(), 0, "persistent");
            assert!(r.rest().is_empty());
            let mut body = Vec::new();
            put_ustring(&mut body, path);
            reply(
                &mut s,
                XID_REQUEST,
                err,
                if err == ZOK { &body } else { &[] },
            )
            .await;
            expect_close(&mut s).await;
        })
    }

    #[tokio::test]
    async fn create_sends_data_open_acl_persistent() {
        let (listener, addr) = listen().await;
        let server = serve_create(listener, "/config/users/admin", b"{\"v\":1}", ZOK);
        assert!(
            create(&addr, "/config/users/admin", b"{\"v\":1}", LONG)
                .await
                .unwrap()
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn create_of_an_existing_znode_is_false() {
        let (listener, addr) = listen().await;
        let server = serve_create(listener, "/config", b"", ZNODEEXISTS);
        assert!(!create(&addr, "/config", b"", LONG).await.unwrap());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn create_without_parent_is_a_named_error() {
        let (listener, addr) = listen().await;
        let server = serve_create(listener, "/a/b", b"", ZNONODE);
        let err = create(&addr, "/a/b", b"", LONG).await.unwrap_err();
        server.await.unwrap();
        assert!(
            format!("{err:#}").contains("NONODE (-101) (its parent does not exist)"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn delete_succeeds() {
        let (listener, addr) = listen().await;
        let server = serve_delete(listener, "/controller", 3, ZOK);
        assert!(delete(&addr, "/controller", 3, LONG).await.unwrap());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn delete_nonode_is_false() {
        let (listener, addr) = listen().await;
        let server = serve_delete(listener, "/controller", -1, ZNONODE);
        assert!(!delete(&addr, "/controller", -1, LONG).await.unwrap());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn delete_notempty_is_a_named_error() {
        let (listener, addr) = listen().await;
        let server = serve_delete(listener, "/brokers", -1, ZNOTEMPTY);
        let err = delete(&addr, "/brokers", -1, LONG).await.unwrap_err();
        server.await.unwrap();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("ZooKeeper {addr}: delete /brokers")),
            "{msg}"
        );
        assert!(msg.contains("NOTEMPTY (-111)"), "{msg}");
    }

    #[tokio::test]
    async fn unknown_error_code_reports_the_number() {
        let (listener, addr) = listen().await;
        let server = serve_delete(listener, "/x", 0, -999);
        let err = delete(&addr, "/x", 0, LONG).await.unwrap_err();
        server.await.unwrap();
        assert!(format!("{err:#}").contains("-999"), "{err:#}");
    }

    #[tokio::test]
    async fn server_closing_after_connect_is_refusal_not_hang() {
        let (listener, addr) = listen().await;
        // What a member without quorum does: read the ConnectRequest, hang up.
        let server = tokio::spawn(async move {
            drop(accept_connect(&listener).await);
        });
        // Well inside LONG: the close must end the call, not the timeout.
        let call = tokio::time::timeout(Duration::from_secs(1), get(&addr, "/a", LONG));
        let err = call.await.expect("no hang").unwrap_err();
        server.await.unwrap();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("ZooKeeper {addr}: getData /a")),
            "{msg}"
        );
        assert!(msg.contains("not serving"), "{msg}");
    }

    #[tokio::test]
    async fn zero_negotiated_timeout_is_refusal() {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut s = accept_connect(&listener).await;
            grant(&mut s, 0).await;
        });
        let err = delete(&addr, "/a", -1, LONG).await.unwrap_err();
        server.await.unwrap();
        assert!(format!("{err:#}").contains("session refused"), "{err:#}");
    }

    #[tokio::test]
    async fn server_closing_before_the_reply_is_an_error() {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut s = session(&listener).await;
            request(&mut s).await;
        });
        let err = get(&addr, "/a", LONG).await.unwrap_err();
        server.await.unwrap();
        assert!(
            format!("{err:#}").contains("closed the connection"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn timeout_bounds_a_silent_server() {
        let (listener, addr) = listen().await;
        // Accepts, reads the ConnectRequest, never answers; ends when the client gives up.
        let server = tokio::spawn(async move {
            let mut s = accept_connect(&listener).await;
            let _ = s.read_to_end(&mut Vec::new()).await;
        });
        let started = std::time::Instant::now();
        let err = get(&addr, "/a", Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(900));
        server.await.unwrap();
        let msg = format!("{err:#}");
        assert!(msg.contains("no answer within 100ms"), "{msg}");
    }

    #[tokio::test]
    async fn oversized_length_is_refused_without_allocating() {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut s = session(&listener).await;
            request(&mut s).await;
            s.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
        });
        let err = get(&addr, "/a", LONG).await.unwrap_err();
        server.await.unwrap();
        assert!(format!("{err:#}").contains("out of range"), "{err:#}");
    }

    #[tokio::test]
    async fn bad_paths_are_refused_before_connecting() {
        let (listener, addr) = listen().await;
        for path in ["", "brokers", "/a\nb", "/a\0"] {
            let err = get(&addr, path, LONG).await.unwrap_err();
            assert!(format!("{err:#}").contains("invalid znode path"), "{err:#}");
            assert!(delete(&addr, path, -1, LONG).await.is_err());
        }
        // Nothing reached the listener (a connect would be in its backlog by now).
        let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        assert!(accepted.is_err(), "a bad path connected");
    }
}
