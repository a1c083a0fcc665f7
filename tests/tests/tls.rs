//! TLS on every link (issue 14), against real replica processes on
//! 127.0.160.K: a TLS instance with a token serves calls and says its links
//! are encrypted; a certificate from another CA is refused on client and
//! peer links; a client certificate cannot open a peer link; no
//! certificate speaks for a member other than the one it names; garbage
//! before and after the TLS handshake closes that connection only; a
//! slowloris connection is closed after the handshake timeout; and 10 000
//! idle connections are bounded while the instance keeps serving calls (its
//! throughput with and without the attack is printed).
//!
//! Certificates come from `throwaway_ca`, as `concoord cluster --tls` makes
//! them.

use concoord_client::ClientOptions;
use concoord_client::proxies::Counter;
use concoord_integration_tests::{
    Replica, binary, log_dir, output_within, runtime, secret_file, wait_until,
};
use concoord_transport::InstanceCell;
use concoord_transport::InstanceSecret;
use concoord_transport::admin::admin_request_tls;
use concoord_transport::handshake::{
    PeerConnection, PeerIdentity, connect_client_tls, connect_peer,
};
use concoord_transport::throwaway_ca::ThrowawayCa;
use concoord_transport::tls_config::{ClientTls, TlsFiles, server_name};
use concoord_transport::wire::{AdminReply, AdminRequest, StatusReport};
use concoord_transport::{HandshakeError, TlsError};
use paxos_core::NodeId;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Dials `addr` as replica `me` at `my_addr` (an instance not known yet).
async fn dial_peer(
    addr: &str,
    me: NodeId,
    my_addr: &str,
    token: Option<String>,
    secret: &InstanceSecret,
    tls: Option<&ClientTls>,
    limit: Duration,
) -> Result<(NodeId, PeerConnection), HandshakeError> {
    let instance = InstanceCell::new(None);
    let identity = PeerIdentity {
        me,
        my_addr,
        token,
        secret,
        instance: &instance,
        tls,
        expect_node: None,
    };
    connect_peer(addr, &identity, limit).await
}

const TOKEN: &str = "tls-test-token";
const LIMIT: Duration = Duration::from_secs(2);

/// A CA and the certificates a test issues with it, in the test's log dir.
struct Pki {
    dir: PathBuf,
    ca: ThrowawayCa,
}

