//! Who holds an incident: the holder's identity and the lease's terms.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Enough to find the process that holds an incident, so that the one
/// turned away can say who (and on-call can go and look).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    pub since: String,
}

impl Holder {
    pub fn current(command: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| "unknown-host".into()),
            user: std::env::var("USER").unwrap_or_else(|_| "unknown-user".into()),
            command: command.to_string(),
            since: crate::time::now_rfc3339(),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} ({}@{}, `{}`, since {})",
            self.pid, self.user, self.host, self.command, self.since
        )
    }
}

/// Who works on an incident, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: Holder,
    /// `None`: held until released or the holder's process ends (the local
    /// flock: the kernel frees it on any exit). `Some(t)` (RFC 3339): a
    /// shared store's lease, which another responder may take over after
    /// `t` unless the holder renewed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.holder)?;
        if let Some(t) = &self.expires_at {
            write!(f, ", lease until {t} unless renewed")?;
        }
        Ok(())
    }
}
