//! The ready-made objects `concoord replica -o NAME` can serve, by the seed's
//! dotted names (`concoord.object.counter.Counter`) or short names (`counter`).

use concoord_dsync::{Barrier, BoundedSemaphore, Condition, Lock, RLock, Semaphore};
use concoord_objects::{
    Bank, Counter, JobManager, KeyValue, Log, Membership, NameserverCoord, Queue, Stack,
};
use concoord_replica::{ReplicaError, ReplicaOptions, run};

/// A ready-made object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    /// The seed's dotted name.
    pub dotted: &'static str,
    /// The short name.
    pub short: &'static str,
    /// Its methods, as the object declares them.
    pub methods: &'static [(&'static str, concoord_object::MethodKind)],
}

/// Declares the table of names and the dispatch from a name to a replica of
/// the type, from one list, so the two cannot drift apart.
macro_rules! builtins {
    ($($short:literal => $ty:ty),* $(,)?) => {
        /// Every ready-made object.
        pub fn builtins() -> Vec<Builtin> {
            vec![
                $(Builtin {
                    dotted: <$ty as concoord_object::ReplicatedObject>::type_name(),
                    short: $short,
                    methods: <$ty as concoord_object::ReplicatedObject>::methods(),
                }),*
            ]
        }

        async fn serve(short: &str, opts: ReplicaOptions) -> Result<(), ReplicaError> {
            match short {
                $($short => run::<$ty>(opts).await,)*
                other => Err(unknown(other)),
            }
        }
    };
}

builtins! {
    "counter" => Counter,
    "bank" => Bank,
    "log" => Log,
    "membership" => Membership,
    "stack" => Stack,
    "queue" => Queue,
    "jobmanager" => JobManager,
    "keyvalue" => KeyValue,
    "nameservercoord" => NameserverCoord,
    "lock" => Lock,
    "rlock" => RLock,
    "semaphore" => Semaphore,
    "boundedsemaphore" => BoundedSemaphore,
    "barrier" => Barrier,
    "condition" => Condition,
}

/// Finds a ready-made object by dotted name, short name or class name
/// (case-insensitive).
pub fn resolve(name: &str) -> Option<Builtin> {
    let name = name.trim();
    builtins().into_iter().find(|b| {
        let class = b.dotted.rsplit('.').next().unwrap_or(b.dotted);
        b.dotted.eq_ignore_ascii_case(name)
            || b.short.eq_ignore_ascii_case(name)
            || class.eq_ignore_ascii_case(name)
    })
}

/// The error for an unknown name, listing the known ones.
pub fn unknown(name: &str) -> ReplicaError {
    let known: Vec<String> = builtins()
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
    serve(builtin.short, opts).await
}

/// Serves the ready-made object named by `-o`, from parsed flags, logging to
/// the console; what `concoord replica` and `concoord-replica` run.
pub fn serve_from_args(args: crate::ReplicaArgs) -> std::process::ExitCode {
    let result = (|| {
        args.init_logging()?;
        let name = args.objectname.clone().ok_or(ReplicaError::NoObject)?;
        if resolve(&name).is_none() {
            return Err(unknown(&name));
        }
        let opts = args.to_options()?;
        concoord_transport::cli::block_on_threads(args.threads, run_builtin(&name, opts))
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
        for b in builtins() {
            assert_eq!(resolve(b.dotted), Some(b), "{}", b.dotted);
            assert_eq!(resolve(b.short), Some(b), "{}", b.short);
        }
        assert!(resolve("concoord.object.nothing.Nothing").is_none());
    }
}
