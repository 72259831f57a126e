//! Every action firebreak knows, by name.

use super::Action;
use super::{cloudtrail, evidence, iam, lambda, logs, secrets};

static ALL: &[&dyn Action] = &[
    &lambda::describe::Describe,
    &lambda::indicators::action::Indicators,
    &lambda::set_concurrency::SetConcurrency,
    &lambda::restore_concurrency::RestoreConcurrency,
    &iam::quarantine_role::QuarantineRole,
    &lambda::public_access::RemovePublicAccess,
    &lambda::event_sources::DisableEventSources,
    &lambda::contain_rogue::ContainRogueFunctions,
    &lambda::tag::Tag,
    &iam::access_keys::DeactivateAccessKeys,
    &evidence::snapshot_config::SnapshotConfig,
    &evidence::snapshot_indicators::SnapshotIndicators,
    &evidence::snapshot_code::SnapshotCode,
    &logs::snapshot::Snapshot,
    &cloudtrail::collect::Collect,
    &secrets::discover::Discover,
    &secrets::rotate::Rotate,
    &secrets::ssm::RotateParameter,
];

pub fn all() -> &'static [&'static dyn Action] {
    ALL
}

pub fn find(name: &str) -> Option<&'static dyn Action> {
    ALL.iter().copied().find(|a| a.spec().name == name)
}

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|a| a.spec().name).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_namespaced() {
        let names = super::names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert!(names.iter().all(|n| n.contains('.')));
    }
}
