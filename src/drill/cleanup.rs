//! Removes what a drill created, newest first, best effort: the run's
//! account is its own, so anything left behind harms no other run; the
//! incident's state (journal, audit trail) stays for `firebreak report`.

use aws_sdk_lambda::error::ProvideErrorMetadata;

use super::lab::Lab;
use super::setup::{Created, World};

/// `true` when everything was removed.
pub async fn cleanup(lab: &Lab, attacker: &Lab, w: &World) -> bool {
    let mut ok = true;
    // Policies last: a managed policy is deleted once its role let go.
    let order = w
        .created
        .iter()
        .rev()
        .filter(|c| !matches!(c, Created::Policy(_)));
    let policies = w.created.iter().filter(|c| matches!(c, Created::Policy(_)));
    for c in order.chain(policies) {
        let done = match c {
            Created::Function(n) => {
                gone(lab.lambda.delete_function().function_name(n).send().await)
            }
            Created::Mapping(u) => gone(
                lab.lambda
                    .delete_event_source_mapping()
                    .uuid(u)
                    .send()
                    .await,
            ),
            Created::Rule(r) => {
                let _ = lab
                    .events
                    .remove_targets()
                    .rule(r)
                    .ids("rogue")
                    .send()
                    .await;
                gone(lab.events.delete_rule().name(r).send().await)
            }
            Created::LogGroup(g) => lab
                .logs
                .delete_log_group()
                .log_group_name(g)
                .send()
                .await
                .is_ok(),
            Created::Alarm(a) => lab
                .cloudwatch
                .delete_alarms()
                .alarm_names(a)
                .send()
                .await
                .is_ok(),
            Created::Topic(t) => lab.sns.delete_topic().topic_arn(t).send().await.is_ok(),
            Created::Queue(q) => lab.sqs.delete_queue().queue_url(q).send().await.is_ok(),
            Created::AttackerQueue(q) => attacker
                .sqs
                .delete_queue()
                .queue_url(q)
                .send()
                .await
                .is_ok(),
            Created::AttackerLayer(l) => {
                let versions = attacker
                    .lambda
                    .list_layer_versions()
                    .layer_name(l)
                    .send()
                    .await;
                for v in versions.iter().flat_map(|v| v.layer_versions()) {
                    let _ = attacker
                        .lambda
                        .delete_layer_version()
                        .layer_name(l)
                        .version_number(v.version())
                        .send()
                        .await;
                }
                true
            }
            Created::Secret(s) => lab
                .secrets
                .delete_secret()
                .secret_id(s)
                .force_delete_without_recovery(true)
                .send()
                .await
                .is_ok(),
            Created::Parameter(p) => lab.ssm.delete_parameter().name(p).send().await.is_ok(),
            Created::User(u) => {
                if let Ok(keys) = lab.iam.list_access_keys().user_name(u).send().await {
                    for k in keys.access_key_metadata() {
                        if let Some(id) = k.access_key_id() {
                            let _ = lab
                                .iam
                                .delete_access_key()
                                .user_name(u)
                                .access_key_id(id)
                                .send()
                                .await;
                        }
                    }
                }
                lab.iam.delete_user().user_name(u).send().await.is_ok()
            }
            Created::Role(r) => {
                if let Ok(p) = lab
                    .iam
                    .list_attached_role_policies()
                    .role_name(r)
                    .send()
                    .await
                {
                    for a in p.attached_policies() {
                        if let Some(arn) = a.policy_arn() {
                            let _ = lab
                                .iam
                                .detach_role_policy()
                                .role_name(r)
                                .policy_arn(arn)
                                .send()
                                .await;
                        }
                    }
                }
                if let Ok(p) = lab.iam.list_role_policies().role_name(r).send().await {
                    for n in p.policy_names() {
                        let _ = lab
                            .iam
                            .delete_role_policy()
                            .role_name(r)
                            .policy_name(n)
                            .send()
                            .await;
                    }
                }
                lab.iam.delete_role().role_name(r).send().await.is_ok()
            }
            Created::Policy(arn) => lab.iam.delete_policy().policy_arn(arn).send().await.is_ok(),
            Created::Bucket(b) => {
                let mut token = None;
                loop {
                    let Ok(page) = lab
                        .s3
                        .list_objects_v2()
                        .bucket(b)
                        .set_continuation_token(token.take())
                        .send()
                        .await
                    else {
                        break;
                    };
                    for o in page.contents() {
                        let _ = lab
                            .s3
                            .delete_object()
                            .bucket(b)
                            .set_key(o.key().map(str::to_string))
                            .send()
                            .await;
                    }
                    match page.next_continuation_token() {
                        Some(t) => token = Some(t.to_string()),
                        None => break,
                    }
                }
                lab.s3.delete_bucket().bucket(b).send().await.is_ok()
            }
        };
        ok &= done;
    }
    ok
}

/// Deleted now, or already: recovery to the baseline deletes what the
/// attacker added (their function, its rule, their queue's mapping).
fn gone<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => e.code() == Some("ResourceNotFoundException"),
    }
}
