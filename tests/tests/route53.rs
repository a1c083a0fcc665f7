//! Route53 publication (`-n DOMAIN -r`) against a real local Route53: moto's
//! `moto_server` on loopback (PyPI `moto[server]`, which `scripts/test.sh`
//! installs), with requests signed by the credentials `concoord route53id`
//! and `concoord route53key` stored. The real cloud is never contacted.
//!
//! Runs `concoord-route53`, the `concoord` binary built with the `route53`
//! feature (`scripts/test.sh` builds it). After a join, a removal and the
//! leader's kill -9, the hosted zone's records read back through the
//! Route53 API equal the view's.

use concoord_integration_tests::dns::DOMAIN;
use concoord_integration_tests::{
    Replica, ReplicaSpec, binary, log_dir, output_within, remove_member, status, wait_until,
};
use concoord_nameserver::route53_records::{RecordSetValue, RecordSets, desired, is_ours};
use concoord_nameserver::{LiveView, ViewReplica, ZoneSpec};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `concoord` built with `--features route53`.
const ROUTE53: ReplicaSpec = ReplicaSpec {
    binary: "concoord-route53",
    object: Some("concoord.object.counter.Counter"),
};
const PORT: u16 = 14000;
const DNS_PORT: u16 = 15354;
/// Time Route53 may take to match a view change (publication retries back
/// off up to 30 s; a change normally lands within a second).
const PUBLISH_LIMIT: Duration = Duration::from_secs(40);

/// Creates the hosted zone (with one record of its owner's, which must be
/// left alone) and prints its id; or prints every record set as JSON.
const MOTO_CLIENT: &str = r#"
import boto3, json, sys
endpoint, action = sys.argv[1], sys.argv[2]
c = boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing")
if action == "create":
    zid = c.create_hosted_zone(Name=sys.argv[3] + ".", CallerReference="concoord-test")["HostedZone"]["Id"]
    c.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "UPSERT",
        "ResourceRecordSet": {"Name": "www." + sys.argv[3] + ".", "Type": "A", "TTL": 300,
                              "ResourceRecords": [{"Value": "192.0.2.1"}]}}]})
    print(zid)
else:
    out, kw = [], {}
    while True:
        r = c.list_resource_record_sets(HostedZoneId=sys.argv[3], **kw)
        for s in r["ResourceRecordSets"]:
            out.append([s["Name"], s["Type"], s.get("TTL", 0),
                        sorted(x["Value"] for x in s.get("ResourceRecords", []))])
        if not r.get("IsTruncated"):
            break
        kw = {"StartRecordName": r["NextRecordName"], "StartRecordType": r["NextRecordType"]}
    print(json.dumps(out))
"#;

