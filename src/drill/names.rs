//! A run's namespace: its own LocalStack account (LocalStack turns a
//! 12-digit access key id into the account and keeps accounts apart), a
//! second account for the attacker, and a suffix on every name, so runs
//! repeat and run side by side without seeing each other.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    pub suffix: String,
    pub account: String,
    pub attacker_account: String,
    pub region: String,
}

fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_err() {
        // The clock and the process still tell concurrent runs apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return nanos ^ (u64::from(std::process::id()) << 32);
    }
    u64::from_le_bytes(buf)
}

impl Namespace {
    pub fn new(region: &str) -> Self {
        let r = random_u64();
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let suffix: String = (0..6)
            .map(|i| alphabet[((r >> (i * 6)) % 36) as usize] as char)
            .collect();
        // Leading 7 and 8 keep clear of LocalStack's default account and of
        // the test suite's accounts (leading 9).
        let account = format!("7{:011}", (r >> 8) % 100_000_000_000);
        let attacker_account = format!("8{:011}", random_u64() % 100_000_000_000);
        Self {
            suffix,
            account,
            attacker_account,
            region: region.to_string(),
        }
    }

    /// The physical name of a logical one.
    pub fn name(&self, logical: &str) -> String {
        format!("{logical}-{}", self.suffix)
    }

    /// SSM parameter names are paths.
    pub fn parameter(&self, logical: &str) -> String {
        format!("/drill-{}/{}", self.suffix, logical.trim_start_matches('/'))
    }

    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account
        )
    }

    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_namespaces_differ_and_names_fit() {
        let (a, b) = (Namespace::new("us-east-1"), Namespace::new("us-east-1"));
        assert_ne!(a.suffix, b.suffix);
        assert_ne!(a.account, b.account);
        assert_eq!(a.account.len(), 12);
        assert_eq!(a.attacker_account.len(), 12);
        assert_eq!(a.name("orders-api").len(), "orders-api".len() + 7);
        assert_eq!(
            a.parameter("/orders/key"),
            format!("/drill-{}/orders/key", a.suffix)
        );
    }
}
