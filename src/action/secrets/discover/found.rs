//! What discovery has found so far, and where each came from ("policy X",
//! "environment variable Y", "playbook"), so that the plan can say why a
//! secret is assumed stolen.

use std::collections::BTreeMap;

#[derive(Default)]
pub struct Found {
    /// Secret ARN (or a reference to one that does not exist) → sources.
    pub secrets: BTreeMap<String, Vec<String>>,
    /// SecureString parameter name (or a playbook reference) → sources.
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Readable parameters that are not SecureString: configuration, not
    /// secret storage, so not rotated; listed for the responder.
    pub plain_parameters: BTreeMap<String, Vec<String>>,
}

fn add(map: &mut BTreeMap<String, Vec<String>>, key: &str, from: String) {
    let sources = map.entry(key.to_string()).or_default();
    if !sources.contains(&from) {
        sources.push(from);
    }
}

impl Found {
    pub fn secret(&mut self, arn: &str, from: String) {
        add(&mut self.secrets, arn, from);
    }

    pub fn parameter(&mut self, name: &str, from: String) {
        add(&mut self.parameters, name, from);
    }

    pub fn plain_parameter(&mut self, name: &str, from: String) {
        add(&mut self.plain_parameters, name, from);
    }
}
