//! Packet framing over tokio streams: 4-byte headers, sequence ids, payloads over 16 MiB split into
//! continuation frames, and the compressed protocol (zlib, 7-byte headers) beneath them when a client
//! negotiates CLIENT_COMPRESS. Safe under pipelining: bytes after a packet stay buffered for the next read.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io::{self, Read};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::MAX_PAYLOAD;

/// Reads logical packets (continuation frames joined) from a byte stream.
pub struct PacketReader<R> {
    inner: R,
    buf: BytesMut,
    max_packet: usize,
    /// The compressed protocol, once negotiated: the stream carries compressed packets whose
    /// payloads, inflated, are the plain frames `buf` holds.
    comp: Option<CompIn>,
    /// Bytes read from the stream so far (as they travel: compressed when the stream is).
    pub bytes_in: u64,
}

struct CompIn {
    raw: BytesMut,
    /// Sequence id of the last compressed packet read.
    seq: Option<u8>,
}

/// Compressed packet header: compressed length (3), sequence id (1), length before compression (3;
/// 0 = stored as is).
const COMP_HEADER: usize = 7;

impl CompIn {
    /// Inflates one complete compressed packet from `raw` into `plain`; false when none is complete.
    fn inflate_one(&mut self, plain: &mut BytesMut, max_packet: usize) -> io::Result<bool> {
        if self.raw.len() < COMP_HEADER {
            return Ok(false);
        }
        let clen = frame_len(&self.raw);
        if self.raw.len() < COMP_HEADER + clen {
            self.raw.reserve(COMP_HEADER + clen - self.raw.len());
            return Ok(false);
        }
        let seq = self.raw[3];
        let ulen = frame_len(&self.raw[4..]);
        self.raw.advance(COMP_HEADER);
        let body = self.raw.split_to(clen);
        if ulen == 0 {
            plain.extend_from_slice(&body);
        } else {
            if ulen > max_packet.saturating_add(4) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "compressed packet larger than max_allowed_packet",
                ));
            }
            let start = plain.len();
            plain.reserve(ulen);
            let mut z = flate2::read::ZlibDecoder::new(&body[..]).take(ulen as u64 + 1);
            let mut w = std::mem::take(plain).writer();
            std::io::copy(&mut z, &mut w)?;
            *plain = w.into_inner();
            if plain.len() - start != ulen {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "compressed packet of the wrong length"));
            }
        }
        self.seq = Some(seq);
        Ok(true)
    }
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// The stream, replaced by `with` (a connection upgraded to TLS), and the bytes read from it that
    /// no packet has taken (they belong to the new stream's first bytes).
    pub fn swap_inner(&mut self, with: R) -> (R, BytesMut) {
        (std::mem::replace(&mut self.inner, with), self.buf.split())
    }

    pub fn new(inner: R) -> Self {
        PacketReader { inner, buf: BytesMut::with_capacity(16 * 1024), max_packet: 1 << 30, comp: None, bytes_in: 0 }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Bytes read from the stream that no packet has taken yet.
    pub fn buffered(&self) -> bool {
        !self.buf.is_empty() || self.comp.as_ref().is_some_and(|c| !c.raw.is_empty())
    }

    /// From now on the stream carries compressed packets (after the login OK, when CLIENT_COMPRESS
    /// was negotiated).
    pub fn enable_compression(&mut self) {
        let raw = std::mem::take(&mut self.buf);
        self.comp = Some(CompIn { raw, seq: None });
    }

    /// The sequence id of the last compressed packet read (the reply's compressed packets follow it).
    pub fn comp_seq(&self) -> Option<u8> {
        self.comp.as_ref().and_then(|c| c.seq)
    }

    /// Refuse logical packets larger than this (the server's max_allowed_packet).
    pub fn set_max_packet(&mut self, max: usize) {
        self.max_packet = max;
    }

    /// Whether a complete frame is already buffered (the client pipelined more commands).
    pub fn has_buffered_frame(&self) -> bool {
        let plain = self.buf.len() >= 4 && self.buf.len() >= 4 + frame_len(&self.buf);
        plain
            || self
                .comp
                .as_ref()
                .is_some_and(|c| c.raw.len() >= COMP_HEADER && c.raw.len() >= COMP_HEADER + frame_len(&c.raw))
    }

    /// The next logical packet: the sequence id of its last frame and its payload.
    /// `Ok(None)` on a clean end of stream between packets.
    pub async fn next(&mut self) -> io::Result<Option<(u8, Bytes)>> {
        let (seq, first) = match self.frame().await? {
            Some(f) => f,
            None => return Ok(None),
        };
        if first.len() < MAX_PAYLOAD {
            return Ok(Some((seq, first)));
        }
        let mut whole = BytesMut::from(&first[..]);
        loop {
            let (seq, part) = self
                .frame()
                .await?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a split packet"))?;
            if whole.len() + part.len() > self.max_packet {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "packet larger than max_allowed_packet"));
            }
            whole.extend_from_slice(&part);
            if part.len() < MAX_PAYLOAD {
                return Ok(Some((seq, whole.freeze())));
            }
        }
    }

    /// Like `next`, but an end of stream is an error.
    pub async fn expect(&mut self) -> io::Result<(u8, Bytes)> {
        self.next().await?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))
    }

    async fn frame(&mut self) -> io::Result<Option<(u8, Bytes)>> {
        loop {
            if self.buf.len() >= 4 {
                let len = frame_len(&self.buf);
                if self.buf.len() >= 4 + len {
                    let seq = self.buf[3];
                    self.buf.advance(4);
                    return Ok(Some((seq, self.buf.split_to(len).freeze())));
                }
                self.buf.reserve(4 + len - self.buf.len());
            } else {
                self.buf.reserve(4096);
            }
            if let Some(z) = self.comp.as_mut() {
                if z.inflate_one(&mut self.buf, self.max_packet)? {
                    continue;
                }
                z.raw.reserve(4096);
                let n = self.inner.read_buf(&mut z.raw).await?;
                self.bytes_in += n as u64;
                if n == 0 {
                    if self.buf.is_empty() && z.raw.is_empty() {
                        return Ok(None);
                    }
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a packet"));
                }
                continue;
            }
            let n = self.inner.read_buf(&mut self.buf).await?;
            self.bytes_in += n as u64;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a packet"));
            }
        }
    }
}

