//! The ready-made objects `concoord replica -o NAME` can serve, by the seed's
//! dotted names (`concoord.object.counter.Counter`) or short names (`counter`).

use crate::{ReplicaError, ReplicaOptions, run};
use concoord_objects::Counter;

/// A ready-made object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    /// The seed's dotted name.
    pub dotted: &'static str,
    /// The short name.
    pub short: &'static str,
}

/// Every ready-made object.
pub const BUILTINS: &[Builtin] = &[Builtin {
    dotted: "concoord.object.counter.Counter",
    short: "counter",
}];

/// Finds a ready-made object by dotted name, short name or class name
/// (case-insensitive).
pub fn resolve(name: &str) -> Option<&'static Builtin> {
    let name = name.trim();
    BUILTINS.iter().find(|b| {
        let class = b.dotted.rsplit('.').next().unwrap_or(b.dotted);
        b.dotted.eq_ignore_ascii_case(name)
            || b.short.eq_ignore_ascii_case(name)
            || class.eq_ignore_ascii_case(name)
    })
}

/// The error for an unknown name, listing the known ones.
pub fn unknown(name: &str) -> ReplicaError {
    let known: Vec<String> = BUILTINS
        .iter()
        .map(|b| format!("{} ({})", b.dotted, b.short))
        .collect();
    ReplicaError::UnknownObject {
        name: name.to_string(),
        known: known.join(", "),
    }
}

/// Serves the ready-made object called `name`.
pub async fn run_builtin(name: &str, opts: ReplicaOptions) -> Result<(), ReplicaError> {
    let Some(builtin) = resolve(name) else {
        return Err(unknown(name));
    };
    match builtin.short {
        "counter" => run::<Counter>(opts).await,
        _ => Err(unknown(name)),
    }
}

/// Serves the ready-made object named by `-o`, from parsed flags, logging to
/// the console; what `concoord replica` and `concoord-replica` run.
pub fn serve_from_args(args: crate::ReplicaArgs) -> std::process::ExitCode {
    crate::cli::init_logging(args.debug);
    let result = (|| {
        let name = args.objectname.clone().ok_or(ReplicaError::NoObject)?;
        if resolve(&name).is_none() {
            return Err(unknown(&name));
        }
        let opts = args.to_options()?;
        crate::block_on(run_builtin(&name, opts))
    })();
    crate::report(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_dotted_short_and_class_names_resolve() {
        for name in ["concoord.object.counter.Counter", "counter", "Counter"] {
            assert_eq!(resolve(name).map(|b| b.short), Some("counter"), "{name}");
        }
        assert!(resolve("concoord.object.nothing.Nothing").is_none());
    }
}
