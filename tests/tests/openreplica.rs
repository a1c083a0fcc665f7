//! `openreplica` against real OpenSSH servers: one sshd per network
//! namespace, each with its own home directory (bind-mounted over /root
//! inside the namespace), so every "machine" has its own files. Addresses
//! stay inside the 10.77.46/47.0/24 subnets these tests create. Needs root,
//! iproute2 and openssh-server (scripts/test.sh installs them).

use concoord_client::proxies::Counter;
use concoord_integration_tests::netns::Net;
use concoord_integration_tests::{binary, output_within, runtime, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SSHD: &str = "/usr/sbin/sshd";

/// Machines reachable over SSH as root, each with its own home.
struct Hosts {
    net: Net,
    dir: tempfile::TempDir,
    sshd: Vec<Child>,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path));
}

impl Hosts {
    /// `nodes` namespaces; sshd runs on the first `with_sshd`, all of them
    /// authorizing `key.pub`.
    fn start(prefix: &str, subnet: u8, nodes: usize, with_sshd: usize) -> Option<Hosts> {
        if !Path::new(SSHD).exists() {
            eprintln!("skipped: {SSHD} is missing (scripts/test.sh installs openssh-server)");
            return None;
        }
        let net = match Net::create(prefix, subnet, nodes) {
            Ok(net) => net,
            Err(e) => {
                eprintln!("skipped: cannot create network namespaces ({e}); run as root");
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("tempdir");
        keygen(&dir.path().join("key"));
        keygen(&dir.path().join("stranger"));
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut hosts = Hosts {
            net,
            dir,
            sshd: Vec::new(),
        };
        for i in 1..=with_sshd {
            hosts.start_sshd(i);
        }
        Some(hosts)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Node `i`'s home directory, as seen from here.
    fn home(&self, i: usize) -> PathBuf {
        self.path(&format!("home{i}"))
    }

    fn start_sshd(&mut self, i: usize) {
        let home = self.home(i);
        std::fs::create_dir_all(home.join(".ssh")).expect("home");
        std::fs::copy(self.path("key.pub"), home.join(".ssh/authorized_keys")).expect("authorize");
        let host_key = self.path(&format!("host{i}"));
        keygen(&host_key);
        let config = self.path(&format!("sshd{i}.conf"));
        std::fs::write(
            &config,
            format!(
                "ListenAddress {addr}\nHostKey {key}\nAuthorizedKeysFile .ssh/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nPidFile none\n",
                addr = self.net.addr(i),
                key = host_key.display()
            ),
        )
        .expect("sshd config");
        let log = std::fs::File::create(self.path(&format!("sshd{i}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.net.namespace(i), "sh", "-c"])
            .arg(format!(
                "mount --bind {} /root && exec {SSHD} -D -e -f {}",
                home.display(),
                config.display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd");
        self.sshd.push(child);
        let addr = format!("{}:22", self.net.addr(i));
        wait_until(Duration::from_secs(10), "sshd to listen", || {
            std::net::TcpStream::connect_timeout(
                &addr.parse().expect("addr"),
                Duration::from_millis(200),
            )
            .is_ok()
        });
    }

    /// `openreplica ARGS` with this test's configuration.
    fn openreplica(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("openreplica"));
        cmd.env("OPENREPLICA_CONFIG", self.path("openreplica/config.toml"))
            .args(args)
            .stdin(Stdio::null());
        let out = output_within(&mut cmd, Duration::from_secs(120));
        // The transcript, shown with --nocapture or when a test fails.
        eprintln!(
            "$ openreplica {}\n{}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// Configures the key, the login and a private known_hosts file.
    fn configure(&self, key: &str) {
        let key = self.path(key).display().to_string();
        let known_hosts = self.path("known_hosts").display().to_string();
        let steps: [&[&str]; 4] = [
            &["addsshkey", &key],
            &["addusername", "root"],
            &["set", "known-hosts", &known_hosts],
            &["set", "connect-timeout", "3"],
        ];
        for args in steps {
            let out = self.openreplica(args);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        }
    }

    fn launched(&self) -> String {
        std::fs::read_to_string(self.path("openreplica/launched.toml")).unwrap_or_default()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Whatever a failed test left running.
        for line in self.launched().lines() {
            if let Some(pid) = line.strip_prefix("pid = ") {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn recorded_pids(launched: &str) -> Vec<u32> {
    launched
        .lines()
        .filter_map(|l| l.strip_prefix("pid = ")?.trim().parse().ok())
        .collect()
}

fn is_concoord(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("bin/concoord"))
        .unwrap_or(false)
}

#[test]
fn openreplica_sets_up_nodes_launches_an_instance_that_survives_a_killed_replica_and_stops_it() {
    let Some(hosts) = Hosts::start("cco", 46, 3, 3) else {
        return;
    };
    hosts.configure("key");
    let addrs: Vec<String> = (1..=3).map(|i| hosts.net.addr(i)).collect();

    // addnode checks the node over SSH; concoord is not there yet.
    for a in &addrs {
        let out = hosts.openreplica(&["--accept-new-host-keys", "addnode", a]);
        assert!(out.status.success(), "addnode {a}: {}", text(&out.stderr));
        let said = text(&out.stdout);
        assert!(
            said.contains(&format!("Adding NODE to CONFIG: {a}")),
            "{said}"
        );
        assert!(said.contains("concoord is not installed"), "{said}");
    }
    let config = text(&hosts.openreplica(&["config"]).stdout);
    assert_eq!(config.matches("[[nodes]]").count(), 3, "{config}");

    // setup copies this build, verified; a second run has nothing to do.
    let out = hosts.openreplica(&["setup", "--all"]);
    assert!(out.status.success(), "setup: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).matches("verified").count(),
        3,
        "{}",
        text(&out.stdout)
    );
    let local = sha256(&binary("concoord"));
    for i in 1..=3 {
        assert_eq!(sha256(&hosts.home(i).join(".concoord/bin/concoord")), local);
    }
    let again = hosts.openreplica(&["setup", "--all"]);
    assert_eq!(
        text(&again.stdout).matches("already installed").count(),
        3,
        "{}",
        text(&again.stdout)
    );

    // Three replicas: the first founds, the others join through -b.
    let out = hosts.openreplica(&["replica", "--count", "3", "-o", "counter"]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "replica: {said}{}", text(&out.stderr));
    let boot = said
        .lines()
        .find_map(|l| l.strip_prefix("bootstrap: "))
        .expect("the bootstrap string is printed")
        .trim()
        .to_string();
    assert_eq!(boot.split(',').count(), 3, "{boot}");
    for a in &addrs {
        assert!(boot.contains(&format!("{a}:14000")), "{boot}");
    }

    // Called from here through the printed bootstrap.
    let rt = runtime();
    let counter = rt.block_on(Counter::connect(&boot)).expect("connect");
    for _ in 0..5 {
        rt.block_on(counter.increment()).expect("increment");
    }
    assert_eq!(rt.block_on(counter.getvalue()).expect("read"), 5);

    let out = hosts.openreplica(&["status"]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "status: {said}{}", text(&out.stderr));
    assert_eq!(said.matches(" running").count(), 3, "{said}");
    assert!(!said.contains("not running"), "{said}");
    assert!(said.contains("the instance"), "{said}");

    // A name server outside the view, on the third node, answers for the
    // instance it follows.
    let out = hosts.openreplica(&[
        "nameserver",
        "--node",
        &addrs[2],
        "-n",
        "counterdomain.test",
        "--dns-port",
        "5353",
    ]);
    assert!(out.status.success(), "nameserver: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("domain:    counterdomain.test"),
        "{}",
        text(&out.stdout)
    );
    wait_until(Duration::from_secs(10), "the name server to answer", || {
        let dig = Command::new("dig")
            .args(["+short", "+time=1", "+tries=1", "-p", "5353"])
            .arg(format!("@{}", addrs[2]))
            .args(["counterdomain.test", "A"])
            .output();
        dig.is_ok_and(|o| {
            let got = text(&o.stdout);
            addrs.iter().all(|a| got.lines().any(|l| l.trim() == a))
        })
    });

    // kill -9 one replica: the instance goes on, and status says so.
    let launched = hosts.launched();
    let pids = recorded_pids(&launched);
    assert_eq!(
        pids.len(),
        4,
        "three replicas and a name server: {launched}"
    );
    run(Command::new("kill").args(["-9", &pids[1].to_string()]));
    for _ in 0..3 {
        rt.block_on(counter.increment())
            .expect("increment with one replica gone");
    }
    assert_eq!(rt.block_on(counter.getvalue()).expect("read"), 8);
    let out = hosts.openreplica(&["status"]);
    assert!(!out.status.success(), "a dead replica makes status fail");
    assert!(
        text(&out.stdout).contains("not running"),
        "{}",
        text(&out.stdout)
    );

    // logs fetches a replica's log.
    let out = hosts.openreplica(&["logs", &addrs[0], "-n", "200"]);
    assert!(out.status.success(), "logs: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&addrs[0]),
        "{}",
        text(&out.stdout)
    );
    drop(counter);

    // stop leaves nothing running and nothing recorded.
    let out = hosts.openreplica(&["stop"]);
    assert!(
        out.status.success(),
        "stop: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for pid in pids {
        assert!(
            !is_concoord(pid),
            "pid {pid} still runs concoord after stop"
        );
    }
    assert!(
        recorded_pids(&hosts.launched()).is_empty(),
        "{}",
        hosts.launched()
    );
}

#[test]
fn addnode_says_what_is_wrong_and_adds_nothing() {
    // Node 1 runs sshd; node 2 is up without sshd; .99 does not exist.
    let Some(hosts) = Hosts::start("ccn", 47, 2, 1) else {
        return;
    };
    let up = hosts.net.addr(1);
    hosts.configure("key");

    // An unknown host key is refused unless accepting new ones is asked for.
    let out = hosts.openreplica(&["addnode", &up]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("host key"),
        "{}",
        text(&out.stderr)
    );

    let out = hosts.openreplica(&["addnode", &hosts.net.addr(2)]);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("Cannot connect to node") && said.contains("refuses SSH"),
        "{said}"
    );

    let out = hosts.openreplica(&["addnode", "10.77.47.99"]);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("Cannot connect to node, check if it is up and running"),
        "{said}"
    );

    // A key the node does not accept.
    hosts.configure("stranger");
    let out = hosts.openreplica(&["--accept-new-host-keys", "addnode", &up]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("authentication failed"),
        "{}",
        text(&out.stderr)
    );

    let config = text(&hosts.openreplica(&["config"]).stdout);
    assert!(!config.contains("[[nodes]]"), "nothing was added: {config}");

    // With the right key it is added.
    hosts.configure("key");
    let out = hosts.openreplica(&["--accept-new-host-keys", "addnode", &up]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
