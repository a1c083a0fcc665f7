//! Frames on an established connection, read and written without holding
//! more memory than the frame in hand.
//!
//! The handshake uses `tokio_util`'s `Framed`; after it, a replica switches
//! its connections to these (see [`split_framed`]), whether the stream under
//! them is plain TCP or TLS (see `stream`):
//!
//! * [`FrameReader`] reads a frame's 4-byte length, refuses it above the
//!   limit, then reserves that many bytes from a [`ByteBudget`] *before*
//!   reading the body (waiting for room: back-pressure on the socket), and
//!   reads the body within a time limit, so a peer that announces a large
//!   frame and trickles it in cannot hold its reservation forever. The
//!   reservation travels with the decoded value until the caller drops it.
//! * [`FrameWriter`] encodes one value into a buffer of exactly its size and
//!   refuses one above the limit with [`CodecError::Oversized`], writing
//!   nothing: the connection stays usable. Its own buffer is small, and a
//!   large frame goes to the socket directly, so no connection keeps a
//!   buffer the size of the largest frame it ever wrote.

use crate::byte_budget::{ByteBudget, Reserved};
use crate::errors::CodecError;
use crate::stream::Stream;
use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Cursor;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, Chain};
use tokio::io::{ReadHalf, WriteHalf};
use tokio_util::codec::Framed;

/// Bytes a reader or writer buffers for small frames.
const BUFFER_BYTES: usize = 16 << 10;

/// Frames above this many bytes are decoded on the blocking pool, not on
/// the connection's task: a replica runs every task on one thread by
/// default (`--threads 1`), and decoding a frame of up to 16 MiB (a large
/// value, or a hostile frame of tiny elements that fails at its last byte)
/// takes long enough to stall consensus and every other connection. Below
/// it, a decode costs less than handing it to another thread.
pub const DECODE_OFF_TASK_BYTES: usize = 64 << 10;

/// Large frames being decoded at once, in the whole process. A decoded
/// frame can take many times its bytes (16 MiB of tiny calls decode to
/// ~260 MB), so this bounds that memory and the cores it takes, and the
/// bound holds even when a connection closes during its decode (the
/// decode still runs, holding its permit, while the frame's reserved
/// bytes are given back).
const LARGE_DECODES_AT_ONCE: usize = 2;

static LARGE_DECODES: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(LARGE_DECODES_AT_ONCE);

/// Reads length-prefixed msgpack frames, reserving each one's bytes first.
pub struct FrameReader<R> {
    inner: BufReader<Chain<Cursor<BytesMut>, R>>,
    max_frame_bytes: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of `read`, after `leftover` (bytes a previous reader had
    /// buffered), refusing frames above `max_frame_bytes`.
    pub fn new(leftover: BytesMut, read: R, max_frame_bytes: usize) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(BUFFER_BYTES, Cursor::new(leftover).chain(read)),
            max_frame_bytes,
        }
    }

    /// The next frame, decoded, with the bytes reserved for it from
    /// `budget`; `None` once the other side closed the connection between
    /// two frames. The body must arrive within `body_within` of its length.
    pub async fn next<T: DeserializeOwned + Send + 'static>(
        &mut self,
        budget: &ByteBudget,
        body_within: Duration,
    ) -> Result<Option<(T, Reserved)>, CodecError> {
        let Some(len) = self.next_len().await? else {
            return Ok(None);
        };
        let reserved = budget.take(len).await;
        let value = self.body(len, body_within).await?;
        Ok(Some((value, reserved)))
    }

    /// The next frame's length, checked against the limit; `None` once the
    /// other side closed the connection between two frames. Reserve that
    /// many bytes, then read the frame with [`body`](Self::body).
    pub async fn next_len(&mut self) -> Result<Option<usize>, CodecError> {
        let mut head = [0u8; 4];
        let first = self.inner.read(&mut head[..1]).await?;
        if first == 0 {
            return Ok(None);
        }
        self.inner.read_exact(&mut head[1..]).await?;
        let len = u32::from_be_bytes(head) as usize;
        if len > self.max_frame_bytes {
            return Err(CodecError::Oversized {
                bytes: len,
                limit: self.max_frame_bytes,
            });
        }
        Ok(Some(len))
    }

    /// The body of the frame whose length [`next_len`](Self::next_len)
    /// returned, decoded; it must arrive within `within`. A body above
    /// [`DECODE_OFF_TASK_BYTES`] is decoded on the blocking pool, at most
    /// two at once in the process.
    pub async fn body<T: DeserializeOwned + Send + 'static>(
        &mut self,
        len: usize,
        within: Duration,
    ) -> Result<T, CodecError> {
        let mut body = vec![0u8; len];
        match tokio::time::timeout(within, self.inner.read_exact(&mut body)).await {
            Ok(read) => {
                read?;
            }
            Err(_) => return Err(CodecError::SlowBody { bytes: len }),
        }
        if len <= DECODE_OFF_TASK_BYTES {
            return Ok(rmp_serde::from_slice(&body)?);
        }
        let permit = LARGE_DECODES.acquire().await.map_err(|_| {
            CodecError::Frame(std::io::Error::other("the large decodes' limit was closed"))
        })?;
        let decode = crate::determinism::spawn_blocking(move || {
            let _decoding = permit;
            rmp_serde::from_slice(&body)
        });
        match decode.await {
            Ok(value) => Ok(value?),
            Err(e) => Err(CodecError::Frame(std::io::Error::other(format!(
                "the decoding task failed: {e}"
            )))),
        }
    }
}

