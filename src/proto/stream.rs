//! A client connection's two halves, plain TCP or TLS (rustls) after the client's SSLRequest: what the
//! packet reader and writer of the service and manager ports read from and write to.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The reading half.
pub enum ClientRead {
    Tcp(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<Prefixed>>),
    /// Taken while the connection is upgraded to TLS.
    Gone,
}

/// The writing half.
pub enum ClientWrite {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<Prefixed>>),
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is being upgraded to TLS")
}

impl ClientRead {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientRead::Tls(_))
    }
}

/// A TCP connection's halves.
pub fn split(stream: TcpStream) -> (ClientRead, ClientWrite) {
    let (r, w) = stream.into_split();
    (ClientRead::Tcp(r), ClientWrite::Tcp(w))
}

/// A TCP stream that first yields bytes already read from it: a client may send its TLS ClientHello
/// right behind the SSLRequest, and the packet reader may hold some of it.
pub struct Prefixed {
    head: bytes::BytesMut,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.head.is_empty() {
            let n = me.head.len().min(buf.remaining());
            buf.put_slice(&me.head.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The halves of a plain connection upgraded to TLS by `acceptor` (the handshake done), `head` being
/// what was read from it past the SSLRequest.
pub async fn upgrade(
    r: ClientRead,
    w: ClientWrite,
    head: bytes::BytesMut,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> io::Result<(ClientRead, ClientWrite)> {
    let (ClientRead::Tcp(r), ClientWrite::Tcp(w)) = (r, w) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "TLS requested twice"));
    };
    let io = r.reunite(w).map_err(|e| io::Error::other(e.to_string()))?;
    let tls = acceptor.accept(Prefixed { head, io }).await?;
    let (r, w) = tokio::io::split(tls);
    Ok((ClientRead::Tls(r), ClientWrite::Tls(w)))
}

impl AsyncRead for ClientRead {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientRead::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ClientRead::Tls(r) => Pin::new(r).poll_read(cx, buf),
            ClientRead::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for ClientWrite {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientWrite::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            ClientWrite::Tls(w) => Pin::new(w).poll_write(cx, buf),
            ClientWrite::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientWrite::Tcp(w) => Pin::new(w).poll_flush(cx),
            ClientWrite::Tls(w) => Pin::new(w).poll_flush(cx),
            ClientWrite::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientWrite::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            ClientWrite::Tls(w) => Pin::new(w).poll_shutdown(cx),
            ClientWrite::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientWrite::Tcp(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            ClientWrite::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            ClientWrite::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientWrite::Tcp(w) => w.is_write_vectored(),
            ClientWrite::Tls(w) => w.is_write_vectored(),
            ClientWrite::Gone => false,
        }
    }
}

/// The acceptor of server.xml's `tlsCert` / `tlsKey` (PEM: the certificate chain, the private key).
pub async fn acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &std::path::Path| {
        let p = p.to_path_buf();
        async move { tokio::fs::read(&p).await.map_err(|e| format!("{}: {e}", p.display())) }
    };
    let (c, k) = (read(cert).await?, read(key).await?);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&c).collect::<Result<_, _>>().map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&k).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tlsCert/tlsKey: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}