/// Payloads shorter than this are sent stored (MariaDB's MIN_COMPRESS_LENGTH).
const MIN_COMPRESS_LENGTH: usize = 50;

/// Wraps `plain` (whole frames) into compressed packets starting at sequence id `seq`; returns the
/// next id. A chunk that deflate would not shrink is stored as it is (length before compression 0),
/// as MariaDB does — mysql_common's `compress` truncates the stream of such chunks.
fn deflate_packets(mut seq: u8, plain: &[u8], out: &mut BytesMut) -> io::Result<u8> {
    use std::io::Write;
    for chunk in plain.chunks(MAX_PAYLOAD) {
        let packed = if chunk.len() >= MIN_COMPRESS_LENGTH {
            let mut z =
                flate2::write::ZlibEncoder::new(Vec::with_capacity(chunk.len() / 2), flate2::Compression::default());
            z.write_all(chunk)?;
            Some(z.finish()?).filter(|p| p.len() < chunk.len())
        } else {
            None
        };
        match packed {
            Some(p) => {
                out.reserve(COMP_HEADER + p.len());
                out.put_uint_le(p.len() as u64, 3);
                out.put_u8(seq);
                out.put_uint_le(chunk.len() as u64, 3);
                out.extend_from_slice(&p);
            }
            None => {
                out.reserve(COMP_HEADER + chunk.len());
                out.put_uint_le(chunk.len() as u64, 3);
                out.put_u8(seq);
                out.put_uint_le(0, 3);
                out.extend_from_slice(chunk);
            }
        }
        seq = seq.wrapping_add(1);
    }
    Ok(seq)
}

fn frame_len(buf: &[u8]) -> usize {
    buf[0] as usize | (buf[1] as usize) << 8 | (buf[2] as usize) << 16
}

/// Buffers outgoing packets with sequence ids; `flush` sends them in one write.
pub struct PacketWriter<W> {
    inner: W,
    buf: BytesMut,
    seq: u8,
    /// Writes so far: a `Mark` taken before the last one can no longer be rewound to.
    flushes: u64,
    /// The compressed protocol, once negotiated: the sequence id of the next compressed packet.
    comp_seq: Option<u8>,
    comp_buf: BytesMut,
    /// Bytes written to the stream so far (as they travel).
    pub bytes_out: u64,
    /// The error code of the last ERR packet pushed (a packet starting 0xFF: no row, column
    /// definition or OK starts so), until taken.
    last_err: Option<u16>,
    /// The result cache's miss being captured (every packet pushed, up to its limit).
    capture: Option<Capture>,
    /// A reply the proxy reads itself (a subquery run first): packets pushed go here, not to the
    /// client, and take no sequence ids.
    /// (A stack: a subquery's own subqueries run first.)
    divert: Vec<Capture>,
}