/// A `moto_server` on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(test: &str) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(log_dir(test).join("moto.log")).expect("log");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]'; scripts/test.sh does)");
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until(Duration::from_secs(30), "moto_server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Moto { child, endpoint }
    }

    fn python(&self, args: &[&str]) -> String {
        let out = output_within(
            Command::new("python3")
                .args(["-c", MOTO_CLIENT, &self.endpoint])
                .args(args),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Every record set of the hosted zone, as the API returns it.
    fn record_sets(&self, zone_id: &str) -> Vec<(String, String, i64, Vec<String>)> {
        serde_json::from_str(&self.python(&["list", zone_id])).expect("record sets as JSON")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The instance's view as the replicas report it: members, leader, and who
/// answers DNS.
fn view_of(addrs: &[String]) -> Option<LiveView> {
    let reports: Vec<_> = addrs.iter().filter_map(|a| status(a)).collect();
    let newest = reports.iter().max_by_key(|r| r.view_epoch)?;
    let leader = newest.leader.as_ref()?.addr.clone();
    let replicas = newest
        .members
        .iter()
        .map(|m| ViewReplica {
            addr: m.addr.clone(),
            leader: m.addr == leader,
            dns: reports
                .iter()
                .find(|r| r.addr == m.addr)
                .and_then(|r| r.dns.as_ref())
                .map(|d| d.addr.clone()),
        })
        .collect();
    Some(LiveView {
        epoch: newest.view_epoch,
        replicas,
        other_name_servers: Vec::new(),
    })
}

/// Whether the hosted zone holds exactly the view's record sets (of those
/// the publisher owns), and the owner's own record untouched.
fn zone_equals_view(moto: &Moto, zone_id: &str, addrs: &[String], members: usize) -> bool {
    let Some(view) = view_of(addrs) else {
        return false;
    };
    let spec = ZoneSpec {
        domain: DOMAIN.into(),
        ttl: 30,
    };
    let sets = moto.record_sets(zone_id);
    let ours: RecordSets = sets
        .iter()
        .filter(|(name, kind, _, _)| is_ours(&spec, name, kind))
        .map(|(name, kind, ttl, values)| {
            let set = RecordSetValue {
                ttl: *ttl,
                values: values.clone(),
            };
            ((name.clone(), kind.clone()), set)
        })
        .collect();
    let owners_record_kept = sets
        .iter()
        .any(|(name, _, _, values)| name == "www.counterdomain.com." && values == &["192.0.2.1"]);
    view.replicas.len() == members && owners_record_kept && ours == desired(&spec, &view)
}

#[test]
fn the_hosted_zone_equals_the_view_after_a_join_a_removal_and_a_leader_change() {
    let test = "route53";
    let moto = Moto::start(test);
    let zone_id = moto.python(&["create", DOMAIN]);

    println!("phase 0: the credentials, stored as the seed's commands store them");
    let config = log_dir(test).join("config");
    let _ = std::fs::remove_dir_all(&config);
    let config_env = config.to_string_lossy().to_string();
    for (cmd, value) in [("route53id", "testing"), ("route53key", "testing")] {
        let out = output_within(
            Command::new(binary("concoord"))
                .env("XDG_CONFIG_HOME", &config_env)
                .args([cmd, value]),
            Duration::from_secs(10),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stored = config.join("concoord").join("route53");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&stored)
            .expect("stored credentials")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "only the owner reads the credentials");

    let env: Vec<(String, String)> = [
        ("XDG_CONFIG_HOME", config_env.as_str()),
        // Never look for credentials or regions anywhere else.
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let dns_port = DNS_PORT.to_string();
    let flags = [
        "-n",
        DOMAIN,
        "--dns-port",
        &dns_port,
        "-r",
        "--route53-endpoint",
        &moto.endpoint,
        "--suspect-after",
        "1",
        "--remove-after",
        "2",
    ];
    let start = |ip: &str, boot: Option<&str>| {
        Replica::start_with_env(ROUTE53, test, ip, PORT, boot, &flags, &env)
    };

    println!("phase 1: three replicas publish their view");
    let ips = ["127.0.55.1", "127.0.55.2", "127.0.55.3"];
    let mut replicas = vec![start(ips[0], None)];
    let founder = replicas[0].addr.clone();
    wait_until(Duration::from_secs(10), "the founder to lead", || {
        status(&founder).is_some_and(|s| s.role == "leader")
    });
    for ip in &ips[1..] {
        replicas.push(start(ip, Some(&founder)));
    }
    let mut addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    wait_until(
        PUBLISH_LIMIT,
        "the hosted zone to equal a view of three",
        || zone_equals_view(&moto, &zone_id, &addrs, 3),
    );

    println!("phase 2: a fourth replica joins");
    replicas.push(start("127.0.55.4", Some(&founder)));
    addrs.push(replicas[3].addr.clone());
    wait_until(PUBLISH_LIMIT, "the hosted zone to list the joiner", || {
        zone_equals_view(&moto, &zone_id, &addrs, 4)
    });

    println!("phase 3: concoord remove takes it out");
    remove_member(test, &founder, &addrs[3]);
    addrs.pop();
    wait_until(
        PUBLISH_LIMIT,
        "the hosted zone to drop the removed replica",
        || zone_equals_view(&moto, &zone_id, &addrs, 3),
    );

    println!("phase 4: kill -9 of the leader; the next leader publishes");
    let leader = (0..3)
        .find(|i| status(&addrs[*i]).is_some_and(|s| s.role == "leader"))
        .expect("a leader");
    replicas[leader].kill9();
    let killed = addrs.remove(leader);
    wait_until(
        PUBLISH_LIMIT,
        "the hosted zone to equal the survivors' view",
        || zone_equals_view(&moto, &zone_id, &addrs, 2),
    );
    let sets = moto.record_sets(&zone_id);
    for (name, kind, ttl, values) in &sets {
        println!("route53: {name} {kind} {ttl} {values:?}");
        assert!(
            !values.iter().any(|v| v.contains(&killed)),
            "{killed} is gone from {name} {kind}"
        );
    }

    println!("and, read without the publisher's own code: where each record is");
    let find = |name: &str, kind: &str| {
        sets.iter()
            .find(|(n, k, _, _)| n == name && k == kind)
            .map(|(_, _, ttl, values)| (*ttl, values.clone()))
    };
    let apex = format!("{DOMAIN}.");
    assert_eq!(find(&apex, "SRV"), None, "no SRV on the apex");
    let ips: Vec<String> = addrs
        .iter()
        .map(|a| a.split(':').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(find(&apex, "A"), Some((30, ips.clone())));
    let (_, srv) = find(&format!("_concoord._tcp.{DOMAIN}."), "SRV").expect("the SRV set");
    assert_eq!(srv.len(), 2, "{srv:?}");
    for ip in &ips {
        let target = format!("{}.ipaddr.{DOMAIN}.", ip.replace('.', "-"));
        let port_and_target = format!(" 1 {PORT} {target}");
        assert!(srv.iter().any(|r| r.ends_with(&port_and_target)), "{srv:?}");
        assert_eq!(find(&target, "A"), Some((30, vec![ip.clone()])), "{target}");
    }
}