/// Writes length-prefixed msgpack frames.
pub struct FrameWriter<W> {
    inner: BufWriter<W>,
    max_frame_bytes: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer to `write` refusing frames above `max_frame_bytes`.
    pub fn new(write: W, max_frame_bytes: usize) -> Self {
        FrameWriter {
            inner: BufWriter::with_capacity(BUFFER_BYTES, write),
            max_frame_bytes,
        }
    }

    /// Encodes `value` and writes it (buffered until [`flush`](Self::flush)
    /// for small frames). Returns the frame's body size. A value whose
    /// encoding exceeds the limit is refused and nothing is written.
    pub async fn send<T: Serialize>(&mut self, value: &T) -> Result<usize, CodecError> {
        let body = rmp_serde::to_vec(value)?;
        if body.len() > self.max_frame_bytes {
            return Err(CodecError::Oversized {
                bytes: body.len(),
                limit: self.max_frame_bytes,
            });
        }
        let head = (body.len() as u32).to_be_bytes();
        self.inner.write_all(&head).await?;
        self.inner.write_all(&body).await?;
        Ok(body.len())
    }

    /// Writes out everything buffered.
    pub async fn flush(&mut self) -> Result<(), CodecError> {
        self.inner.flush().await?;
        Ok(())
    }
}

/// The reading side of a connection after its handshake.
pub type ConnReader = FrameReader<ReadHalf<Stream>>;
/// The writing side of a connection after its handshake.
pub type ConnWriter = FrameWriter<WriteHalf<Stream>>;

