//! What the determinism check rejects, as data: paths and names that reach
//! outside the state machine, the operations that expose a hash
//! collection's random order, and the types that make a `static` mutable.
//! Kept apart from the checker so that the list can be read (and extended)
//! in one place.

/// Paths (after `use` aliases are resolved) and why they are rejected. A path
/// is rejected if it equals an entry or continues it (`std::fs::read`).
pub const FORBIDDEN_PATHS: &[(&str, &str)] = &[
    ("std::fs", "file access"),
    ("tokio::fs", "file access"),
    ("async_std::fs", "file access"),
    ("std::process", "process access"),
    ("tokio::process", "process access"),
    ("std::net", "network access"),
    ("tokio::net", "network access"),
    ("async_std::net", "network access"),
    ("reqwest", "network access"),
    ("hyper", "network access"),
    ("ureq", "network access"),
    ("std::env", "environment access"),
    ("std::io::stdin", "reading standard input"),
    ("std::io::Stdin", "reading standard input"),
    ("tokio::io::stdin", "reading standard input"),
    ("std::os", "operating-system access"),
    ("libc", "operating-system access"),
    ("nix", "operating-system access"),
    (
        "std::ptr",
        "raw pointers (memory addresses differ between replicas)",
    ),
    (
        "core::ptr",
        "raw pointers (memory addresses differ between replicas)",
    ),
    (
        "std::arch",
        "CPU instructions (timestamps, hardware randomness)",
    ),
    (
        "core::arch",
        "CPU instructions (timestamps, hardware randomness)",
    ),
    ("std::thread", "threads"),
    ("std::thread_local", "static mutable state (a thread-local)"),
    ("tokio::spawn", "tasks"),
    ("tokio::task", "tasks"),
    ("tokio::runtime", "tasks"),
    ("async_std::task", "tasks"),
    ("rayon", "threads"),
    ("std::time::SystemTime", "wall-clock time"),
    ("std::time::Instant", "wall-clock time"),
    ("std::time::UNIX_EPOCH", "wall-clock time"),
    ("tokio::time", "wall-clock time"),
    ("chrono", "wall-clock time"),
    ("time::OffsetDateTime", "wall-clock time"),
    ("time::Instant", "wall-clock time"),
    ("coarsetime", "wall-clock time"),
    ("quanta", "wall-clock time"),
    ("rand", "randomness"),
    ("rand_core", "randomness"),
    ("getrandom", "randomness"),
    ("fastrand", "randomness"),
    ("uuid::Uuid::new_v4", "randomness"),
    ("uuid::Uuid::now_v7", "randomness"),
    ("std::collections::hash_map::RandomState", "randomness"),
    ("std::hash::RandomState", "randomness"),
    ("ahash::RandomState", "randomness"),
];

/// Names rejected wherever they appear in a path, unless the object's own
/// crate defines an item of that name (a user's `enum Command` is fine).
pub const FORBIDDEN_NAMES: &[(&str, &str)] = &[
    ("File", "file access"),
    ("OpenOptions", "file access"),
    ("Command", "process access"),
    ("TcpStream", "network access"),
    ("TcpListener", "network access"),
    ("UdpSocket", "network access"),
    ("stdin", "reading standard input"),
    ("Stdin", "reading standard input"),
    ("SystemTime", "wall-clock time"),
    ("Instant", "wall-clock time"),
    ("UNIX_EPOCH", "wall-clock time"),
    ("thread_rng", "randomness"),
    ("RandomState", "randomness"),
    ("OsRng", "randomness"),
];

/// Macros that declare static mutable state.
pub const STATIC_MACROS: &[&str] = &["thread_local", "lazy_static"];

/// Methods that reach the clock whatever they are called on.
pub const CLOCK_METHODS: &[&str] = &["elapsed"];

/// Methods whose result or side effects follow a hash collection's
/// (random) order when called on one.
pub const HASH_ORDER_METHODS: &[&str] = &[
    "iter",
    "iter_mut",
    "into_iter",
    "keys",
    "values",
    "values_mut",
    "into_keys",
    "into_values",
    "drain",
    "drain_filter",
    "extract_if",
    "retain",
    "union",
    "intersection",
    "difference",
    "symmetric_difference",
    "par_iter",
    "par_iter_mut",
    "into_par_iter",
    "par_drain",
];

/// Methods and functions that iterate their argument: a hash collection
/// passed to them is visited in its random order.
pub const ITERATING_CONSUMERS: &[&str] = &["extend", "from_iter", "zip", "chain", "append"];

/// Crates whose functions serialize their arguments (a hash collection's
/// entries are written in its random order).
pub const SERIALIZER_CRATES: &[&str] = &[
    "serde_json",
    "rmp_serde",
    "bincode",
    "serde_yaml",
    "serde_cbor",
    "ciborium",
    "postcard",
    "ron",
    "toml",
    "serde_pickle",
    "bson",
    "csv",
];

/// Hash collections whose default hasher is seeded randomly per process,
/// with how many type parameters they take before the hasher.
pub const RANDOM_HASH_TYPES: &[(&str, usize)] = &[
    ("HashMap", 2),
    ("HashSet", 1),
    ("AHashMap", 2),
    ("AHashSet", 1),
    ("DashMap", 2),
    ("DashSet", 1),
];

/// Hashers that are seeded randomly (a hash collection built with one is as
/// random as the default).
pub const RANDOM_HASHERS: &[&str] = &["RandomState"];

/// Types that make a `static` mutable (besides every `Atomic*`).
pub const INTERIOR_MUTABILITY: &[&str] = &[
    "Mutex",
    "RwLock",
    "Cell",
    "RefCell",
    "UnsafeCell",
    "SyncUnsafeCell",
    "OnceCell",
    "OnceLock",
    "LazyLock",
    "LazyCell",
    "Lazy",
    "ArcSwap",
    "AtomicCell",
];

/// Whether a type name gives a `static` interior mutability.
pub fn is_interior_mutable(name: &str) -> bool {
    name.starts_with("Atomic") || INTERIOR_MUTABILITY.contains(&name)
}

/// The rejection reason for a full path, if any.
pub fn forbidden_path(joined: &str) -> Option<&'static str> {
    FORBIDDEN_PATHS
        .iter()
        .find(|(prefix, _)| {
            joined == *prefix
                || joined
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
        .map(|(_, reason)| *reason)
}

/// The rejection reason for a single name, if any.
pub fn forbidden_name(name: &str) -> Option<&'static str> {
    FORBIDDEN_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, reason)| *reason)
}

/// Integer types a pointer may be cast to.
pub const INTEGER_TYPES: &[&str] = &[
    "usize", "isize", "u64", "i64", "u128", "i128", "u32", "i32", "u16", "i16", "u8", "i8",
];

/// Methods (and associated functions: `Rc::as_ptr(&x)`) that give a raw
/// pointer.
pub const POINTER_METHODS: &[&str] = &["as_ptr", "as_mut_ptr", "into_raw"];

/// Methods that give a raw pointer's address.
pub const ADDRESS_METHODS: &[&str] = &["addr", "expose_provenance", "expose_addr"];

/// Macros that give a raw pointer.
pub const POINTER_MACROS: &[&str] = &["addr_of", "addr_of_mut"];
