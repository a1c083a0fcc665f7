//! `concoord nameserver`: a name server outside the view, and
//! `concoord route53id` / `concoord route53key`, which store Route53
//! credentials for `concoord replica -n DOMAIN -r`.

use clap::Args;
use concoord_nameserver::{NameServer, NameServerConfig, ViewSource, credentials};
use concoord_transport::addresses::{parse_bootstrap, parse_domain};
use std::process::ExitCode;

#[derive(Args)]
pub struct NameserverArgs {
    /// The domain to answer DNS for.
    #[arg(short = 'n', long = "domainname", value_name = "DOMAIN")]
    domain: String,
    /// Replicas of the instance to follow (host:port, comma-separated).
    #[arg(short = 'b', long = "boot", value_name = "BOOTSTRAP")]
    boot: String,
    /// The address to answer DNS on.
    #[arg(
        short = 'a',
        long = "dns-addr",
        value_name = "ADDR",
        default_value = "127.0.0.1"
    )]
    dns_addr: String,
    /// The DNS port (53 needs root or CAP_NET_BIND_SERVICE).
    #[arg(long, value_name = "PORT", default_value_t = 53)]
    dns_port: u16,
    /// The TTL of every record, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = concoord_nameserver::DEFAULT_TTL_SECS)]
    dns_ttl: u32,
    /// The instance's security token.
    #[arg(short = 't', long = "token")]
    token: Option<String>,
    /// Debug logging.
    #[arg(short = 'd', long = "debug")]
    debug: bool,
}

pub fn run(args: NameserverArgs) -> ExitCode {
    concoord_replica_cli::cli::init_logging(args.debug);
    let setup = (|| {
        let domain = parse_domain(&args.domain)?;
        let bootstrap = parse_bootstrap(&args.boot)?;
        let addr = concoord_replica_cli::cli::dns_socket_addr(&args.dns_addr, args.dns_port)
            .map_err(|e| e.to_string())?;
        let mut config = NameServerConfig::new(&domain, addr);
        config.ttl = args.dns_ttl;
        config.token = args.token.clone();
        Ok::<_, String>((config, bootstrap))
    })();
    let (config, bootstrap) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    concoord_transport::cli::block_on(async move {
        let server = match NameServer::start(config, ViewSource::Remote { bootstrap }).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        println!("answering DNS on {} (Ctrl-C stops)", server.dns_addr());
        let _ = tokio::signal::ctrl_c().await;
        drop(server);
        ExitCode::SUCCESS
    })
}

#[derive(Args)]
pub struct Route53IdArgs {
    /// The AWS access key id (AWS_ACCESS_KEY_ID).
    id: String,
}

#[derive(Args)]
pub struct Route53KeyArgs {
    /// The AWS secret access key (AWS_SECRET_ACCESS_KEY).
    key: String,
}

pub fn store_id(args: Route53IdArgs) -> ExitCode {
    store("access key id", |path| {
        credentials::store_id(path, &args.id)
    })
}

pub fn store_key(args: Route53KeyArgs) -> ExitCode {
    store("secret access key", |path| {
        credentials::store_key(path, &args.key)
    })
}

fn store(
    what: &str,
    write: impl FnOnce(&std::path::Path) -> Result<(), concoord_nameserver::NameserverError>,
) -> ExitCode {
    let result = credentials::default_path().and_then(|path| write(&path).map(|()| path));
    match result {
        Ok(path) => {
            println!(
                "stored the Route53 {what} in {} (mode 0600)",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