/// Packets being captured off a writer (a result cache miss), each as a 4-byte length and the
/// payload, up to a limit.
#[derive(Default)]
pub struct Capture {
    pub data: Vec<u8>,
    pub limit: usize,
    pub overflow: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Capture { data: Vec::new(), limit, overflow: false }
    }

    pub fn add(&mut self, payload: &[u8]) {
        if self.overflow {
            return;
        }
        if self.data.len() + 4 + payload.len() > self.limit {
            self.overflow = true;
            self.data = Vec::new();
            return;
        }
        self.data.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.data.extend_from_slice(payload);
    }
}

/// The packets of a capture (`Capture::data`: 4-byte length, payload, …), in order.
pub fn captured(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let p = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(p)
    })
}

/// A point in the output that nothing has been sent past yet (see `PacketWriter::rewind`).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    len: usize,
    seq: u8,
    flushes: u64,
}

/// A buffer grown past this by one large reply is given back after it is sent.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Buffered bytes above which a long reply is flushed before more is added (back-pressure).
const FLUSH_AT: usize = 64 * 1024;

impl<W: AsyncWrite + Unpin> PacketWriter<W> {
    /// The stream, replaced by `with` (a connection upgraded to TLS).
    pub fn swap_inner(&mut self, with: W) -> W {
        std::mem::replace(&mut self.inner, with)
    }

    pub fn new(inner: W) -> Self {
        PacketWriter {
            inner,
            buf: BytesMut::with_capacity(16 * 1024),
            seq: 0,
            flushes: 0,
            comp_seq: None,
            comp_buf: BytesMut::new(),
            bytes_out: 0,
            last_err: None,
            capture: None,
            divert: Vec::new(),
        }
    }

    /// From now on every flush sends compressed packets (zlib; payloads under 50 bytes stored).
    pub fn enable_compression(&mut self) {
        self.comp_seq = Some(0);
    }

    /// The sequence id of the next compressed packet (a reply continues the command's).
    pub fn set_comp_seq(&mut self, seq: u8) {
        if self.comp_seq.is_some() {
            self.comp_seq = Some(seq);
        }
    }

    pub fn set_seq(&mut self, seq: u8) {
        self.seq = seq;
    }

    pub fn seq(&self) -> u8 {
        self.seq
    }

    /// The current end of the buffered output.
    pub fn mark(&self) -> Mark {
        Mark { len: self.buf.len(), seq: self.seq, flushes: self.flushes }
    }

    /// Drops what was buffered since `m`, if none of it has been sent: whether it could.
    pub fn rewind(&mut self, m: Mark) -> bool {
        if m.flushes != self.flushes || m.len > self.buf.len() {
            return false;
        }
        self.buf.truncate(m.len);
        self.seq = m.seq;
        true
    }

    /// From now on every packet pushed is also kept, up to `limit` bytes (a result cache miss).
    pub fn start_capture(&mut self, limit: usize) {
        self.capture = Some(Capture::new(limit));
    }

    /// What was captured since `start_capture`, `None` when it passed its limit.
    pub fn take_capture(&mut self) -> Option<Vec<u8>> {
        let c = self.capture.take()?;
        (!c.overflow).then_some(c.data)
    }

    /// From now on packets pushed are kept (up to `limit` bytes) instead of sent.
    pub fn start_divert(&mut self, limit: usize) {
        self.divert.push(Capture::new(limit));
    }

    /// What was pushed since `start_divert` (4-byte length, payload, …), sending resumed; `None`
    /// when it passed its limit.
    pub fn take_divert(&mut self) -> Option<Vec<u8>> {
        let c = self.divert.pop()?;
        (!c.overflow).then_some(c.data)
    }

    /// The code of the last ERR packet pushed since the last call.
    pub fn take_err(&mut self) -> Option<u16> {
        self.last_err.take()
    }