/// Takes over a connection after its handshake: a reader (keeping whatever
/// the handshake had already buffered) and a writer, each with its limit.
/// (`tokio::io::split` rather than `into_split`: the stream may be TLS or a
/// simulated one, see `stream` and `net`.)
pub fn split_framed<C>(
    framed: Framed<Stream, C>,
    max_in_bytes: usize,
    max_out_bytes: usize,
) -> (ConnReader, ConnWriter) {
    let parts = framed.into_parts();
    // The handshake flushes every frame it sends.
    debug_assert!(parts.write_buf.is_empty());
    let (read, write) = tokio::io::split(parts.io);
    (
        FrameReader::new(parts.read_buf, read, max_in_bytes),
        FrameWriter::new(write, max_out_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        (a.expect("connect"), b.expect("accept").0)
    }

    #[tokio::test]
    async fn values_round_trip_and_their_bytes_are_reserved_until_dropped() {
        let (a, b) = pair().await;
        let mut writer = FrameWriter::new(a, 1 << 20);
        let mut reader = FrameReader::new(BytesMut::new(), b, 1 << 20);
        let budget = ByteBudget::new(1 << 20);
        let value = vec!["x".repeat(1000), "y".to_string()];
        let sent = writer.send(&value).await.expect("send");
        writer.flush().await.expect("flush");
        let (got, reserved) = reader
            .next::<Vec<String>>(&budget, Duration::from_secs(1))
            .await
            .expect("read")
            .expect("a frame");
        assert_eq!(got, value);
        assert_eq!(reserved.bytes(), sent);
        assert_eq!(budget.in_use(), sent);
        drop(reserved);
        assert_eq!(budget.in_use(), 0);
        drop(writer);
        let end = reader
            .next::<Vec<String>>(&budget, Duration::from_secs(1))
            .await
            .expect("a clean close");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn an_oversized_value_is_refused_and_the_writer_stays_usable() {
        let (a, b) = pair().await;
        let mut writer = FrameWriter::new(a, 100);
        let mut reader = FrameReader::new(BytesMut::new(), b, 100);
        let refused = writer.send(&"z".repeat(200)).await;
        assert!(matches!(
            refused,
            Err(CodecError::Oversized { limit: 100, .. })
        ));
        writer.send(&"ok").await.expect("a small one still goes");
        writer.flush().await.expect("flush");
        let (got, _) = reader
            .next::<String>(&ByteBudget::new(100), Duration::from_secs(1))
            .await
            .expect("read")
            .expect("frame");
        assert_eq!(got, "ok");
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_body() {
        let (mut a, b) = pair().await;
        a.write_all(&[0, 0, 1, 0]).await.expect("write"); // claims 256 bytes
        let mut reader = FrameReader::new(BytesMut::new(), b, 100);
        let budget = ByteBudget::new(100);
        let got = reader.next::<String>(&budget, Duration::from_secs(1)).await;
        assert!(matches!(got, Err(CodecError::Oversized { bytes: 256, .. })));
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_fails_and_gives_its_bytes_back() {
        let (mut a, b) = pair().await;
        a.write_all(&[0, 0, 0, 50, 1, 2]).await.expect("write"); // 2 of 50 bytes
        let mut reader = FrameReader::new(BytesMut::new(), b, 100);
        let budget = ByteBudget::new(100);
        let got = reader
            .next::<String>(&budget, Duration::from_millis(50))
            .await;
        assert!(matches!(got, Err(CodecError::SlowBody { bytes: 50 })));
        assert_eq!(budget.in_use(), 0);
    }

    /// A frame's value that notes the thread it was decoded on.
    struct DecodedOn(String, std::thread::ThreadId);

    impl<'de> serde::Deserialize<'de> for DecodedOn {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = String::deserialize(d)?;
            Ok(DecodedOn(text, std::thread::current().id()))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_large_frame_is_decoded_off_the_connections_thread_and_a_small_one_on_it() {
        let (a, b) = pair().await;
        let limit = 4 * DECODE_OFF_TASK_BYTES;
        let mut writer = FrameWriter::new(a, limit);
        let mut reader = FrameReader::new(BytesMut::new(), b, limit);
        let budget = ByteBudget::new(limit);
        let large = "x".repeat(2 * DECODE_OFF_TASK_BYTES);
        let sender = tokio::spawn(async move {
            writer.send(&"small").await.expect("send");
            writer.send(&large).await.expect("send");
            writer.flush().await.expect("flush");
        });
        let here = std::thread::current().id();
        let (small, _) = reader
            .next::<DecodedOn>(&budget, Duration::from_secs(5))
            .await
            .expect("read")
            .expect("frame");
        assert_eq!((small.0.as_str(), small.1), ("small", here));
        let (large, _) = reader
            .next::<DecodedOn>(&budget, Duration::from_secs(5))
            .await
            .expect("read")
            .expect("frame");
        assert_eq!(large.0.len(), 2 * DECODE_OFF_TASK_BYTES);
        assert_ne!(
            large.1, here,
            "a large frame was decoded on the reader's thread"
        );
        sender.await.expect("sender");
    }

    #[tokio::test]
    async fn a_large_malformed_frame_is_a_decode_error() {
        let (mut a, b) = pair().await;
        let len = 2 * DECODE_OFF_TASK_BYTES;
        let mut frame = (len as u32).to_be_bytes().to_vec();
        frame.extend(std::iter::repeat_n(0xc1u8, len)); // 0xc1: never used in msgpack
        let writing = tokio::spawn(async move { a.write_all(&frame).await });
        let mut reader = FrameReader::new(BytesMut::new(), b, 4 * DECODE_OFF_TASK_BYTES);
        let budget = ByteBudget::new(4 * DECODE_OFF_TASK_BYTES);
        let got = reader.next::<String>(&budget, Duration::from_secs(5)).await;
        assert!(matches!(got, Err(CodecError::Decode(_))), "{got:?}");
        assert_eq!(budget.in_use(), 0);
        writing.await.expect("writer").expect("write");
    }

    #[tokio::test]
    async fn bytes_buffered_before_the_switch_are_read_first() {
        let (mut a, b) = pair().await;
        let frame = |s: &str| {
            let body = rmp_serde::to_vec(&s).expect("encode");
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend(body);
            f
        };
        let first = frame("first");
        a.write_all(&frame("second")).await.expect("write");
        let mut reader = FrameReader::new(BytesMut::from(&first[..]), b, 100);
        let budget = ByteBudget::new(100);
        for want in ["first", "second"] {
            let (got, _) = reader
                .next::<String>(&budget, Duration::from_secs(1))
                .await
                .expect("read")
                .expect("frame");
            assert_eq!(got, want);
        }
    }
}
