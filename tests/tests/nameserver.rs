//! The DNS name server (`-n`) against real queries: `dig` and hickory-resolver
//! ask replicas (each on its own loopback address, so NS lists each) and a
//! `concoord nameserver` outside the view, through a join, a removal and the
//! leader's kill -9; a client finds the instance by its domain.

use concoord_client::ClientOptions;
use concoord_client::proxies::Counter;
use concoord_integration_tests::dns::{DOMAIN, Dig, dig, hickory_answers, soa_serial};
use concoord_integration_tests::{
    Replica, binary, output_within, remove_member, runtime, status, wait_until,
};
use concoord_nameserver::{LocalView, NameServer, NameServerConfig, ViewSource};
use hickory_resolver::proto::rr::RecordType;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The DNS port every name server of these tests answers on (each on its
/// own address).
const DNS_PORT: u16 = 15353;
/// The replicas' port.
const PORT: u16 = 14000;
/// How long the zone may take to follow a view change.
const FOLLOW_LIMIT: Duration = Duration::from_secs(20);

fn dns_at(ip: &str) -> SocketAddr {
    format!("{ip}:{DNS_PORT}")
        .parse()
        .expect("a socket address")
}

/// Replicas on `ips` (the first founds the instance), each answering DNS
/// for DOMAIN on its own address when `with_dns`.
fn start_instance(test: &str, ips: &[&str], with_dns: bool) -> Vec<Replica> {
    let mut replicas: Vec<Replica> = Vec::new();
    for ip in ips {
        replicas.push(start_replica(test, ip, replicas.first(), with_dns));
        if replicas.len() == 1 {
            let addr = replicas[0].addr.clone();
            wait_until(Duration::from_secs(10), "the founder to lead", || {
                status(&addr).is_some_and(|s| s.role == "leader")
            });
        }
    }
    let founder = replicas[0].addr.clone();
    wait_until(Duration::from_secs(30), "every replica to join", || {
        status(&founder).is_some_and(|s| s.members.len() == ips.len())
    });
    replicas
}

fn start_replica(test: &str, ip: &str, boot: Option<&Replica>, with_dns: bool) -> Replica {
    let port = DNS_PORT.to_string();
    let mut flags = vec!["--suspect-after", "1", "--remove-after", "2"];
    if with_dns {
        flags.extend(["-n", DOMAIN, "--dns-port", &port]);
    }
    Replica::start(test, ip, PORT, boot.map(|b| b.addr.as_str()), &flags)
}

/// Whether the name server at `server` answers exactly the instance of
/// `ips` (all serving DNS when `all_dns`): A, SRV, TXT with one leader, NS.
fn answers_view(server: SocketAddr, ips: &[&str], all_dns: bool) -> bool {
    let mut want_a: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
    want_a.sort();
    let a = dig(server, "A", DOMAIN);
    let srv = dig(server, "SRV", &format!("_concoord._tcp.{DOMAIN}"));
    let txt = dig(server, "TXT", DOMAIN);
    let ns = dig(server, "NS", DOMAIN);
    let leaders = txt.answers.iter().filter(|t| t.contains(" leader")).count();
    a.sorted() == want_a
        && srv.answers.len() == ips.len()
        && txt
            .answers
            .iter()
            .filter(|t| t.contains(" replica"))
            .count()
            == ips.len()
        && leaders == 1
        && (!all_dns || ns.answers.len() == ips.len())
}

/// Checks every record type at `server` for the instance of `ips`, with
/// dig and hickory-resolver alike; prints dig's answers.
fn check_every_record_type(rt: &tokio::runtime::Runtime, server: SocketAddr, ips: &[&str]) {
    let srv_name = format!("_concoord._tcp.{DOMAIN}");
    let queries = [
        ("A", RecordType::A, DOMAIN.to_string()),
        ("SRV", RecordType::SRV, srv_name.clone()),
        ("TXT", RecordType::TXT, DOMAIN.to_string()),
        ("NS", RecordType::NS, DOMAIN.to_string()),
        ("SOA", RecordType::SOA, DOMAIN.to_string()),
    ];
    for (mnemonic, rtype, name) in &queries {
        let d = dig(server, mnemonic, name);
        println!(
            "dig @{server} -t {mnemonic} {name}: {} {:?}",
            d.status, d.answers
        );
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert!(d.authoritative(), "an authoritative answer: {}", d.raw);
        assert!(!d.answers.is_empty(), "{}", d.raw);
        // hickory prints TXT data without dig's quotes.
        let mut from_dig: Vec<String> = d
            .answers
            .iter()
            .map(|a| a.trim_matches('"').to_string())
            .collect();
        from_dig.sort();
        let hickory = hickory_answers(rt, server, *rtype, name);
        assert_eq!(
            hickory, from_dig,
            "hickory-resolver and dig get the same {mnemonic} records"
        );
    }
    // Every SRV target is a name the same server resolves, to that replica's IP.
    for srv in dig(server, "SRV", &srv_name).answers {
        let fields: Vec<&str> = srv.split_whitespace().collect();
        assert_eq!(fields.len(), 4, "priority weight port target: {srv}");
        assert_eq!(fields[2], PORT.to_string());
        let target = dig(server, "A", fields[3]);
        assert_eq!(target.status, "NOERROR", "{}", target.raw);
        assert_eq!(target.answers.len(), 1, "{}", target.raw);
        assert!(
            ips.contains(&target.answers[0].as_str()),
            "{srv} -> {:?}",
            target.answers
        );
        assert_eq!(
            fields[3],
            format!("{}.ipaddr.{DOMAIN}.", target.answers[0].replace('.', "-"))
        );
    }
    // Every NS name has glue in the zone.
    for ns in dig(server, "NS", DOMAIN).answers {
        let glue = dig(server, "A", &ns);
        assert_eq!(glue.answers.len(), 1, "{}", glue.raw);
    }
}

/// Waits until each name server on `servers` answers exactly the instance
/// of `view`, and checks that the SOA serial of each one seen before grew
/// (each server keeps its own serial); records the new serials.
fn follow_the_view(
    servers: &[&str],
    view: &[&str],
    serials: &mut HashMap<String, u32>,
    change: &str,
) {
    for ip in servers {
        wait_until(FOLLOW_LIMIT, &format!("{ip} to follow {change}"), || {
            answers_view(dns_at(ip), view, true)
        });
        let now = soa_serial(dns_at(ip));
        if let Some(before) = serials.insert(ip.to_string(), now) {
            assert!(
                now > before,
                "the SOA serial of {ip} grows with {change} ({before} -> {now})"
            );
        }
    }
}

#[test]
fn every_record_type_follows_the_view_through_a_join_a_removal_and_the_leaders_kill() {
    let test = "nameserver-view";
    let ips = ["127.0.50.1", "127.0.50.2", "127.0.50.3"];
    let mut replicas = start_instance(test, &ips, true);
    let rt = runtime();
    let mut serials = HashMap::new();

    println!("phase 1: three replicas, each answering every record type");
    follow_the_view(&ips, &ips, &mut serials, "the founding");
    for ip in ips {
        check_every_record_type(&rt, dns_at(ip), &ips);
    }
    let outside = dig(dns_at(ips[0]), "A", "example.org");
    assert_eq!(outside.status, "REFUSED", "{}", outside.raw);
    let missing = dig(dns_at(ips[0]), "A", &format!("nothing.{DOMAIN}"));
    assert_eq!(missing.status, "NXDOMAIN", "{}", missing.raw);
    assert!(missing.authoritative(), "{}", missing.raw);

    println!("phase 2: a fourth replica joins; every name server lists it");
    let joined = "127.0.50.4";
    replicas.push(start_replica(test, joined, replicas.first(), true));
    let four = [ips[0], ips[1], ips[2], joined];
    follow_the_view(&four, &four, &mut serials, "the join");

    println!("phase 3: concoord remove takes it out of every answer");
    remove_member(test, &replicas[0].addr, &replicas[3].addr);
    follow_the_view(&ips, &ips, &mut serials, "the removal");

    println!("phase 4: kill -9 of the leader; the survivors answer without it");
    let leader = replicas
        .iter()
        .take(3)
        .position(|r| status(&r.addr).is_some_and(|s| s.role == "leader"))
        .expect("a leader");
    replicas[leader].kill9();
    let survivors: Vec<&str> = ips
        .iter()
        .enumerate()
        .filter_map(|(i, ip)| (i != leader).then_some(*ip))
        .collect();
    follow_the_view(&survivors, &survivors, &mut serials, "the leader's kill");
    for ip in &survivors {
        check_every_record_type(&rt, dns_at(ip), &survivors);
    }
}

#[test]
fn a_malformed_dns_packet_gets_no_crash() {
    let test = "nameserver-malformed";
    let ip = "127.0.51.1";
    let mut replicas = start_instance(test, &[ip], true);
    let server = dns_at(ip);
    wait_until(FOLLOW_LIMIT, "the zone", || {
        answers_view(server, &[ip], true)
    });

    let udp = UdpSocket::bind("127.0.51.1:0").expect("a UDP socket");
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x00",
        // A header that promises a question and ends.
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
        // A question whose label runs past the packet.
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
        // 65,535 questions, and a compression pointer to itself.
        b"\xab\xcd\x01\x00\xff\xff\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
    ];
    for packet in garbage {
        let _ = udp.send_to(packet, server);
    }
    // TCP: a length prefix promising more than is sent, then a hang-up.
    if let Ok(mut tcp) = std::net::TcpStream::connect(server) {
        use std::io::Write;
        let _ = tcp.write_all(b"\xff\xff\x12\x34\x01");
    }
    std::thread::sleep(Duration::from_millis(300));

    assert!(replicas[0].is_running(), "the replica survived the packets");
    let d = dig(server, "A", DOMAIN);
    assert_eq!(d.answers, vec![ip.to_string()], "{}", d.raw);
}

