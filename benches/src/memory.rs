//! Resident memory of this process, from Linux's `/proc/self/status`: `VmRSS` (now) and
//! `VmHWM` (the peak so far, which [`reset_peak`] starts over). Elsewhere both are `None`;
//! `/usr/bin/time -v` gives the peak of a whole run on any Unix.

/// Resident memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resident {
    /// Resident now (`VmRSS`).
    pub now: Option<u64>,
    /// The peak so far (`VmHWM`).
    pub peak: Option<u64>,
}

fn field_bytes(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: u64 =
        line.trim_start_matches(name).trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// This process's resident memory now and at its peak.
pub fn resident() -> Resident {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => {
            Resident { now: field_bytes(&status, "VmRSS:"), peak: field_bytes(&status, "VmHWM:") }
        }
        Err(_) => Resident::default(),
    }
}

/// Start the peak (`VmHWM`) over from the resident size now, so that a later peak is the
/// peak of what ran after this call (Linux: `echo 5 > /proc/self/clear_refs`). Returns whether
/// it could; where it cannot, a later peak still counts everything before it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(field_bytes(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(field_bytes(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(field_bytes(status, "VmSwap:"), None);
    }
}
