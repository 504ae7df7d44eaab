//! TLS between clients and the proxy (issue 15): server.xml's `tlsCert`/`tlsKey` make the proxy offer
//! CLIENT_SSL; the mariadb CLI's `--ssl` then runs over TLS, and a user with `requireSecureTransport`
//! logs in only that way.

mod common;

use std::process::Command;

use common::*;

/// A proxy on tests/fixtures/sharding with a certificate made here and a user that needs TLS.
fn tls_proxy() -> (tempfile::TempDir, Proxy) {
    stack();
    let conf = fixture_copy("sharding");
    let dir = conf.path();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "subjectAltName=DNS:localhost"])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = std::fs::read_to_string(dir.join("server.xml")).unwrap();
    let server = server
        .replace(
            "<property name=\"charset\">",
            "<property name=\"tlsCert\">cert.pem</property><property name=\"tlsKey\">key.pem</property><property name=\"charset\">",
        )
        .replace(
            "</mycat:server>",
            "<user name=\"secure\"><property name=\"password\">secure</property><property name=\"schemas\">shard</property><property name=\"requireSecureTransport\">true</property></user>\n</mycat:server>",
        );
    std::fs::write(dir.join("server.xml"), server).unwrap();
    let p = Proxy::start(dir, None);
    (conf, p)
}

/// The mariadb CLI against the proxy: (success, stdout, stderr).
fn cli(port: u16, user: &str, pass: &str, ssl: bool, sql: &str) -> (bool, String, String) {
    cli_with(port, user, pass, ssl, &[], sql)
}

fn cli_with(port: u16, user: &str, pass: &str, ssl: bool, extra: &[&str], sql: &str) -> (bool, String, String) {
    let mut c = Command::new("mariadb");
    c.args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{pass}")]);
    c.arg(if ssl { "--ssl" } else { "--skip-ssl" });
    c.args(extra);
    let out = c.args(["shard", "-e", sql]).output().expect("mariadb client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_talks_to_the_proxy_over_tls() {
    let (_conf, p) = tls_proxy();
    let (ok, out, err) = cli(p.port, "app", "app", true, "status");
    assert!(ok, "{err}");
    let ssl_line = out.lines().find(|l| l.trim_start().starts_with("SSL:")).unwrap_or_default();
    assert!(ssl_line.contains("Cipher in use is"), "{out}");
    // statements run over it as over plain TCP, routed to the shards
    let (ok, out, err) = cli(p.port, "app", "app", true, "SELECT 6 * 7 AS answer; SHOW DATABASES");
    assert!(ok, "{err}");
    assert!(out.contains("42") && out.contains("shard"), "{out}");
    // plain TCP still works for a user that does not need TLS
    let (ok, out, err) = cli(p.port, "app", "app", false, "status");
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.trim_start().starts_with("SSL:") && l.contains("Not in use")), "{out}");
}

#[test]
fn a_user_that_requires_tls_logs_in_only_over_it() {
    let (_conf, p) = tls_proxy();
    let (ok, _, err) = cli(p.port, "secure", "secure", false, "SELECT 1");
    assert!(!ok);
    assert!(err.contains("1045"), "{err}");
    let (ok, out, err) = cli(p.port, "secure", "secure", true, "SELECT 'over tls' AS how");
    assert!(ok, "{err}");
    assert!(out.contains("over tls"), "{out}");
}

/// caching_sha2_password as MySQL runs it while TLS is offered: a user's first login takes the full
/// path — the password itself, over TLS; without TLS it is refused (no RSA key exchange) —, and once
/// the proxy knows the password the fast path (the scramble alone) works over plain TCP too.
#[test]
fn caching_sha2_full_authentication_runs_over_tls() {
    let (_conf, p) = tls_proxy();
    let sha2 = |ssl: bool, pass: &str| {
        cli_with(p.port, "app", pass, ssl, &["--default-auth=caching_sha2_password"], "SELECT 'in' AS how")
    };
    let (ok, _, err) = sha2(false, "app");
    assert!(!ok, "the full path without TLS");
    // (libmariadb asks for the server's RSA key there and reads the proxy's ERR as a broken handshake)
    assert!(["1045", "2061", "2012"].iter().any(|c| err.contains(c)), "{err}");
    let (ok, _, err) = sha2(true, "wrong");
    assert!(!ok && err.contains("1045"), "a wrong password over the full path: {err}");
    let (ok, out, err) = sha2(true, "app");
    assert!(ok, "the full path over TLS: {err}");
    assert!(out.contains("in"), "{out}");
    let (ok, _, err) = sha2(false, "app");
    assert!(ok, "the fast path once the password is known: {err}");
    // a wrong scramble is a cache miss: the full path again, which plain TCP cannot take
    let (ok, _, err) = sha2(false, "wrong");
    assert!(!ok && ["1045", "2061", "2012"].iter().any(|c| err.contains(c)), "{err}");
}

