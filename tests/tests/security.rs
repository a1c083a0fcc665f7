//! The five attacks of issue 18, each from a connection that speaks the wire
//! format by hand (4-byte length, msgpack frames), against a real instance of
//! three replica processes: each must be refused while the instance keeps
//! serving with its replicated state untouched (the same executed slot and
//! state digest on every replica). Every attack runs twice: without a token,
//! and against an instance with `-t` where the attacker has the token (a
//! token holder is a client, never a peer).
//!
//! Also: a client resumes its own session after a leader failover; a member
//! that proves the secret but sends a message contradicting a decided slot
//! is reported instead of crashing the replica it talks to; a replica
//! without the instance's secret can neither start joining nor join; and an
//! open peer port off loopback is announced loudly.

use concoord_client::proxies::{Counter, Lock};
use concoord_client::{ClientOptions, MethodError};
use concoord_dsync::LockError;
use concoord_integration_tests::netns::Net;
use concoord_integration_tests::{
    COUNTER, Cluster, Replica, ReplicaSpec, binary, log_dir, output_within, runtime, secret_file,
    status, status_with, wait_until,
};
use concoord_transport::InstanceCell;
use concoord_transport::InstanceSecret;
use concoord_transport::handshake::{PeerIdentity, connect_peer};
use concoord_transport::wire::{
    AdminReply, AdminRequest, ClientFrame, Hello, HelloProof, HelloReply, PeerFrame, ReplicaFrame,
    Role, SessionTicket,
};
use futures::SinkExt;
use paxos_core::message::{Accept, CatchupReply, Heartbeat};
use paxos_core::{Ballot, Command, Entry, Message, NodeId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::process::{Command as Process, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOCK: ReplicaSpec = ReplicaSpec::builtin("concoord.object.lock.Lock");
/// The client token of the `-t` variants; the attacker has it too.
const TOKEN: &str = "a-client-token-the-attacker-also-has";

// ----- hand-built frames -----

fn frame(value: &impl Serialize) -> Vec<u8> {
    let body = rmp_serde::to_vec(value).expect("encode");
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend(body);
    f
}

async fn send(s: &mut TcpStream, value: &impl Serialize) -> std::io::Result<()> {
    s.write_all(&frame(value)).await
}

/// The next frame, or `None` once the replica closed the connection.
async fn recv<T: DeserializeOwned>(s: &mut TcpStream) -> Option<T> {
    let read = async {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.ok()?;
        rmp_serde::from_slice(&body).ok()
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the replica answers or closes within 5 s")
}

/// Waits until the replica closes the connection; returns whether it did
/// (rather than keep it open).
async fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .is_ok()
}

fn hello(role: Role, token: Option<&str>) -> Hello {
    let nonce = rand::random::<[u8; 32]>().to_vec();
    Hello::new(role, token.map(str::to_string), nonce)
}

/// Claims to be member `node` and sends `msg` as it, both ways an attacker
/// without the secret can: answering the challenge with a made-up proof, and
/// ignoring the challenge. Returns the replica's reason for the refusal.
async fn forge_as(addr: &str, node: NodeId, token: Option<&str>, msg: &Message) -> String {
    let role = Role::Replica {
        node,
        addr: "127.0.0.1:1".into(),
    };
    let peer_frame = PeerFrame::Paxos(msg.clone());
    // A made-up proof.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    send(&mut s, &hello(role.clone(), token))
        .await
        .expect("send");
    let challenge: Option<HelloReply> = recv(&mut s).await;
    assert!(
        matches!(challenge, Some(HelloReply::Challenge { .. })),
        "{challenge:?}"
    );
    let guess = HelloProof {
        proof: rand::random::<[u8; 32]>().to_vec(),
    };
    send(&mut s, &guess).await.expect("send");
    let reason = match recv::<HelloReply>(&mut s).await {
        Some(HelloReply::Rejected { reason }) => reason,
        other => panic!("a made-up proof must be rejected, got {other:?}"),
    };
    let _ = send(&mut s, &peer_frame).await;
    assert!(closed(&mut s).await, "the connection is closed");
    // No proof at all: the message where the proof should be.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    send(&mut s, &hello(role, token)).await.expect("send");
    let _: Option<HelloReply> = recv(&mut s).await;
    let _ = send(&mut s, &peer_frame).await;
    let next: Option<HelloReply> = recv(&mut s).await;
    assert!(
        !matches!(next, Some(HelloReply::Welcome { .. })),
        "no welcome without a proof: {next:?}"
    );
    assert!(closed(&mut s).await, "the connection is closed");
    reason
}

/// Opens a client connection by hand; returns it and the replica's answer.
async fn client_hello(
    addr: &str,
    session: Option<SessionTicket>,
    token: Option<&str>,
) -> (TcpStream, Option<HelloReply>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    send(&mut s, &hello(Role::Client { session }, token))
        .await
        .expect("send");
    let reply = recv(&mut s).await;
    (s, reply)
}

/// Sends an admin request on a hand-opened client connection.
async fn admin_by_hand(addr: &str, token: Option<&str>, request: AdminRequest) -> AdminReply {
    let (mut s, reply) = client_hello(addr, None, token).await;
    assert!(
        matches!(reply, Some(HelloReply::Welcome { .. })),
        "{reply:?}"
    );
    send(&mut s, &ClientFrame::Admin { id: 7, request })
        .await
        .expect("send");
    loop {
        match recv::<ReplicaFrame>(&mut s).await {
            Some(ReplicaFrame::Admin { id: 7, reply }) => return reply,
            Some(_) => {}
            None => panic!("the replica closed the connection without answering"),
        }
    }
}

/// A logged call as the replicas encode it, of a made-up client.
#[derive(Serialize)]
struct ForgedCall {
    client_id: u64,
    seq: u64,
    acked: u64,
    method: String,
    #[serde(with = "serde_bytes")]
    args: Vec<u8>,
}

/// `n` increments of a made-up client, as one log entry.
fn forged_increments(n: u64) -> Entry {
    let cmds = (1..=n)
        .map(|seq| {
            let call = ForgedCall {
                client_id: 4242,
                seq,
                acked: 0,
                method: "increment".into(),
                args: vec![0x90],
            };
            Command(rmp_serde::to_vec(&call).expect("encode"))
        })
        .collect();
    Entry::Commands(cmds)
}

// ----- the instance under attack -----

struct Target {
    /// The runtime the test's clients live on.
    rt: tokio::runtime::Runtime,
    cluster: Cluster,
    token: Option<&'static str>,
    /// Every replica's (executed slot, state digest) before the attack.
    before: Vec<(u64, u64)>,
    leader: usize,
    leader_node: NodeId,
    ballot: Ballot,
}

fn options(token: Option<&str>) -> ClientOptions {
    ClientOptions {
        token: token.map(str::to_string),
        ..ClientOptions::default()
    }
}

fn start(spec: ReplicaSpec, test: &str, ip: &str, token: Option<&'static str>) -> Cluster {
    let extra: Vec<&str> = token.map(|t| vec!["-t", t]).unwrap_or_default();
    Cluster::start_with(spec, test, ip, 3, &extra, false)
}

impl Target {
    /// Records the state the attack must leave as it is.
    fn settle(
        rt: tokio::runtime::Runtime,
        mut cluster: Cluster,
        token: Option<&'static str>,
    ) -> Target {
        let before = cluster.settled_states();
        let leader = cluster.leader().expect("a leader");
        let s = cluster
            .status(&cluster.replicas[leader].addr)
            .expect("leader status");
        Target {
            rt,
            cluster,
            token,
            before,
            leader,
            leader_node: s.node,
            ballot: s.ballot,
        }
    }

    fn addr(&self, i: usize) -> String {
        self.cluster.replicas[i].addr.clone()
    }

    fn status(&self, i: usize) -> concoord_transport::wire::StatusReport {
        status_with(&self.addr(i), self.token).expect("the replica answers")
    }

    fn node(&self, i: usize) -> NodeId {
        self.status(i).node
    }

    fn followers(&self) -> Vec<usize> {
        (0..3).filter(|i| *i != self.leader).collect()
    }

    fn refused_connections(&self) -> u64 {
        (0..3).map(|i| self.status(i).connections_refused).sum()
    }

    /// After the attack: every replica runs, the leader and its ballot are
    /// the same, and the replicated state is the one before the attack.
    fn assert_untouched(&mut self) {
        std::thread::sleep(Duration::from_millis(1500));
        for (i, r) in self.cluster.replicas.iter_mut().enumerate() {
            assert!(r.is_running(), "replica {i} ({}) is still running", r.addr);
        }
        let after = self.cluster.settled_states();
        assert_eq!(
            after, self.before,
            "executed slot and state digest unchanged"
        );
        let s = self.status(self.leader);
        assert_eq!(s.role, "leader", "the leader still leads");
        assert_eq!(s.ballot, self.ballot, "no ballot was raised");
        for i in 0..3 {
            let s = self.status(i);
            assert_eq!(s.leader.map(|l| l.node), Some(self.leader_node));
            assert!(s.known_commit < 1_000_000, "no forged commit point");
        }
    }
}

/// A counter instance with three increments done by `client`, which stays
/// connected (so no session ends during the attack).
fn counter_target(test: &str, ip: &str, token: Option<&'static str>) -> (Target, Counter) {
    let cluster = start(COUNTER, test, ip, token);
    let boot = cluster.replicas[0].addr.clone();
    let rt = runtime();
    let client = rt
        .block_on(Counter::connect_with(&boot, options(token)))
        .expect("connect");
    for _ in 0..3 {
        rt.block_on(client.increment()).expect("increment");
    }
    (Target::settle(rt, cluster, token), client)
}

/// The instance still serves: the value is the one before, and it counts on.
fn still_counts(rt: &tokio::runtime::Runtime, client: &Counter) {
    assert_eq!(
        rt.block_on(client.getvalue()).expect("read"),
        3,
        "no forged increment ran"
    );
    rt.block_on(client.increment()).expect("increment");
    assert_eq!(rt.block_on(client.getvalue()).expect("read"), 4);
}

// ----- attack 1: a forged catch-up -----

fn forged_catchup_is_refused(test: &str, ip: &str, token: Option<&'static str>) {
    let (mut t, client) = counter_target(test, ip, token);
    let refused = t.refused_connections();
    let next_slot = t.before[0].0 + 1;
    let catchup = Message::CatchupReply(CatchupReply {
        entries: vec![(next_slot, forged_increments(100))],
        views: None,
        commit: next_slot,
    });
    let rt = &t.rt;
    let leader = t.node(t.leader);
    for f in t.followers() {
        // To a follower, claiming the leader; to the leader, claiming a follower.
        let reason = rt.block_on(forge_as(&t.addr(f), leader, t.token, &catchup));
        assert!(reason.contains("peer authentication failed"), "{reason}");
        let reason = rt.block_on(forge_as(&t.addr(t.leader), t.node(f), t.token, &catchup));
        assert!(reason.contains("peer authentication failed"), "{reason}");
    }
    assert!(
        t.refused_connections() >= refused + 4,
        "refusals are counted"
    );
    t.assert_untouched();
    still_counts(&t.rt, &client);
}

#[test]
fn a_forged_catchup_claiming_a_members_id_is_refused() {
    forged_catchup_is_refused("sec_catchup", "127.0.30.1", None);
}

#[test]
fn a_forged_catchup_from_a_token_holder_is_refused() {
    forged_catchup_is_refused("sec_catchup_token", "127.0.30.2", Some(TOKEN));
}

// ----- attack 2: a forged Accept at a higher ballot -----

fn forged_accept_is_refused(test: &str, ip: &str, token: Option<&'static str>) {
    let (mut t, client) = counter_target(test, ip, token);
    let next_slot = t.before[0].0 + 1;
    let accept = Message::Accept(Accept {
        ballot: Ballot {
            round: t.ballot.round + 1,
            leader: t.leader_node,
        },
        entries: vec![(next_slot, forged_increments(50))],
        commit: next_slot,
    });
    let rt = &t.rt;
    for f in t.followers() {
        let reason = rt.block_on(forge_as(&t.addr(f), t.leader_node, t.token, &accept));
        assert!(reason.contains("peer authentication failed"), "{reason}");
    }
    t.assert_untouched();
    still_counts(&t.rt, &client);
}

#[test]
fn a_forged_accept_at_a_higher_ballot_is_refused() {
    forged_accept_is_refused("sec_accept", "127.0.30.3", None);
}

#[test]
fn a_forged_accept_from_a_token_holder_is_refused() {
    forged_accept_is_refused("sec_accept_token", "127.0.30.4", Some(TOKEN));
}

// ----- attack 3: a heartbeat at the last ballot round -----

fn last_round_heartbeat_is_refused(test: &str, ip: &str, token: Option<&'static str>) {
    let (mut t, client) = counter_target(test, ip, token);
    let rt = &t.rt;
    for target in 0..3 {
        let claimed = t.node((target + 1) % 3);
        let heartbeat = Message::Heartbeat(Heartbeat {
            ballot: Ballot {
                round: u64::MAX,
                leader: claimed,
            },
            commit: 1_000_000_000_000,
            round: 0,
        });
        let reason = rt.block_on(forge_as(&t.addr(target), claimed, t.token, &heartbeat));
        assert!(reason.contains("peer authentication failed"), "{reason}");
    }
    t.assert_untouched();
    still_counts(&t.rt, &client);
}

#[test]
fn a_heartbeat_at_the_last_ballot_round_is_refused() {
    last_round_heartbeat_is_refused("sec_heartbeat", "127.0.30.5", None);
}

#[test]
fn a_heartbeat_at_the_last_ballot_round_from_a_token_holder_is_refused() {
    last_round_heartbeat_is_refused("sec_heartbeat_token", "127.0.30.6", Some(TOKEN));
}

// ----- attack 4: a client stopping a member -----

fn client_shutdown_is_refused(test: &str, ip: &str, token: Option<&'static str>) {
    let (mut t, client) = counter_target(test, ip, token);
    let rt = &t.rt;
    for i in 0..3 {
        let reply = rt.block_on(admin_by_hand(&t.addr(i), t.token, AdminRequest::Shutdown));
        match reply {
            AdminReply::Unauthorized(why) => assert!(why.contains("member of the view"), "{why}"),
            other => panic!("a member refuses to stop for a client, got {other:?}"),
        }
    }
    // Nor may a client change the view.
    let remove = AdminRequest::Remove {
        node: t.node(t.followers()[0]),
    };
    let reply = rt.block_on(admin_by_hand(&t.addr(t.leader), t.token, remove));
    assert!(matches!(reply, AdminReply::Unauthorized(_)), "{reply:?}");
    // Claiming to be an operator needs the proof.
    let mut s = rt
        .block_on(TcpStream::connect(t.addr(t.leader)))
        .expect("connect");
    rt.block_on(send(&mut s, &hello(Role::Operator, t.token)))
        .expect("send");
    let _: Option<HelloReply> = rt.block_on(recv(&mut s));
    let guess = HelloProof { proof: vec![0; 32] };
    rt.block_on(send(&mut s, &guess)).expect("send");
    match rt.block_on(recv::<HelloReply>(&mut s)) {
        Some(HelloReply::Rejected { reason }) => {
            assert!(
                reason.contains("operator authentication failed"),
                "{reason}"
            )
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    t.assert_untouched();
    for i in 0..3 {
        assert_eq!(t.status(i).members.len(), 3, "still three members");
    }
    still_counts(&t.rt, &client);
}

#[test]
fn a_client_cannot_stop_a_member() {
    client_shutdown_is_refused("sec_shutdown", "127.0.30.7", None);
}

#[test]
fn a_token_holder_cannot_stop_a_member() {
    client_shutdown_is_refused("sec_shutdown_token", "127.0.30.8", Some(TOKEN));
}

// ----- attack 5: acting as another client's session -----

fn session_hijack_is_refused(test: &str, ip: &str, token: Option<&'static str>) {
    let cluster = start(LOCK, test, ip, token);
    let boot = cluster.replicas[0].addr.clone();
    let rt = runtime();
    let victim = rt
        .block_on(Lock::connect_with(&boot, options(token)))
        .expect("connect");
    let first = rt.block_on(victim.acquire()).expect("acquire");
    let victim_id = victim.client().id();
    let mut t = Target::settle(runtime(), cluster, token);

    // Claiming the victim's session id without its secret, at every replica.
    for i in 0..3 {
        let forged = SessionTicket {
            id: victim_id,
            issued_ms: 1,
            secret: rand::random::<[u8; 32]>().to_vec(),
        };
        let (mut s, reply) = rt.block_on(client_hello(&t.addr(i), Some(forged), t.token));
        match reply {
            Some(HelloReply::Rejected { reason }) => {
                assert!(reason.contains("unknown session"), "{reason}")
            }
            other => panic!("a forged ticket must be rejected, got {other:?}"),
        }
        // Whatever it sends next goes nowhere.
        let close = ClientFrame::Call(concoord_transport::wire::CallRequest {
            seq: 1,
            acked: u64::MAX,
            method: "__concoord_close__".into(),
            args: vec![0x90],
            done: Vec::new(),
        });
        let _ = rt.block_on(send(&mut s, &close));
        assert!(rt.block_on(closed(&mut s)));
    }
    t.assert_untouched();

    // In a session of its own, a release is refused without naming the holder.
    let attacker = rt
        .block_on(Lock::connect_with(&boot, options(token)))
        .expect("connect");
    match rt.block_on(attacker.release()) {
        Err(MethodError::Returned(e)) => {
            assert_eq!(e, LockError::NotHolder);
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains(&victim_id.to_string())
                    && !shown.contains(&format!("{victim_id:016x}")),
                "{shown}"
            );
        }
        other => panic!("expected NotHolder, got {other:?}"),
    }
    // The victim still holds the lock: a third client waits in vain...
    let third = rt
        .block_on(Lock::connect_with(&boot, options(token)))
        .expect("connect");
    assert_eq!(
        rt.block_on(third.acquire_timeout(Duration::from_secs(1)))
            .expect("call"),
        None,
        "the victim keeps its lock"
    );
    // ...until the victim releases it, and the next grant gets the next token.
    rt.block_on(victim.release()).expect("the holder releases");
    let next = rt
        .block_on(third.acquire_timeout(Duration::from_secs(5)))
        .expect("call")
        .expect("granted");
    assert!(next > first);
}

#[test]
fn another_connection_cannot_act_as_a_clients_session() {
    session_hijack_is_refused("sec_session", "127.0.30.9", None);
}

#[test]
fn a_token_holder_cannot_act_as_another_clients_session() {
    session_hijack_is_refused("sec_session_token", "127.0.30.10", Some(TOKEN));
}

// ----- what a legitimate client and member may do -----

#[test]
fn a_reconnecting_client_resumes_its_own_session_after_leader_failover() {
    let mut cluster = start(LOCK, "sec_resume", "127.0.30.11", None);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let holder = rt.block_on(Lock::connect(&boot)).expect("connect");
    let token = rt.block_on(holder.acquire()).expect("acquire");
    let session = holder.client().id();
    let leader = cluster.leader().expect("a leader");
    cluster.replicas[leader].kill9();
    // The holder's next call goes to the new leader on a new connection,
    // presenting its ticket: the same session, still holding the lock.
    rt.block_on(holder.release())
        .expect("the resumed session releases the lock it holds");
    assert_eq!(holder.client().id(), session, "the same session");
    let other = rt
        .block_on(Lock::connect(&cluster.bootstrap_live()))
        .expect("connect");
    let next = rt
        .block_on(other.acquire_timeout(Duration::from_secs(5)))
        .expect("call")
        .expect("granted after the release");
    assert_eq!(next, token + 1);
}

#[test]
fn a_member_contradicting_a_decided_slot_is_reported_and_the_replica_keeps_serving() {
    let (mut t, client) = counter_target("sec_contradiction", "127.0.30.12", None);
    let follower = t.followers()[0];
    let addr = t.addr(follower);
    let secret =
        InstanceSecret::load(&secret_file("sec_contradiction")).expect("the instance secret");
    t.rt.block_on(async {
        // An insider: it holds the secret and speaks as the leader. It
        // decides a far slot one way, then the other way.
        let leader_addr = t.addr(t.leader);
        let insider = PeerIdentity {
            me: t.leader_node,
            my_addr: &leader_addr,
            token: None,
            secret: &secret,
            instance: &InstanceCell::new(None),
            tls: None,
            expect_node: None,
        };
        let (_, mut conn) = connect_peer(&addr, &insider, Duration::from_secs(2))
            .await
            .expect("a member proves the secret");
        let far = t.before[0].0 + 1_000_000;
        for entry in [Entry::Noop, forged_increments(1)] {
            let reply = Message::CatchupReply(CatchupReply {
                entries: vec![(far, entry)],
                views: None,
                commit: 0,
            });
            conn.send(PeerFrame::Paxos(reply)).await.expect("send");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    wait_until(
        Duration::from_secs(5),
        "the contradiction to be counted",
        || t.status(follower).peer_messages_dropped >= 1,
    );
    let log = std::fs::read_to_string(&t.cluster.replicas[follower].log).expect("log");
    assert!(
        log.contains("contradicts what this replica decided"),
        "{log}"
    );
    t.assert_untouched();
    still_counts(&t.rt, &client);
}

#[test]
fn a_joiner_without_the_instance_secret_is_refused_at_start() {
    let out = output_within(
        Process::new(binary("concoord")).args([
            "replica",
            "-o",
            "counter",
            "-a",
            "127.0.30.13",
            "-p",
            "14001",
            "-b",
            "127.0.30.13:14000",
        ]),
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--peer-secret FILE"), "{err}");
}

#[test]
fn a_replica_with_another_instances_secret_never_becomes_a_member() {
    let cluster = Cluster::start("sec_wrong_secret", "127.0.30.14", 1);
    let founder = cluster.replicas[0].addr.clone();
    let other = log_dir("sec_wrong_secret").join("another-instance.secret");
    InstanceSecret::generate()
        .write_file(&other)
        .expect("write a secret");
    let other = other.to_string_lossy().to_string();
    let joiner = Replica::start(
        "sec_wrong_secret",
        "127.0.30.14",
        14001,
        Some(&founder),
        &["--peer-secret", &other],
    );
    // The founder proves itself first: the joiner finds it cannot, and
    // gives up on that connection before saying anything of its own.
    let says = "did not prove it holds this instance's peer secret";
    wait_until(Duration::from_secs(10), "the joiner to notice", || {
        std::fs::read_to_string(&joiner.log).is_ok_and(|l| l.contains(says))
    });
    std::thread::sleep(Duration::from_secs(2));
    let s = status(&founder).expect("the founder answers");
    assert_eq!(s.members.len(), 1, "the joiner was not added");
}

#[test]
fn an_open_peer_port_off_loopback_is_announced_loudly() {
    let net = match Net::create("ccs", 45, 1) {
        Ok(net) => net,
        Err(e) => panic!("this test needs root and iproute2 (scripts/test.sh installs it): {e}"),
    };
    let log = log_dir("sec_open_port").join("replica.log");
    let mut child = net
        .command(1, &binary("concoord"))
        .args([
            "replica",
            "-o",
            "counter",
            "-a",
            &net.addr(1),
            "-p",
            "14000",
        ])
        .arg("--no-peer-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .spawn()
        .expect("spawn a replica");
    let addr = format!("{}:14000", net.addr(1));
    wait_until(Duration::from_secs(10), "the open replica to serve", || {
        status(&addr).is_some()
    });
    let s = status(&addr).expect("status");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !s.peers_authenticated,
        "status says the peers are not authenticated"
    );
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(
        said.contains(&format!("the peer port {addr} is OPEN")),
        "{said}"
    );
}

#[test]
fn an_open_instance_forms_and_serves_but_says_its_peers_are_unauthenticated() {
    let mut cluster = Cluster::start_with(
        COUNTER,
        "sec_open_instance",
        "127.0.30.15",
        2,
        &["--no-peer-secret"],
        false,
    );
    let rt = runtime();
    let boot = cluster.bootstrap_live();
    let counter = rt.block_on(Counter::connect(&boot)).expect("connect");
    rt.block_on(counter.increment()).expect("increment");
    assert_eq!(rt.block_on(counter.getvalue()).expect("read"), 1);
    for r in &cluster.replicas {
        wait_until(Duration::from_secs(10), "both to know the view", || {
            status(&r.addr).is_some_and(|s| s.members.len() == 2)
        });
        assert!(!status(&r.addr).expect("status").peers_authenticated);
    }
    let log = std::fs::read_to_string(&cluster.replicas[0].log).expect("log");
    assert!(log.contains("peer links are NOT authenticated"), "{log}");
    assert!(!log.contains("is OPEN"), "no banner on loopback: {log}");
}