#[test]
fn concoord_call_and_status_find_the_instance_by_its_domain() {
    let test = "nameserver-call";
    let ips = ["127.0.52.1", "127.0.52.2", "127.0.52.3"];
    let _replicas = start_instance(test, &ips, true);
    let server = dns_at(ips[1]);
    wait_until(FOLLOW_LIMIT, "the zone", || {
        answers_view(server, &ips, true)
    });
    let dns_server = server.to_string();

    let call = |args: &[&str]| {
        output_within(
            Command::new(binary("concoord"))
                .args(["call", "-b", DOMAIN, "--dns-server", &dns_server])
                .args(args),
            Duration::from_secs(20),
        )
    };
    let out = call(&["increment"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null");
    let out = call(&["getvalue"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");

    let out = output_within(
        Command::new(binary("concoord")).args([
            "status",
            "-b",
            DOMAIN,
            "--dns-server",
            &dns_server,
            "--json",
        ]),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One report per replica the name server lists, each saying where it
    // answers DNS.
    let mut reported: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let r: serde_json::Value = serde_json::from_str(line).expect("a JSON status line");
            let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (field(&r["addr"]), field(&r["dns"]["addr"]))
        })
        .collect();
    reported.sort();
    let want: Vec<(String, String)> = ips
        .iter()
        .map(|ip| (format!("{ip}:{PORT}"), dns_at(ip).to_string()))
        .collect();
    assert_eq!(reported, want);
}

#[test]
fn a_name_server_outside_the_view_follows_it_and_keeps_answering_when_it_is_gone() {
    let test = "nameserver-standalone";
    let ips = ["127.0.53.1", "127.0.53.2", "127.0.53.3"];
    let mut replicas = start_instance(test, &ips, false);
    let ns_ip = "127.0.53.9";
    let server = dns_at(ns_ip);
    let log = std::fs::File::create(concoord_integration_tests::log_dir(test).join("ns.log"))
        .expect("log");
    let mut ns: Child = Command::new(binary("concoord"))
        .args([
            "nameserver",
            "-n",
            DOMAIN,
            "-b",
            &replicas[0].addr,
            "-a",
            ns_ip,
        ])
        .args(["--dns-port", &DNS_PORT.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn concoord nameserver");

    wait_until(FOLLOW_LIMIT, "the name server to follow the view", || {
        answers_view(server, &ips, false)
    });
    let ns_records = dig(server, "NS", DOMAIN);
    assert_eq!(
        ns_records.answers,
        vec![format!("127-0-53-9.ipaddr.{DOMAIN}.")]
    );
    let txt = dig(server, "TXT", DOMAIN);
    assert!(
        txt.answers
            .contains(&format!("\"{ns_ip}:{DNS_PORT} nameserver\"")),
        "{}",
        txt.raw
    );

    // A typed proxy connects by the domain through this name server.
    let rt = runtime();
    let options = ClientOptions {
        dns_server: Some(server),
        ..ClientOptions::default()
    };
    rt.block_on(async {
        let c = Counter::connect_with(DOMAIN, options)
            .await
            .expect("connect by domain");
        c.increment().await.expect("increment");
        assert_eq!(c.getvalue().await.expect("getvalue"), 1);
    });

    for r in &mut replicas {
        r.kill9();
    }
    std::thread::sleep(Duration::from_secs(3));
    let after: Dig = dig(server, "A", DOMAIN);
    let mut want: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        after.sorted(),
        want,
        "answers from the last view: {}",
        after.raw
    );
    assert!(
        matches!(ns.try_wait(), Ok(None)),
        "the name server still runs"
    );
    let _ = ns.kill();
    let _ = ns.wait();
}

#[test]
fn port_53_without_privileges_is_refused_saying_what_to_do() {
    let unprivileged_from: u32 =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
    if unprivileged_from <= 53 || !std::path::Path::new("/usr/bin/setpriv").exists() {
        println!("skipped: port 53 is not privileged here, or setpriv is missing");
        return;
    }
    // As user nobody, without capabilities.
    let out = output_within(
        Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(binary("concoord"))
            .args([
                "replica",
                "-o",
                "counter",
                "-a",
                "127.0.54.1",
                "--no-peer-secret",
            ])
            .args(["-n", DOMAIN]),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("127.0.54.1:53"), "{stderr}");
    assert!(stderr.contains("--dns-port"), "{stderr}");
}

#[test]
fn a_client_that_lost_every_replica_resolves_the_domain_again() {
    let test = "nameserver-resolve-again";
    let (first, second) = ("127.0.57.1", "127.0.57.2");
    let mut old = Replica::start(test, first, PORT, None, &["--no-peer-secret"]);
    let rt = runtime();
    // A name server this test points at one instance and then another: the
    // zone of a replica whose driver hands it `view`.
    let (view, views) = tokio::sync::watch::channel(LocalView {
        epoch: 1,
        members: vec![old.addr.clone()],
        leader: Some(old.addr.clone()),
    });
    let dns = dns_at("127.0.57.9");
    let _server = rt.block_on(async {
        let source = ViewSource::Local {
            view: views,
            me: old.addr.clone(),
        };
        let server = NameServer::start(NameServerConfig::new(DOMAIN, dns), source)
            .await
            .expect("a name server");
        server.wait_for_serial().await;
        server
    });
    let options = ClientOptions {
        dns_server: Some(dns),
        call_timeout: Duration::from_secs(15),
        ..ClientOptions::default()
    };
    let counter = rt.block_on(async {
        let c = Counter::connect_with(DOMAIN, options)
            .await
            .expect("connect by domain");
        c.increment().await.expect("increment");
        c.increment().await.expect("increment");
        assert_eq!(c.getvalue().await.expect("getvalue"), 2);
        c
    });

    println!("the only replica the client knows dies; the domain now names another");
    old.kill9();
    let new = Replica::start(test, second, PORT, None, &["--no-peer-secret"]);
    wait_until(Duration::from_secs(10), "the new replica to lead", || {
        status(&new.addr).is_some_and(|s| s.role == "leader")
    });
    view.send_replace(LocalView {
        epoch: 2,
        members: vec![new.addr.clone()],
        leader: Some(new.addr.clone()),
    });
    wait_until(FOLLOW_LIMIT, "the zone to name the new replica", || {
        dig(dns, "A", DOMAIN).answers == vec![second.to_string()]
    });
    rt.block_on(async {
        // A fresh instance answers at the name now, reached only through
        // DNS: the client finds it by resolving the domain again, and
        // refuses it, since one client never mixes two instances.
        let outcome = tokio::time::timeout(Duration::from_secs(20), counter.getvalue())
            .await
            .expect("an answer within 20 s: the client resolved the domain again");
        match outcome {
            Err(e) => assert!(
                e.to_string()
                    .contains(&format!("{second}:{PORT}: belongs to instance")),
                "the client reached the new replica through DNS and refused its instance: {e}"
            ),
            Ok(v) => panic!("read {v} from a replica of another instance"),
        }
    });
}