    /// Append one logical packet, split into frames as needed.
    pub fn push(&mut self, payload: &[u8]) {
        if let [0xFF, lo, hi, ..] = payload {
            self.last_err = Some(u16::from_le_bytes([*lo, *hi]));
        }
        if let Some(d) = self.divert.last_mut() {
            d.add(payload);
            return;
        }
        if let Some(c) = &mut self.capture {
            c.add(payload);
        }
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_PAYLOAD);
            self.buf.reserve(4 + n);
            self.buf.put_uint_le(n as u64, 3);
            self.buf.put_u8(self.seq);
            self.seq = self.seq.wrapping_add(1);
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_PAYLOAD {
                break;
            }
        }
    }

    /// Append a packet and flush if the buffer has grown large (streams long results).
    pub async fn push_stream(&mut self, payload: &[u8]) -> io::Result<()> {
        self.push(payload);
        if self.buf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Flushes when the buffer has grown large (long results stream instead of piling up).
    pub async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.flushes += 1;
            if let Some(seq) = self.comp_seq {
                let next = deflate_packets(seq, &self.buf, &mut self.comp_buf)?;
                self.comp_seq = Some(next);
                self.inner.write_all(&self.comp_buf).await?;
                self.bytes_out += self.comp_buf.len() as u64;
                self.comp_buf.clear();
                if self.comp_buf.capacity() > KEEP_CAPACITY {
                    self.comp_buf = BytesMut::new();
                }
            } else {
                self.inner.write_all(&self.buf).await?;
                self.bytes_out += self.buf.len() as u64;
            }
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = BytesMut::with_capacity(16 * 1024);
            }
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.inner.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn split_packets_round_trip_and_pipelining_keeps_the_rest() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let big = vec![7u8; MAX_PAYLOAD * 2 + 5];
        let exact = vec![1u8; MAX_PAYLOAD];
        let writer = tokio::spawn({
            let big = big.clone();
            let exact = exact.clone();
            async move {
                let mut w = PacketWriter::new(a);
                w.push(b"first");
                w.push(&big);
                w.push(&exact);
                w.push(b"");
                w.push(b"last");
                w.flush().await.unwrap();
            }
        });
        let mut r = PacketReader::new(b);
        assert_eq!(r.next().await.unwrap().unwrap(), (0, Bytes::from_static(b"first")));
        let (seq, p) = r.next().await.unwrap().unwrap();
        assert_eq!((seq, p.len()), (3, big.len()));
        let (seq, p) = r.next().await.unwrap().unwrap();
        assert_eq!((seq, p.len()), (5, MAX_PAYLOAD), "an exact 16 MiB payload ends with an empty frame");
        assert_eq!(r.next().await.unwrap().unwrap(), (6, Bytes::new()));
        assert_eq!(r.next().await.unwrap().unwrap(), (7, Bytes::from_static(b"last")));
        writer.await.unwrap();
        assert!(r.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn compressed_packets_round_trip() {
        let (a, b) = tokio::io::duplex(1 << 22);
        let big: Vec<u8> = (0..(MAX_PAYLOAD + 1000)).map(|i| (i % 251) as u8).collect();
        let writer = tokio::spawn({
            let big = big.clone();
            async move {
                let mut w = PacketWriter::new(a);
                w.enable_compression();
                w.set_comp_seq(3);
                w.push(b"short"); // stored: under the 50-byte threshold with its header
                w.flush().await.unwrap();
                w.push(&big);
                w.push(&[b'x'; 300]);
                w.flush().await.unwrap();
            }
        });
        let mut r = PacketReader::new(b);
        r.enable_compression();
        assert_eq!(r.next().await.unwrap().unwrap(), (0, Bytes::from_static(b"short")));
        assert_eq!(r.comp_seq(), Some(3));
        let (_, p) = r.next().await.unwrap().unwrap();
        assert_eq!(p, big);
        assert_eq!(r.next().await.unwrap().unwrap().1, Bytes::from(vec![b'x'; 300]));
        assert!(r.comp_seq().is_some_and(|s| s > 4), "one compressed packet per 16 MiB");
        writer.await.unwrap();
        assert!(r.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn incompressible_payloads_are_stored_whole() {
        // random-looking bytes of every size around the threshold: deflate makes them longer
        let (a, b) = tokio::io::duplex(1 << 20);
        let payloads: Vec<Vec<u8>> =
            (40..400).map(|n| (0..n).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect()).collect();
        let writer = tokio::spawn({
            let payloads = payloads.clone();
            async move {
                let mut w = PacketWriter::new(a);
                w.enable_compression();
                for p in &payloads {
                    w.push(p);
                    w.flush().await.unwrap();
                }
            }
        });
        let mut r = PacketReader::new(b);
        r.enable_compression();
        for p in &payloads {
            assert_eq!(r.next().await.unwrap().unwrap().1, Bytes::from(p.clone()));
        }
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_compressed_packet_is_an_error_not_a_panic() {
        let data: &[u8] = &[5, 0, 0, 0, 100, 0, 0, 1, 2, 3, 4, 5];
        let mut r = PacketReader::new(data);
        r.enable_compression();
        assert!(r.next().await.is_err());
    }

    #[tokio::test]
    async fn truncated_stream_is_an_error_not_a_panic() {
        let data: &[u8] = &[10, 0, 0, 0, 1, 2];
        let mut r = PacketReader::new(data);
        assert!(r.next().await.is_err());
    }
}
