//! A connection's two halves, plain TCP or TLS (rustls) after an SSLRequest — a client's (the service
//! and manager ports accept TLS) or the proxy's own to a backend (`ssl="true"`): what packets travel on.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

/// The reading half.
pub enum ConnRead {
    Tcp(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<Prefixed>>),
    /// Taken while the connection is upgraded to TLS.
    Gone,
}

/// The writing half.
pub enum ConnWrite {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<Prefixed>>),
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is being upgraded to TLS")
}

impl ConnRead {
    pub fn is_tls(&self) -> bool {
        matches!(self, ConnRead::Tls(_))
    }
}

/// A TCP connection's halves.
pub fn split(stream: TcpStream) -> (ConnRead, ConnWrite) {
    let (r, w) = stream.into_split();
    (ConnRead::Tcp(r), ConnWrite::Tcp(w))
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
    r: ConnRead,
    w: ConnWrite,
    head: bytes::BytesMut,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> io::Result<(ConnRead, ConnWrite)> {
    let (ConnRead::Tcp(r), ConnWrite::Tcp(w)) = (r, w) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "TLS requested twice"));
    };
    let io = r.reunite(w).map_err(|e| io::Error::other(e.to_string()))?;
    let tls = acceptor.accept(Prefixed { head, io }).await?;
    let (r, w) = tokio::io::split(TlsStream::Server(tls));
    Ok((ConnRead::Tls(r), ConnWrite::Tls(w)))
}

/// TLS to a backend host: rustls verifying the server's certificate against the host's `sslCa`, for
/// the url's host name (or IP address).
pub struct Connector {
    connector: tokio_rustls::TlsConnector,
    name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connector({:?})", self.name)
    }
}

/// The connector for a backend at `addr` (host:port) whose certificate a CA of `ca_pem` signed.
pub fn connector(ca_pem: &[u8], addr: &str) -> Result<Connector, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        let c = c.map_err(|e| format!("sslCa: {e}"))?;
        roots.add(c).map_err(|e| format!("sslCa: {e}"))?;
    }
    if roots.is_empty() {
        return Err("sslCa: no certificate in it".into());
    }
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("'{host}' is no server name: {e}"))?;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector { connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)), name })
}

/// The halves of a plain connection to a backend, upgraded to TLS by `c` after the SSLRequest was sent
/// (the server sends nothing more before the client's ClientHello).
pub async fn connect(r: ConnRead, w: ConnWrite, c: &Connector) -> io::Result<(ConnRead, ConnWrite)> {
    let (ConnRead::Tcp(r), ConnWrite::Tcp(w)) = (r, w) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "TLS requested twice"));
    };
    let io = r.reunite(w).map_err(|e| io::Error::other(e.to_string()))?;
    let tls = c.connector.connect(c.name.clone(), Prefixed { head: bytes::BytesMut::new(), io }).await?;
    let (r, w) = tokio::io::split(TlsStream::Client(tls));
    Ok((ConnRead::Tls(r), ConnWrite::Tls(w)))
}

impl AsyncRead for ConnRead {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnRead::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ConnRead::Tls(r) => Pin::new(r).poll_read(cx, buf),
            ConnRead::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for ConnWrite {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnWrite::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            ConnWrite::Tls(w) => Pin::new(w).poll_write(cx, buf),
            ConnWrite::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnWrite::Tcp(w) => Pin::new(w).poll_flush(cx),
            ConnWrite::Tls(w) => Pin::new(w).poll_flush(cx),
            ConnWrite::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ConnWrite::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            ConnWrite::Tls(w) => Pin::new(w).poll_shutdown(cx),
            ConnWrite::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ConnWrite::Tcp(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            ConnWrite::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            ConnWrite::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ConnWrite::Tcp(w) => w.is_write_vectored(),
            ConnWrite::Tls(w) => w.is_write_vectored(),
            ConnWrite::Gone => false,
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

#[cfg(test)]
mod tests {
    use super::connector;

    #[test]
    fn a_backend_connector_needs_a_certificate_and_a_server_name() {
        assert!(connector(b"", "127.0.0.1:3307").unwrap_err().contains("no certificate"));
        assert!(connector(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "h:1").is_err());
    }
}