/// PyMySQL (`ssl_ca`: the certificate verified against the one made here) and Connector/J
/// (`useSsl=true&trustServerCertificate=true`) log in over TLS as the user that needs it.
#[test]
fn pymysql_and_jdbc_connect_over_tls() {
    let (conf, p) = tls_proxy();
    let script = "import sys, pymysql\n\
                  c = pymysql.connect(host='127.0.0.1', port=int(sys.argv[1]), user='secure', password='secure', database='shard', ssl_ca=sys.argv[2], ssl_verify_identity=False)\n\
                  cur = c.cursor(); cur.execute('SELECT 6 * 7'); print(cur.fetchone()[0], c._sock.version())\n";
    let out = Command::new("python3")
        .args(["-c", script, &p.port.to_string()])
        .arg(conf.path().join("cert.pem"))
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("42 TLSv1."), "{stdout}");
    let out = run_java("JdbcTls", &[&p.port.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "jdbc over tls");
}

/// A client that sends its TLS ClientHello in the same write as its SSLRequest (what PyMySQL did in
/// CI): the bytes the proxy read past the SSLRequest start the TLS handshake, and the login goes on.
#[tokio::test]
async fn a_client_hello_behind_the_ssl_request_in_one_write() {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

    /// A stream whose first write goes out together with `prefix`, in one write.
    struct Glued {
        io: tokio::net::TcpStream,
        prefix: Vec<u8>,
        pending: Vec<u8>,
    }
    impl AsyncRead for Glued {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().io).poll_read(cx, b)
        }
    }
    impl AsyncWrite for Glued {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<std::io::Result<usize>> {
            let me = self.get_mut();
            if !me.prefix.is_empty() {
                // the first write: the prefix and these bytes, written as one buffer
                me.pending = std::mem::take(&mut me.prefix);
                me.pending.extend_from_slice(b);
            }
            if me.pending.is_empty() {
                return Pin::new(&mut me.io).poll_write(cx, b);
            }
            while !me.pending.is_empty() {
                match Pin::new(&mut me.io).poll_write(cx, &me.pending) {
                    Poll::Ready(Ok(n)) => {
                        me.pending.drain(..n);
                    }
                    other => return other,
                }
            }
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().io).poll_flush(cx)
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
        }
    }

    let (conf, p) = tls_proxy();
    let mut io = tokio::net::TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
    let mut head = [0u8; 4];
    io.read_exact(&mut head).await.unwrap();
    let mut greeting = vec![0u8; u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize];
    io.read_exact(&mut greeting).await.unwrap();
    // SSLRequest: CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    let caps: u32 = 0x0200 | 0x0800 | 0x8000 | 0x0008_0000;
    let mut ssl_request = vec![32, 0, 0, 1];
    ssl_request.extend_from_slice(&caps.to_le_bytes());
    ssl_request.extend_from_slice(&(1u32 << 24).to_le_bytes());
    ssl_request.push(45);
    ssl_request.extend_from_slice(&[0; 23]);
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    for c in tokio_rustls::rustls::pki_types::CertificateDer::pem_file_iter(conf.path().join("cert.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let glued = Glued { io, prefix: ssl_request, pending: Vec::new() };
    let mut tls = connector.connect(name, glued).await.expect("TLS over the glued SSLRequest");
    // the login over TLS: a user with no password (nonePasswordLogin is off: the proxy answers 1045),
    // which is still an answer read over TLS, in sequence 3
    let mut resp = Vec::new();
    resp.extend_from_slice(&caps.to_le_bytes());
    resp.extend_from_slice(&(1u32 << 24).to_le_bytes());
    resp.push(45);
    resp.extend_from_slice(&[0; 23]);
    resp.extend_from_slice(b"secure\0");
    resp.push(0);
    resp.extend_from_slice(b"mysql_native_password\0");
    let mut pkt = (resp.len() as u32).to_le_bytes()[..3].to_vec();
    pkt.push(2);
    pkt.extend_from_slice(&resp);
    tls.write_all(&pkt).await.unwrap();
    tls.flush().await.unwrap();
    let mut head = [0u8; 4];
    tls.read_exact(&mut head).await.expect("a reply over TLS");
    let mut body = vec![0u8; u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize];
    tls.read_exact(&mut body).await.unwrap();
    assert_eq!(head[3], 3, "the reply's sequence id");
    assert_eq!(body[0], 0xFF, "an ERR packet: {body:?}");
    assert_eq!(u16::from_le_bytes([body[1], body[2]]), 1045);
}

/// A conf dir whose one dataHost (p1, with its replica) is reached over TLS verified by `ca`.
fn backend_tls_conf(ca: &std::path::Path) -> tempfile::TempDir {
    let conf = tempfile::tempdir().unwrap();
    let ca = ca.display();
    let schema = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE mycat:schema SYSTEM "schema.dtd">
<mycat:schema xmlns:mycat="http://io.mycat/">
	<schema name="passthru" dataNode="tdn"/>
	<dataNode name="tdn" dataHost="th" database="passthru"/>
	<dataHost name="th" maxCon="10" minCon="1" balance="0" writeType="0" dbType="mysql" dbDriver="native" switchType="-1">
		<heartbeat>select 1</heartbeat>
		<writeHost host="tp" url="127.0.0.1:3307" user="proxy" password="proxy" ssl="true" sslCa="{ca}">
			<readHost host="tr" url="127.0.0.1:3308" user="proxy" password="proxy" ssl="true" sslCa="{ca}"/>
		</writeHost>
	</dataHost>
</mycat:schema>
"#
    );
    std::fs::write(conf.path().join("schema.xml"), schema).unwrap();
    std::fs::write(
        conf.path().join("server.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<mycat:server xmlns:mycat="http://io.mycat/">
	<user name="app"><property name="password">app</property><property name="schemas">passthru</property></user>
</mycat:server>
"#,
    )
    .unwrap();
    std::fs::write(
        conf.path().join("rule.xml"),
        "<?xml version=\"1.0\"?>\n<mycat:rule xmlns:mycat=\"http://io.mycat/\"/>\n",
    )
    .unwrap();
    conf
}

/// The backends over TLS (`ssl="true"`, `sslCa`): the proxy's connections to MariaDB are encrypted and
/// verified against the CA scripts/stack made for its servers; a CA that did not sign the server's
/// certificate makes every connection fail, with the reason.
#[tokio::test]
async fn backends_are_reached_over_tls_verified_by_their_ca() {
    stack();
    let stack_dir = std::env::var("STACK_DIR").unwrap_or_else(|_| "/tmp/shardcat-stack".into());
    let ca = std::path::PathBuf::from(&stack_dir).join("tls/ca.pem");
    assert!(ca.exists(), "scripts/stack made no CA at {}", ca.display());
    let conf = backend_tls_conf(&ca);
    let p = Proxy::start(conf.path(), None);
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("passthru"))).await.unwrap();
    use mysql_async::prelude::Queryable;
    // the statement runs on the backend connection: its session status says TLS
    let cipher: Option<String> = c
        .query_first("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'")
        .await
        .unwrap();
    assert!(cipher.as_deref().is_some_and(|c| !c.is_empty()), "the backend connection is not encrypted: {cipher:?}");
    let version: Option<String> = c
        .query_first("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'")
        .await
        .unwrap();
    assert!(version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")), "{version:?}");
    c.disconnect().await.unwrap();
    drop(p);

    // another CA, made here: the server's certificate does not verify
    let other = tempfile::tempdir().unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=not the stack CA"])
        .args(["-keyout", "ca.key", "-out", "ca.pem"])
        .current_dir(other.path())
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conf = backend_tls_conf(&other.path().join("ca.pem"));
    let p = Proxy::start(conf.path(), None);
    let res: Result<(), mysql_async::Error> = async {
        let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("passthru"))).await?;
        c.query_drop("SELECT COUNT(*) FROM information_schema.SESSION_STATUS").await
    }
    .await;
    let msg = res.expect_err("a statement through an unverifiable backend").to_string();
    assert!(msg.contains("TLS") && msg.to_ascii_lowercase().contains("certificate"), "{msg}");
}
