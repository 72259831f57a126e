//! Every role of the account with its policies, from
//! GetAccountAuthorizationDetails pages, for a run with many targets: read
//! once to plan and once to verify, and shared by every target's steps.
//!
//! Planning and verifying a quarantine read the role: GetRole,
//! ListAttachedRolePolicies, ListRolePolicies and a GetRolePolicy per
//! inline policy, four or five IAM calls a role, each time. A thousand
//! targets with a role each spend more of IAM's quota on that than on the
//! changes, and containment waits for it. The account's authorization
//! details hold the same for every role, up to a thousand roles a page.
//!
//! - **Verification** reads them once, after every change of the run.
//! - **Planning** reads them once, when the first target plans a role.
//!   The re-read before a change is skipped for a role only its target uses
//!   (`Action::owns_observed`), so the plan of the last target's role can
//!   be as old as the planning of the run. That does not weaken
//!   containment: the deny it plans overrides every allow, including one
//!   attached since; a policy attached since is left by the detach and
//!   named by verification, which reads after every change. A shared role
//!   is read again before each change, as before.
//!
//! Read only when the pages number fewer than the targets (otherwise the
//! per-role reads are cheaper), and never trusted past what they hold: a
//! role missing from them, a denied or failed read, all fall back to the
//! per-role reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_iam::types::EntityType;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::policy;
use crate::action::{RunContext, StepContext};
use crate::aws::Aws;

/// One role as the pages describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedRole {
    pub arn: String,
    pub path: String,
    /// Managed policy ARNs, sorted.
    pub attached: Vec<String>,
    /// Inline policy name → document (decoded).
    pub inline: BTreeMap<String, Value>,
}

/// The account's roles by name (unique in an account).
#[derive(Debug, Default)]
pub struct RoleIndex {
    pub by_name: HashMap<String, IndexedRole>,
}

impl RoleIndex {
    fn add(&mut self, r: &aws_sdk_iam::types::RoleDetail) {
        let Some(name) = r.role_name() else { return };
        let mut attached: Vec<String> = r
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect();
        attached.sort();
        let inline = r
            .role_policy_list()
            .iter()
            .filter_map(|p| {
                let name = p.policy_name()?;
                Some((name.to_string(), policy::decode(p.policy_document()?)))
            })
            .collect();
        self.by_name.insert(
            name.to_string(),
            IndexedRole {
                arn: r.arn().unwrap_or_default().to_string(),
                path: r.path().unwrap_or("/").to_string(),
                attached,
                inline,
            },
        );
    }

    pub fn get(&self, name: &str) -> Option<&IndexedRole> {
        self.by_name.get(name)
    }
}

/// The run's two indexes, each read once (`RunContext::slot`): planning's,
/// and verification's, read after every change.
#[derive(Default)]
pub struct RunRoles {
    planned: OnceCell<Option<Arc<RoleIndex>>>,
    verified: OnceCell<Option<Arc<RoleIndex>>>,
    /// Whether the first target started planning's read.
    planned_loading: std::sync::atomic::AtomicBool,
}

/// Reads every page, or `None` past `budget` pages or on any failure.
async fn read(aws: &Aws, budget: usize) -> Option<RoleIndex> {
    let mut index = RoleIndex::default();
    let mut pages = aws
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .max_items(1000)
        .into_paginator()
        .send();
    let mut read = 0usize;
    while let Some(page) = pages.next().await {
        read += 1;
        if read > budget {
            return None;
        }
        match page {
            Ok(page) => {
                for r in page.role_detail_list() {
                    index.add(r);
                }
            }
            Err(e) => {
                tracing::debug!(
                    "GetAccountAuthorizationDetails failed; verifying roles one by one: {}",
                    crate::aws::error::classify(
                        "GetAccountAuthorizationDetails",
                        "iam:GetAccountAuthorizationDetails",
                        "the account's roles",
                        e
                    )
                );
                return None;
            }
        }
    }
    Some(index)
}

/// Waits for planning's pages when the run is reading them. A plan that
/// preserves evidence applies a role's deny before its other targets'
/// evidence is read, and that evidence reads the role from these pages:
/// read after the deny, they would show it (`planning::applies_early`).
pub async fn planned_pages_read(run: &RunContext, aws: &Aws) {
    let slot = run.slot::<RunRoles>();
    if slot
        .planned_loading
        .load(std::sync::atomic::Ordering::Acquire)
    {
        let budget = run.targets();
        slot.planned
            .get_or_init(|| async { read(aws, budget).await.map(Arc::new) })
            .await;
    }
}

/// The roles as this step may read them: verification's pages, or
/// planning's, when the run has many targets; `None` (read each role)
/// with one target and for the re-read right before a change.
pub async fn for_step(cx: &StepContext<'_>) -> Option<Arc<RoleIndex>> {
    let budget = cx.run.targets();
    if budget < 2 || (cx.fresh && !cx.verifying) {
        return None;
    }
    let slot = cx.run.slot::<RunRoles>();
    if !cx.verifying && slot.planned.get().is_none() && crate::aws::call_path::current_target() == 0
    {
        // The first target reads its own role (four calls) rather than
        // wait for every page: its deny, which may stop every function on
        // a shared role, then waits for no other role's read (issue 15).
        // The pages are read meanwhile for the other targets.
        if !slot
            .planned_loading
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let (slot, aws) = (slot.clone(), cx.aws.clone());
            tokio::spawn(async move {
                slot.planned
                    .get_or_init(|| async { read(&aws, budget).await.map(Arc::new) })
                    .await;
            });
        }
        return None;
    }
    let cell = if cx.verifying {
        &slot.verified
    } else {
        &slot.planned
    };
    cell.get_or_init(|| async { read(cx.aws, budget).await.map(Arc::new) })
        .await
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::{AttachedPolicy, PolicyDetail, RoleDetail};

    #[test]
    fn a_role_detail_becomes_what_the_per_role_reads_give() {
        let mut index = RoleIndex::default();
        index.add(
            &RoleDetail::builder()
                .role_name("orders")
                .arn("arn:aws:iam::111111111111:role/team/orders")
                .path("/team/")
                .attached_managed_policies(
                    AttachedPolicy::builder()
                        .policy_arn("arn:aws:iam::aws:policy/b")
                        .build(),
                )
                .attached_managed_policies(
                    AttachedPolicy::builder()
                        .policy_arn("arn:aws:iam::aws:policy/a")
                        .build(),
                )
                .role_policy_list(
                    PolicyDetail::builder()
                        .policy_name("admin")
                        // IAM returns documents URL-encoded.
                        .policy_document("%7B%22Statement%22%3A%5B%5D%7D")
                        .build(),
                )
                .build(),
        );
        let r = index.get("orders").expect("indexed");
        assert_eq!(r.path, "/team/");
        assert_eq!(
            r.attached,
            ["arn:aws:iam::aws:policy/a", "arn:aws:iam::aws:policy/b"]
        );
        assert_eq!(r.inline["admin"], serde_json::json!({"Statement": []}));
        assert!(index.get("other").is_none());
    }
}
