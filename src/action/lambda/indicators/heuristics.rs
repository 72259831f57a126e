//! Indicators that need no baseline: judged from one reading (`Facts`)
//! and the incident window alone. Pure, so every rule is tested here.
//!
//! The window runs from `since` (by default 24 h before the incident
//! started) until now. "Changed inside the window" is read from Lambda's
//! `LastModified` and IAM's `CreateDate`: a function created or changed,
//! a version published, a key created after `since`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::facts::{Facts, Version};
use super::model::{Indicator, Kind, Source};
use crate::action::iam::policy;
use crate::action::lambda::public_access::policy::{public_reason, sid};

fn owner(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

fn in_window(t: Option<DateTime<Utc>>, since: DateTime<Utc>) -> bool {
    t.is_some_and(|t| t >= since)
}

fn new(kind: Kind, resource: &str, detail: String, why: String, artifact: Value) -> Indicator {
    Indicator {
        kind,
        resource: resource.to_string(),
        detail,
        suspicious: true,
        why,
        source: Source::Heuristic,
        actor: None,
        when: None,
        active: true,
        artifact,
    }
}

fn qualified(function_arn: &str, label: &str) -> String {
    if label == "$LATEST" {
        function_arn.to_string()
    } else {
        format!("{function_arn}:{label}")
    }
}

/// Versions whose code no version from before the window has: published
/// (or, for `$LATEST`, deployed) inside the window. Without a version from
/// before the window there is nothing to compare with, so nothing is
/// judged new here (CloudTrail or a baseline can still tell).
fn new_code(facts: &Facts, since: DateTime<Utc>) -> Vec<&Version> {
    let before: Vec<&str> = facts
        .versions
        .iter()
        .filter(|v| v.version != "$LATEST" && !in_window(v.last_modified, since))
        .map(|v| v.code_sha256.as_str())
        .collect();
    if before.is_empty() {
        return Vec::new();
    }
    facts
        .versions
        .iter()
        .filter(|v| in_window(v.last_modified, since))
        .filter(|v| !before.contains(&v.code_sha256.as_str()))
        .collect()
}

/// Every indicator `facts` show, in a stable order.
pub fn evaluate(facts: &Facts, since: DateTime<Utc>) -> Vec<Indicator> {
    let mut out = Vec::new();
    let f = facts.function_arn.as_str();
    let latest = facts.versions.iter().find(|v| v.version == "$LATEST");
    // The configuration ($LATEST) changed inside the window: what it holds
    // now (layers, variables) may have been put there by the attacker.
    let config_changed = latest.is_some_and(|v| in_window(v.last_modified, since));
    let config_why = |what: &str| {
        if config_changed {
            (
                true,
                format!("{what}; the configuration changed inside the incident window"),
            )
        } else {
            (
                false,
                format!(
                    "{what}; the configuration has not changed since before the incident window"
                ),
            )
        }
    };

    // Resource-policy statements on every qualifier.
    for (q, st) in &facts.statements {
        if let Some(reason) = public_reason(st, &facts.account) {
            let kind = if st["Principal"] == "*" || st["Principal"]["AWS"] == "*" {
                Kind::PublicStatement
            } else {
                Kind::ForeignStatement
            };
            out.push(new(
                kind,
                &qualified(f, q),
                format!("statement `{}` on {q}", sid(st)),
                format!("{reason}: anyone it names can invoke the function"),
                json!({"qualifier": q, "statement": st}),
            ));
        }
    }
    // Function URLs open to anyone.
    for (q, url) in &facts.urls {
        if url["AuthType"] == "NONE" {
            out.push(new(
                Kind::PublicUrl,
                &qualified(f, q),
                format!("function URL on {q} with AuthType NONE"),
                "anyone on the internet can invoke it, unauthenticated".into(),
                json!({"qualifier": q, "url": url}),
            ));
        }
    }
    // Layers from other accounts.
    for l in &facts.layers {
        if let Some(o) = owner(l).filter(|o| *o != facts.account) {
            out.push(new(
                Kind::ForeignLayer,
                f,
                format!("layer {l}"),
                format!("owned by account {o}: its code runs inside the function"),
                json!({"layer_arn": l, "owner": o}),
            ));
        }
    }
    // Variables that hijack the runtime or the SDK.
    if facts
        .env_names
        .iter()
        .any(|n| n == "AWS_LAMBDA_EXEC_WRAPPER")
    {
        let (suspicious, why) =
            config_why("a wrapper script runs before the handler and sees every event");
        let mut i = new(
            Kind::ExecWrapper,
            f,
            "variable AWS_LAMBDA_EXEC_WRAPPER".into(),
            why,
            json!({"variable_names": ["AWS_LAMBDA_EXEC_WRAPPER"]}),
        );
        i.suspicious = suspicious;
        out.push(i);
    }
    for (name, to) in &facts.endpoints {
        let (suspicious, why) = config_why("the SDK sends those calls (and credentials) there");
        let mut i = new(
            Kind::EndpointVariable,
            f,
            format!("variable {name} points to {to}"),
            why,
            json!({"variable_names": [name], "endpoint": to}),
        );
        i.suspicious = suspicious;
        out.push(i);
    }
    // Code published or deployed inside the window.
    let fresh = new_code(facts, since);
    for v in &fresh {
        let when = v.last_modified.map(|t| t.to_rfc3339()).unwrap_or_default();
        out.push(new(
            Kind::CodeChanged,
            &v.arn,
            format!("version {} has code sha256 {}", v.version, v.code_sha256),
            format!("{} at {when}, inside the incident window, with code no earlier version has",
                if v.version == "$LATEST" { "deployed" } else { "published" }),
            json!({"version": v.version, "version_arn": v.arn, "code_sha256": v.code_sha256, "last_modified": when}),
        ));
    }
    for a in &facts.aliases {
        if let Some(v) = fresh.iter().find(|v| v.version == a.version) {
            out.push(new(
                Kind::AliasRepointed,
                &a.arn,
                format!("alias {} points at version {}", a.name, a.version),
                format!(
                    "version {} (code sha256 {}) was published inside the incident window",
                    v.version, v.code_sha256
                ),
                json!({"alias": a.name, "version": a.version, "version_arn": v.arn, "code_sha256": v.code_sha256}),
            ));
        }
    }
    // Broad inline policies on the execution role.
    if let Some(role) = &facts.role_arn {
        for (name, doc) in &facts.inline_policies {
            if let Some(broad) = policy::broad_grant(doc) {
                out.push(new(
                    Kind::AdminInlinePolicy,
                    role,
                    format!("inline policy `{name}`"),
                    format!("it {broad}"),
                    json!({"role_arn": role, "policy_name": name, "document": doc}),
                ));
            }
        }
    }
    // Event source mappings fed by another account.
    for m in &facts.mappings {
        let Some(src) = &m.source_arn else { continue };
        if let Some(o) = owner(src).filter(|o| *o != facts.account) {
            let mut i = new(
                Kind::ForeignEventSource,
                &m.arn,
                format!("mapping {} from {src}", m.uuid),
                format!("account {o} owns the source and can drive the function"),
                json!({"uuid": m.uuid, "event_source_arn": src, "enabled": m.enabled}),
            );
            i.active = m.enabled;
            out.push(i);
        }
    }
    // Other functions on the same role: one created or changed inside the
    // window *and* fired by an EventBridge rule is the attacker's
    // persistence; one merely new is listed as expected (a colleague's
    // deploy), for CloudTrail (`deployers`) or a baseline to judge.
    for s in &facts.sharers {
        let when = s.last_modified.map(|t| t.to_rfc3339()).unwrap_or_default();
        let rules: Vec<&super::facts::Rule> =
            facts.rules.iter().filter(|r| r.target == s.arn).collect();
        let fresh = in_window(s.last_modified, since);
        let mut i = new(
            Kind::RogueFunction,
            &s.arn,
            format!("function {} uses the same execution role", s.name),
            format!(
                "created or changed at {when}, inside the incident window, and fired by rule(s) {}: it holds the victim's permissions",
                rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            json!({"function_arn": s.arn, "code_sha256": s.code_sha256, "last_modified": when}),
        );
        if !fresh {
            i.suspicious = false;
            i.why = "unchanged since before the incident window".into();
        } else if rules.is_empty() {
            i.suspicious = false;
            i.why = format!("created or changed at {when}, inside the incident window, but nothing schedules it; CloudTrail (`deployers`) decides");
        }
        out.push(i);
    }
    // Rules that fire a suspicious function.
    for r in &facts.rules {
        let fires_rogue = out
            .iter()
            .any(|i| i.kind == Kind::RogueFunction && i.suspicious && i.resource == r.target);
        if !fires_rogue {
            continue;
        }
        let mut i = new(
            Kind::RogueRule,
            &r.arn,
            format!("rule {} invokes {}", r.name, r.target),
            "it fires a function identify marks as the attacker's".into(),
            json!({"rule": r.name, "rule_arn": r.arn, "target": r.target, "schedule": r.schedule, "event_pattern": r.pattern}),
        );
        i.active = r.enabled;
        out.push(i);
    }
    // Access keys created inside the window for the named users.
    for k in &facts.keys {
        if in_window(k.created, since) {
            let when = k.created.map(|t| t.to_rfc3339()).unwrap_or_default();
            let mut i = new(
                Kind::AccessKey,
                &k.user_arn,
                format!("access key {} of {}", k.id, k.user),
                format!("created at {when}, inside the incident window"),
                json!({"user": k.user, "access_key_id": k.id, "created": when}),
            );
            i.active = k.active;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::facts::{Alias, Key, Mapping, Rule, Sharer};
    use super::*;

    const ME: &str = "111122223333";
    const F: &str = "arn:aws:lambda:us-east-1:111122223333:function:victim";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn since() -> DateTime<Utc> {
        t("2026-11-23T00:00:00Z")
    }

    fn version(v: &str, sha: &str, at: &str) -> Version {
        Version {
            version: v.into(),
            arn: if v == "$LATEST" {
                F.into()
            } else {
                format!("{F}:{v}")
            },
            code_sha256: sha.into(),
            last_modified: Some(t(at)),
        }
    }

    fn clean() -> Facts {
        Facts {
            account: ME.into(),
            function_arn: F.into(),
            role_arn: Some(format!("arn:aws:iam::{ME}:role/victim-role")),
            versions: vec![
                version("$LATEST", "good", "2026-11-01T00:00:00Z"),
                version("1", "good", "2026-11-01T00:00:00Z"),
            ],
            aliases: vec![Alias {
                name: "live".into(),
                arn: format!("{F}:live"),
                version: "1".into(),
            }],
            ..Facts::default()
        }
    }

    fn kinds(v: &[Indicator]) -> Vec<(Kind, bool)> {
        v.iter().map(|i| (i.kind, i.suspicious)).collect()
    }

    #[test]
    fn a_clean_function_has_no_indicator() {
        assert!(evaluate(&clean(), since()).is_empty());
    }

    #[test]
    fn doors_are_suspicious_on_every_qualifier() {
        let mut f = clean();
        f.statements = vec![
            ("$LATEST".into(), json!({"Sid": "anyone", "Principal": "*"})),
            (
                "live".into(),
                json!({"Sid": "x", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}}),
            ),
            (
                "$LATEST".into(),
                json!({"Sid": "s3", "Principal": {"Service": "s3.amazonaws.com"}, "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}}}),
            ),
        ];
        f.urls = vec![
            ("$LATEST".into(), json!({"AuthType": "NONE"})),
            ("1".into(), json!({"AuthType": "AWS_IAM"})),
        ];
        let got = evaluate(&f, since());
        assert_eq!(
            kinds(&got),
            vec![
                (Kind::PublicStatement, true),
                (Kind::ForeignStatement, true),
                (Kind::PublicUrl, true)
            ]
        );
        assert_eq!(got[1].resource, format!("{F}:live"));
        assert_eq!(got[1].detail, "statement `x` on live");
    }

    #[test]
    fn variables_and_layers_count_when_the_configuration_changed_in_the_window() {
        let mut f = clean();
        f.layers = vec![
            "arn:aws:lambda:us-east-1:444455556666:layer:evil:1".into(),
            format!("arn:aws:lambda:us-east-1:{ME}:layer:ours:3"),
        ];
        f.env_names = vec![
            "AWS_LAMBDA_EXEC_WRAPPER".into(),
            "SECRET".into(),
            "S3_ENDPOINT".into(),
        ];
        f.endpoints
            .insert("S3_ENDPOINT".into(), "https://evil.example".into());
        let got = evaluate(&f, since());
        assert_eq!(
            kinds(&got),
            vec![
                (Kind::ForeignLayer, true),
                (Kind::ExecWrapper, false),
                (Kind::EndpointVariable, false)
            ]
        );
        f.versions[0].last_modified = Some(t("2026-11-23T05:00:00Z"));
        let got = evaluate(&f, since());
        assert_eq!(
            kinds(&got),
            vec![
                (Kind::ForeignLayer, true),
                (Kind::ExecWrapper, true),
                (Kind::EndpointVariable, true)
            ]
        );
        assert_eq!(
            got[2].detail,
            "variable S3_ENDPOINT points to https://evil.example"
        );
        // Names only: no other value ever reaches an indicator.
        assert!(!serde_json::to_string(&got).unwrap().contains("SECRET\":"));
    }

    #[test]
    fn new_code_and_the_alias_pointing_at_it_are_named_with_the_hash() {
        let mut f = clean();
        f.versions[0] = version("$LATEST", "evil", "2026-11-23T05:00:00Z");
        f.versions
            .push(version("2", "evil", "2026-11-23T05:00:01Z"));
        f.aliases[0].version = "2".into();
        let got = evaluate(&f, since());
        assert_eq!(
            kinds(&got),
            vec![
                (Kind::CodeChanged, true),
                (Kind::CodeChanged, true),
                (Kind::AliasRepointed, true)
            ]
        );
        assert_eq!(got[1].artifact["code_sha256"], "evil");
        assert_eq!(got[2].resource, format!("{F}:live"));
        // A re-publish of the old code inside the window is not new code.
        let mut f = clean();
        f.versions
            .push(version("2", "good", "2026-11-23T05:00:01Z"));
        assert!(evaluate(&f, since()).is_empty());
    }

    #[test]
    fn role_sharers_rules_keys_policies_and_mappings() {
        let mut f = clean();
        let rogue = format!("arn:aws:lambda:us-east-1:{ME}:function:helper");
        f.sharers = vec![
            Sharer {
                name: "helper".into(),
                arn: rogue.clone(),
                last_modified: Some(t("2026-11-23T06:00:00Z")),
                code_sha256: None,
            },
            Sharer {
                name: "old".into(),
                arn: "arn:old".into(),
                last_modified: Some(t("2026-10-01T00:00:00Z")),
                code_sha256: None,
            },
            Sharer {
                name: "colleague".into(),
                arn: "arn:new".into(),
                last_modified: Some(t("2026-11-23T06:00:00Z")),
                code_sha256: None,
            },
        ];
        f.rules = vec![
            Rule {
                name: "tick".into(),
                arn: "arn:rule/tick".into(),
                enabled: true,
                schedule: Some("rate(5 minutes)".into()),
                pattern: None,
                target: rogue.clone(),
            },
            Rule {
                name: "nightly".into(),
                arn: "arn:rule/nightly".into(),
                enabled: true,
                schedule: None,
                pattern: None,
                target: "arn:old".into(),
            },
        ];
        f.inline_policies.insert(
            "admin".into(),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        );
        f.inline_policies.insert("logs".into(), json!({"Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}));
        f.mappings = vec![
            Mapping {
                uuid: "u1".into(),
                arn: "arn:esm/u1".into(),
                source_arn: Some("arn:aws:sqs:us-east-1:444455556666:evil".into()),
                enabled: false,
            },
            Mapping {
                uuid: "u2".into(),
                arn: "arn:esm/u2".into(),
                source_arn: Some(format!("arn:aws:sqs:us-east-1:{ME}:jobs")),
                enabled: true,
            },
        ];
        f.keys = vec![
            Key {
                user: "deploy".into(),
                user_arn: "arn:user/deploy".into(),
                id: "AKIANEW".into(),
                active: true,
                created: Some(t("2026-11-23T07:00:00Z")),
            },
            Key {
                user: "deploy".into(),
                user_arn: "arn:user/deploy".into(),
                id: "AKIAOLD".into(),
                active: true,
                created: Some(t("2026-01-01T00:00:00Z")),
            },
        ];
        let got = evaluate(&f, since());
        assert_eq!(
            kinds(&got),
            vec![
                (Kind::AdminInlinePolicy, true),
                (Kind::ForeignEventSource, true),
                (Kind::RogueFunction, true),
                (Kind::RogueFunction, false),
                (Kind::RogueFunction, false),
                (Kind::RogueRule, true),
                (Kind::AccessKey, true),
            ]
        );
        assert!(!got[1].active, "a disabled mapping is no longer in effect");
        assert!(
            got[4].why.contains("nothing schedules it"),
            "{}",
            got[4].why
        );
        assert_eq!(got[5].artifact["rule"], "tick");
        assert_eq!(got[6].artifact["access_key_id"], "AKIANEW");
    }
}
