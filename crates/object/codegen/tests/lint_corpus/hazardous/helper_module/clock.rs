//! A helper the object's file does not show.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now() //~ wall-clock time (`std::time::SystemTime::now`)
        .duration_since(std::time::UNIX_EPOCH) //~ wall-clock time
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