impl Pki {
    fn new(test: &str, name: &str) -> Pki {
        let dir = log_dir(test).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tls dir");
        let ca = ThrowawayCa::new(name).expect("a CA");
        ca.write_cert(&dir).expect("write the CA");
        Pki { dir, ca }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The files of the replica certificate for `addr`.
    fn replica(&self, addr: &str) -> TlsFiles {
        let stem = format!("replica-{}", addr.replace([':', '.'], "_"));
        let (cert, key) = self
            .ca
            .replica(addr)
            .expect("issue")
            .write(&self.dir, &stem)
            .expect("write");
        TlsFiles {
            cert: Some(cert),
            key: Some(key),
            ca: self.ca_file(),
        }
    }

    /// The files of a client certificate for `name`.
    fn client(&self, name: &str) -> TlsFiles {
        let (cert, key) = self
            .ca
            .client(name)
            .expect("issue")
            .write(&self.dir, &format!("client-{name}"))
            .expect("write");
        TlsFiles {
            cert: Some(cert),
            key: Some(key),
            ca: self.ca_file(),
        }
    }

    /// A client that trusts this CA and presents no certificate.
    fn anonymous(&self) -> ClientTls {
        TlsFiles {
            cert: None,
            key: None,
            ca: self.ca_file(),
        }
        .client()
        .expect("client tls")
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The flags of a replica with the certificate of its own address.
fn tls_flags(files: &TlsFiles) -> Vec<String> {
    vec![
        "--tls-ca".into(),
        path(&files.ca),
        "--tls-cert".into(),
        path(files.cert.as_deref().expect("cert")),
        "--tls-key".into(),
        path(files.key.as_deref().expect("key")),
    ]
}

/// Starts the replica at `ip:port` with TLS and the token.
fn start(test: &str, pki: &Pki, ip: &str, port: u16, boot: Option<&str>) -> Replica {
    let mut flags = tls_flags(&pki.replica(&format!("{ip}:{port}")));
    flags.extend(["-t".to_string(), TOKEN.to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Replica::start(test, ip, port, boot, &flags)
}

async fn status_async(addr: &str, tls: &ClientTls) -> Option<StatusReport> {
    let request = AdminRequest::Status;
    let token = Some(TOKEN.to_string());
    match admin_request_tls(addr, None, token, Some(tls), request, LIMIT).await {
        Ok(AdminReply::Status(r)) => Some(*r),
        _ => None,
    }
}

fn status(addr: &str, tls: &ClientTls) -> Option<StatusReport> {
    runtime().block_on(status_async(addr, tls))
}

/// Starts `n` replicas on `ip` (ports from 14000) and waits until they form
/// one view with a leader.
fn tls_instance(test: &str, pki: &Pki, ip: &str, n: u16) -> Vec<Replica> {
    let first = format!("{ip}:14000");
    let mut replicas = vec![start(test, pki, ip, 14000, None)];
    let tls = pki.anonymous();
    wait_until(Duration::from_secs(20), "the founder to answer", || {
        status(&first, &tls).is_some()
    });
    for port in 14001..14000 + n {
        replicas.push(start(test, pki, ip, port, Some(&first)));
    }
    wait_until(Duration::from_secs(30), "every replica to join", || {
        status(&first, &tls).is_some_and(|s| s.members.len() == n as usize && s.leader.is_some())
    });
    replicas
}

fn options(tls: ClientTls) -> ClientOptions {
    ClientOptions {
        token: Some(TOKEN.to_string()),
        tls: Some(tls),
        call_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn log_of(r: &Replica) -> String {
    std::fs::read_to_string(&r.log).unwrap_or_default()
}

/// Waits until `r`'s log holds `needle`.
fn logged(r: &Replica, needle: &str) {
    wait_until(
        Duration::from_secs(10),
        &format!("log line {needle:?}"),
        || log_of(r).contains(needle),
    );
}

/// Whether the other side closes `s` within `within` (reading whatever it
/// sends first).
async fn closed_within(s: &mut (impl AsyncReadExt + Unpin), within: Duration) -> bool {
    let mut rest = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut rest))
        .await
        .is_ok()
}

async fn still_serves(boot: &str, tls: &ClientTls) {
    let c = Counter::connect_with(boot, options(tls.clone()))
        .await
        .expect("a good client connects");
    let before = c.getvalue().await.expect("read");
    c.increment().await.expect("write");
    assert_eq!(c.getvalue().await.expect("read"), before + 1);
}

#[test]
fn a_tls_instance_with_a_token_serves_calls_and_says_its_links_are_encrypted() {
    let test = "tls_serves";
    let pki = Pki::new(test, "ca");
    let replicas = tls_instance(test, &pki, "127.0.160.1", 3);
    let boot = replicas
        .iter()
        .map(|r| r.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let rt = runtime();
    // The library client, with a client certificate.
    let tls = pki.client("alice").client().expect("client tls");
    let counter = rt
        .block_on(Counter::connect_with(&boot, options(tls)))
        .expect("connect");
    for _ in 0..5 {
        rt.block_on(counter.increment()).expect("increment");
    }
    assert_eq!(rt.block_on(counter.getvalue()).expect("read"), 5);
    // The command line, without a client certificate.
    let ca = path(&pki.ca_file());
    let call = |method: &str| {
        output_within(
            Command::new(binary("concoord"))
                .args(["call", "-b", &boot, "-t", TOKEN, "--tls-ca", &ca, method]),
            Duration::from_secs(20),
        )
    };
    assert!(call("increment").status.success());
    let read = call("getvalue");
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "6");
    let shown = output_within(
        Command::new(binary("concoord"))
            .args(["status", "-b", &boot, "-t", TOKEN, "--tls-ca", &ca]),
        Duration::from_secs(20),
    );
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert_eq!(
        shown.matches("links are encrypted (TLS").count(),
        3,
        "{shown}"
    );
    // Plain TCP gets nowhere: the replica sees no TLS record.
    let plain = output_within(
        Command::new(binary("concoord")).args([
            "call",
            "-b",
            &boot,
            "-t",
            TOKEN,
            "--timeout",
            "2",
            "getvalue",
        ]),
        Duration::from_secs(20),
    );
    assert!(!plain.status.success());
    logged(&replicas[0], "connection refused: TLS handshake with");
    // Nothing secret in any log.
    for r in &replicas {
        let log = log_of(r);
        assert!(!log.contains(TOKEN), "the token is in {}", r.log.display());
        assert!(
            !log.contains("PRIVATE KEY"),
            "a key is in {}",
            r.log.display()
        );
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused_on_client_and_peer_links() {
    let test = "tls_other_ca";
    let pki = Pki::new(test, "ca");
    let rogue = Pki::new(test, "rogue-ca");
    let ip = "127.0.160.2";
    let replicas = tls_instance(test, &pki, ip, 2);
    let addr = replicas[0].addr.clone();
    let secret = InstanceSecret::load(&secret_file(test)).expect("secret");
    let rt = runtime();
    rt.block_on(async {
        // A client certificate of another CA, on a client link (the client
        // trusts the instance's CA, so only its own certificate is wrong).
        let rogue_client = TlsFiles {
            ca: pki.ca_file(),
            ..rogue.client("mallory")
        }
        .client()
        .expect("tls");
        let got =
            connect_client_tls(&addr, None, Some(TOKEN.into()), Some(&rogue_client), LIMIT).await;
        assert!(got.is_err(), "a rogue client certificate is refused");
        logged(&replicas[0], "connection refused: TLS handshake with");
        // A replica certificate of another CA, for a new member's address,
        // on a peer link (even with the instance secret).
        let rogue_replica = TlsFiles {
            ca: pki.ca_file(),
            ..rogue.replica(&format!("{ip}:14009"))
        }
        .client()
        .expect("tls");
        let me = format!("{ip}:14009");
        let got = dial_peer(
            &addr,
            NodeId(77),
            &me,
            Some(TOKEN.into()),
            &secret,
            Some(&rogue_replica),
            LIMIT,
        )
        .await;
        assert!(
            !matches!(got, Ok(_) | Err(HandshakeError::Rejected { .. })),
            "a rogue peer certificate is refused by TLS itself"
        );
        // A replica that trusts another CA does not accept the instance's.
        let got = connect_client_tls(
            &addr,
            None,
            Some(TOKEN.into()),
            Some(&rogue.anonymous()),
            LIMIT,
        )
        .await;
        let Err(HandshakeError::Tls { source, .. }) = got else {
            panic!("the instance's certificate must not verify against another CA");
        };
        assert!(source.to_string().contains("UnknownIssuer"), "{source}");
        still_serves(&addr, &pki.anonymous()).await;
    });
    let s = status(&addr, &pki.anonymous()).expect("status");
    assert!(s.connections_refused >= 2, "{}", s.connections_refused);
}

#[test]
fn a_client_certificate_cannot_open_a_peer_link() {
    let test = "tls_client_cert_peer";
    let pki = Pki::new(test, "ca");
    let ip = "127.0.160.3";
    let replicas = tls_instance(test, &pki, ip, 2);
    let addr = replicas[0].addr.clone();
    // The attacker even holds the instance secret: the certificate is what
    // refuses it.
    let secret = InstanceSecret::load(&secret_file(test)).expect("secret");
    let client_cert = pki.client("mallory").client().expect("tls");
    runtime().block_on(async {
        let got = dial_peer(
            &addr,
            NodeId(77),
            &format!("{ip}:14009"),
            Some(TOKEN.into()),
            &secret,
            Some(&client_cert),
            LIMIT,
        )
        .await;
        let Err(HandshakeError::Rejected { reason, .. }) = got else {
            panic!("a client certificate on a peer link must be rejected");
        };
        assert!(reason.contains("a client certificate"), "{reason}");
        // No certificate at all.
        let got = dial_peer(
            &addr,
            NodeId(78),
            &format!("{ip}:14009"),
            Some(TOKEN.into()),
            &secret,
            Some(&pki.anonymous()),
            LIMIT,
        )
        .await;
        let Err(HandshakeError::Rejected { reason, .. }) = got else {
            panic!("a peer link without a certificate must be rejected");
        };
        assert!(reason.contains("no certificate"), "{reason}");
        logged(
            &replicas[0],
            "peer certificate refused: a client certificate",
        );
        still_serves(&addr, &pki.anonymous()).await;
    });
}

#[test]
fn no_connection_can_claim_a_members_node_id() {
    let test = "tls_claim_member";
    let pki = Pki::new(test, "ca");
    let ip = "127.0.160.4";
    let replicas = tls_instance(test, &pki, ip, 2);
    let (a, b) = (replicas[0].addr.clone(), replicas[1].addr.clone());
    let secret = InstanceSecret::load(&secret_file(test)).expect("secret");
    let tls = pki.anonymous();
    let member_b = status(&b, &tls).expect("status").node;
    // A genuine replica certificate, but for another address.
    let elsewhere = format!("{ip}:14009");
    let other = pki.replica(&elsewhere).client().expect("tls");
    let client_cert = pki.client("mallory").client().expect("tls");
    runtime().block_on(async {
        let claim = |my_addr: String, tls: ClientTls| {
            let (a, secret) = (a.clone(), secret.clone());
            async move {
                let got = dial_peer(
                    &a,
                    member_b,
                    &my_addr,
                    Some(TOKEN.into()),
                    &secret,
                    Some(&tls),
                    LIMIT,
                )
                .await;
                match got {
                    Err(HandshakeError::Rejected { reason, .. }) => reason,
                    Err(e) => panic!("expected a rejection, got {e}"),
                    Ok(_) => panic!("a connection spoke for member {member_b}"),
                }
            }
        };
        // B's node id at B's address, with a certificate for another address.
        let reason = claim(b.clone(), other.clone()).await;
        assert!(
            reason.contains(&format!("speaks for {elsewhere}")),
            "{reason}"
        );
        // B's node id at the address the certificate names.
        let reason = claim(elsewhere.clone(), other).await;
        assert!(
            reason.contains(&format!("is the member at {b}")),
            "{reason}"
        );
        // B's node id with a client certificate.
        let reason = claim(b.clone(), client_cert.clone()).await;
        assert!(reason.contains("a client certificate"), "{reason}");
        // As a client, it is only a client: its own new session.
        let (node, ticket, _) =
            connect_client_tls(&a, None, Some(TOKEN.into()), Some(&client_cert), LIMIT)
                .await
                .expect("a client connects as a client");
        assert_ne!(node, member_b);
        assert_ne!(ticket.id, member_b.0);
        logged(&replicas[0], &format!("is the member at {b}"));
        still_serves(&a, &tls).await;
    });
    let s = status(&a, &tls).expect("status");
    assert_eq!(s.members.len(), 2, "the view is unchanged");
}

#[test]
fn garbage_before_and_after_the_tls_handshake_closes_that_connection_only() {
    let test = "tls_garbage";
    let pki = Pki::new(test, "ca");
    let replicas = tls_instance(test, &pki, "127.0.160.5", 1);
    let addr = replicas[0].addr.clone();
    let tls = pki.anonymous();
    runtime().block_on(async {
        // Before: bytes that are no TLS record.
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        assert!(closed_within(&mut s, Duration::from_secs(5)).await);
        logged(&replicas[0], "connection refused: TLS handshake with");
        still_serves(&addr, &tls).await;

        // After the TLS handshake, instead of a Hello.
        let tcp = TcpStream::connect(&addr).await.expect("connect");
        let name = server_name(&addr).expect("name");
        let mut s = tls
            .connector()
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        s.write_all(&[0x00, 0x00, 0x00, 0x05, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1])
            .await
            .expect("write");
        s.flush().await.expect("flush");
        assert!(closed_within(&mut s, Duration::from_secs(5)).await);
        logged(&replicas[0], "failed: malformed message");
        still_serves(&addr, &tls).await;

        // After the whole handshake: a client session sends garbage.
        let (_, _, conn) = connect_client_tls(&addr, None, Some(TOKEN.into()), Some(&tls), LIMIT)
            .await
            .expect("handshake");
        let mut stream = conn.into_inner();
        stream
            .write_all(&[0x7f, 0xff, 0xff, 0xff])
            .await
            .expect("write");
        stream.flush().await.expect("flush");
        assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
        logged(&replicas[0], "closing client connection");
        still_serves(&addr, &tls).await;
    });
}

/// Calls completed by 8 concurrent callers on `counter` in `during`.
async fn calls_in(counter: &Counter, during: Duration) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + during;
    let mut callers = Vec::new();
    for _ in 0..8 {
        let (c, done) = (counter.clone(), done.clone());
        callers.push(tokio::spawn(async move {
            while Instant::now() < until {
                c.increment().await.expect("a call during the attack");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for caller in callers {
        caller.await.expect("caller");
    }
    done.load(Ordering::Relaxed)
}

/// A TLS record header announcing a ClientHello that never comes.
const SLOWLORIS_START: [u8; 5] = [0x16, 0x03, 0x01, 0x02, 0x00];
/// Idle connections opened against one replica.
const IDLE_CONNECTIONS: usize = 10_000;

#[test]
fn slowloris_and_ten_thousand_idle_connections_are_bounded_while_calls_go_on() {
    let test = "tls_flood";
    let pki = Pki::new(test, "ca");
    let replicas = tls_instance(test, &pki, "127.0.160.6", 1);
    let addr = replicas[0].addr.clone();
    let tls = pki.anonymous();
    let rt = runtime();
    rt.block_on(async {
        let counter = Counter::connect_with(&addr, options(tls.clone()))
            .await
            .expect("connect");
        let measure = Duration::from_secs(3);
        let quiet = calls_in(&counter, measure).await;

        // Slowloris: one connection that starts a ClientHello and stalls.
        let mut slow = TcpStream::connect(&addr).await.expect("connect");
        slow.write_all(&SLOWLORIS_START).await.expect("write");
        let slow_since = Instant::now();
        let slow_closed = tokio::spawn(async move {
            let closed = closed_within(&mut slow, Duration::from_secs(15)).await;
            (closed, slow_since.elapsed())
        });

        // The flood: 10 000 connections that send nothing, held open.
        let flood_addr = addr.clone();
        let flood = tokio::spawn(async move {
            let mut held = Vec::with_capacity(IDLE_CONNECTIONS);
            let mut failed = 0usize;
            for _ in 0..IDLE_CONNECTIONS {
                match TcpStream::connect(&flood_addr).await {
                    Ok(s) => held.push(s),
                    Err(_) => failed += 1,
                }
            }
            (held, failed)
        });
        let attacked = calls_in(&counter, measure).await;
        let (held, failed) = flood.await.expect("flood");
        eprintln!(
            "calls in {measure:?} by 8 callers over TLS: {quiet} without an attack, {attacked} \
             during a slowloris and {IDLE_CONNECTIONS} idle connections ({} opened, {failed} \
             failed to open)",
            held.len()
        );
        assert!(attacked > 0, "calls went on during the attack");
        assert!(
            attacked * 5 >= quiet,
            "throughput fell more than fivefold: {quiet} -> {attacked}"
        );
        let (closed, after) = slow_closed.await.expect("slowloris");
        assert!(closed, "the slowloris connection was closed");
        assert!(
            after >= Duration::from_secs(4) && after < Duration::from_secs(10),
            "closed after the 5 s handshake timeout, not {after:?}"
        );
        logged(&replicas[0], "did not finish its handshake within 5s");
        logged(&replicas[0], "too many connections in their handshake");
        // While the flood holds every handshake place, new connections are
        // closed at once (the connected client above kept calling); once it
        // stops, they get in again within the handshake timeout.
        drop(held);
        let stopped = Instant::now();
        let s = loop {
            if let Some(s) = status_async(&addr, &tls).await {
                break s;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(10),
                "no new connection got in"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!(
            "a new connection got in {:?} after the flood stopped",
            stopped.elapsed()
        );
        assert!(
            s.connections_over_limit as usize >= IDLE_CONNECTIONS / 2,
            "most idle connections are closed at once, not held: {}",
            s.connections_over_limit
        );
        still_serves(&addr, &tls).await;
    });
}

#[test]
fn a_replica_refuses_tls_flags_that_do_not_fit_with_what_to_do() {
    let test = "tls_flags";
    let pki = Pki::new(test, "ca");
    let ca = path(&pki.ca_file());
    let run = |extra: &[&str]| {
        let out = output_within(
            Command::new(binary("concoord"))
                .args([
                    "replica",
                    "-o",
                    "counter",
                    "-a",
                    "127.0.160.7",
                    "-p",
                    "14000",
                    "--no-peer-secret",
                ])
                .args(extra),
            Duration::from_secs(10),
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(&["--tls-ca", &ca]);
    assert!(err.contains("--tls-cert and --tls-key"), "{err}");
    let err = run(&[
        "--tls-ca",
        "/nonexistent/ca.pem",
        "--tls-cert",
        &ca,
        "--tls-key",
        &ca,
    ]);
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    // The library says the same.
    let half = TlsFiles {
        cert: Some(pki.ca_file()),
        key: None,
        ca: pki.ca_file(),
    };
    assert!(matches!(half.client(), Err(TlsError::Flags(_))));
}
