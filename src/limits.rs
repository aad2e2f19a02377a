//! What the machine can hold: sizes and counts from configs are checked against these limits
//! before anything is allocated or written, so a typo in a config is an error naming the key,
//! not an allocation abort or a run that never ends.

/// Bytes of memory a run may plan to use: `MemAvailable` from `/proc/meminfo` where there is
/// one, else 64 GiB. `DAGMATH_MEMORY_LIMIT` (bytes) overrides it, for tests and shared hosts.
pub fn available_memory() -> u64 {
    if let Some(v) = std::env::var("DAGMATH_MEMORY_LIMIT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return v;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb.saturating_mul(1024))
        .unwrap_or(64 << 30)
}

/// A planned size the machine cannot hold; `what` names it and the key that sets it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooBig {
    #[error("{what} needs about {} of memory, more than the {} available", human(*need), human(*have as u128))]
    Memory { what: String, need: u128, have: u64 },
    #[error("{what} needs more memory than any machine has (the size overflows)")]
    Overflow { what: String },
}

/// Checks that `bytes` (an estimate that may have overflowed: `None`) fits in the memory
/// available.
pub fn check_fits(what: &str, bytes: Option<u128>) -> Result<(), TooBig> {
    let have = available_memory();
    match bytes {
        Some(b) if b <= have as u128 => Ok(()),
        Some(need) => Err(TooBig::Memory {
            what: what.to_string(),
            need,
            have,
        }),
        None => Err(TooBig::Overflow {
            what: what.to_string(),
        }),
    }
}

/// Most worker threads a command accepts: four per core (more only adds contention).
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn human(b: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u + 1 == UNITS.len() && v >= 1024.0 {
        return format!("{b} B");
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowed_and_huge_sizes_do_not_fit() {
        assert!(check_fits("x", None).is_err());
        assert!(check_fits("x", Some(u128::MAX)).is_err());
        assert!(check_fits("x", Some(1)).is_ok());
    }
}
