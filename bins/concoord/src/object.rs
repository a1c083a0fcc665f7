//! `concoord object`: writes a standalone proxy for an object's source file,
//! optionally after a safety check (`-s`).

use clap::Args;
use concoord_codegen::proxy::ProxyType;
use concoord_codegen::{safety, standalone};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct ObjectArgs {
    /// The object: its source file and type, PATH.rs::Type (e.g. src/lib.rs::TenCounter).
    #[arg(short = 'o', long = "objectname", value_name = "OBJECTNAME")]
    objectname: String,
    /// Security token the proxy presents.
    #[arg(short = 't', long = "token", value_name = "SECURITYTOKEN")]
    token: Option<String>,
    /// 0: basic (one call at a time), 1: blocking, 2: client-side batching,
    /// 3: server-side batching (pipelined).
    #[arg(
        short = 'p',
        long = "proxytype",
        value_name = "PROXYTYPE",
        default_value_t = 0
    )]
    proxytype: u8,
    /// Safety check: refuse code that would make replicas diverge (clock,
    /// randomness, files, network, environment, processes, threads, memory
    /// addresses, unsafe, static mutable state, anything that follows a
    /// HashMap/HashSet's order), in every file of the object's crate.
    #[arg(short = 's', long = "safe")]
    safe: bool,
    /// Say what is found and generated.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Where to write the proxy (default: next to the source, TYPE_proxy.rs).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn split_objectname(name: &str) -> Result<(PathBuf, String), String> {
    let Some((path, ty)) = name.rsplit_once("::") else {
        return Err(format!(
            "expected PATH.rs::Type (e.g. src/tencounter.rs::TenCounter), got {name:?}"
        ));
    };
    if !path.ends_with(".rs") || ty.is_empty() {
        return Err(format!(
            "expected PATH.rs::Type (e.g. src/tencounter.rs::TenCounter), got {name:?}"
        ));
    }
    Ok((PathBuf::from(path), ty.to_string()))
}

pub fn run(args: ObjectArgs) -> ExitCode {
    let (path, ty) = match split_objectname(&args.objectname) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(proxy_type) = ProxyType::from_number(args.proxytype) else {
        eprintln!(
            "error: proxy type must be 0, 1, 2 or 3, got {}",
            args.proxytype
        );
        return ExitCode::from(2);
    };
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let shown = path.display().to_string();
    if args.safe {
        match safety::check_object_file(&path) {
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            Ok(findings) if !findings.is_empty() => {
                for f in &findings {
                    let file = f
                        .file
                        .as_deref()
                        .map_or_else(|| shown.clone(), |p| p.display().to_string());
                    eprintln!("{file}:{}: {}", f.line, f.reason);
                }
                eprintln!(
                    "error: {ty} is not safe to replicate ({} problem{}); replicas would diverge",
                    findings.len(),
                    if findings.len() == 1 { "" } else { "s" }
                );
                return ExitCode::from(1);
            }
            Ok(_) => {
                if args.verbose {
                    eprintln!("{shown}: safety check passed (with every file of its crate)");
                }
            }
        }
    }
    let request = standalone::Request {
        source: &source,
        source_path: &shown,
        type_name: &ty,
        proxy_type,
        token: args.token.clone(),
    };
    let generated = match standalone::generate(&request) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if args.verbose {
        eprintln!("{ty}: {} methods", generated.model.methods.len());
        for line in generated.model.describe() {
            eprintln!("{line}");
        }
        if !generated.copied_types.is_empty() {
            eprintln!(
                "copied into the proxy: {}",
                generated.copied_types.join(", ")
            );
        }
    }
    let out = args.out.clone().unwrap_or_else(|| {
        path.parent()
            .unwrap_or(Path::new("."))
            .join(standalone::file_name(&ty))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    if let Err(e) = std::fs::write(&out, &generated.code) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::from(1);
    }
    println!("{}", out.display());
    ExitCode::SUCCESS
}
