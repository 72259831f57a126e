//! Drift: how a function's state now differs from its baseline, item by
//! item (what, baseline value, current value). Pure: two baselines in, a
//! list out, so indicators of compromise and recovery read the same list.
//!
//! The item types live with the indicators (`action::lambda::indicators::
//! drift`), below this module, because `lambda.indicators` judges them
//! and `action` may not use `baseline`; they are re-exported here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::model::Baseline;
pub use crate::action::lambda::indicators::drift::{Drift, DriftKind};

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Every key present on either side whose values differ.
fn diff_maps<T: Serialize + PartialEq>(
    out: &mut Vec<Drift>,
    kind: DriftKind,
    base: &BTreeMap<String, T>,
    now: &BTreeMap<String, T>,
    place: impl Fn(&str) -> (String, String),
) {
    let keys: std::collections::BTreeSet<&String> = base.keys().chain(now.keys()).collect();
    for k in keys {
        let (b, n) = (base.get(k), now.get(k));
        if b != n {
            let (resource, field) = place(k);
            out.push(Drift {
                kind,
                resource,
                field,
                baseline: b.map(to_value).unwrap_or(Value::Null),
                current: n.map(to_value).unwrap_or(Value::Null),
            });
        }
    }
}

fn set_of(v: &[String]) -> BTreeMap<String, bool> {
    v.iter().map(|s| (s.clone(), true)).collect()
}

/// How `now` differs from `baseline` (same function), in a stable order.
pub fn drift(baseline: &Baseline, now: &Baseline) -> Vec<Drift> {
    let mut out = Vec::new();
    let f = &baseline.function;
    let (bc, nc) = (&baseline.configuration, &now.configuration);
    let fields: [(&str, Value, Value); 8] = [
        ("code_sha256", json!(bc.code_sha256), json!(nc.code_sha256)),
        ("runtime", json!(bc.runtime), json!(nc.runtime)),
        ("handler", json!(bc.handler), json!(nc.handler)),
        ("role", json!(bc.role), json!(nc.role)),
        ("timeout", json!(bc.timeout), json!(nc.timeout)),
        ("memory_size", json!(bc.memory_size), json!(nc.memory_size)),
        ("description", json!(bc.description), json!(nc.description)),
        ("layers", json!(bc.layers), json!(nc.layers)),
    ];
    for (field, b, n) in fields {
        if b != n {
            out.push(Drift {
                kind: DriftKind::Configuration,
                resource: f.clone(),
                field: field.into(),
                baseline: b,
                current: n,
            });
        }
    }
    diff_maps(
        &mut out,
        DriftKind::Configuration,
        &bc.environment,
        &nc.environment,
        |k| (f.clone(), format!("environment.{k}")),
    );
    diff_maps(
        &mut out,
        DriftKind::Version,
        &baseline.versions,
        &now.versions,
        |k| (f.clone(), k.to_string()),
    );
    // An alias is what its version holds: one on a version re-published
    // from the baseline's package (a new number, the same code and
    // configuration) is the baseline's.
    let aliases: std::collections::BTreeSet<&String> =
        baseline.aliases.keys().chain(now.aliases.keys()).collect();
    for a in aliases {
        let (b, n) = (baseline.aliases.get(a), now.aliases.get(a));
        let same_content = match (b, n) {
            (Some(b), Some(n)) => baseline
                .versions
                .get(b)
                .is_some_and(|bv| now.versions.get(n) == Some(bv)),
            _ => false,
        };
        if b != n && !same_content {
            out.push(Drift {
                kind: DriftKind::Alias,
                resource: f.clone(),
                field: a.clone(),
                baseline: b.map(|v| json!(v)).unwrap_or(Value::Null),
                current: n.map(|v| json!(v)).unwrap_or(Value::Null),
            });
        }
    }
    let qualifiers: std::collections::BTreeSet<&String> = baseline
        .policies
        .keys()
        .chain(now.policies.keys())
        .collect();
    let empty = BTreeMap::new();
    for q in qualifiers {
        diff_maps(
            &mut out,
            DriftKind::Statement,
            baseline.policies.get(q).unwrap_or(&empty),
            now.policies.get(q).unwrap_or(&empty),
            |sid| (q.to_string(), sid.to_string()),
        );
    }
    diff_maps(&mut out, DriftKind::Url, &baseline.urls, &now.urls, |q| {
        (q.to_string(), String::new())
    });
    // A mapping's UUID is not compared: one re-created from the baseline
    // gets a new one.
    let strip = |m: &BTreeMap<String, super::model::Mapping>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({"enabled": v.enabled, "batch_size": v.batch_size}),
                )
            })
            .collect()
    };
    diff_maps(
        &mut out,
        DriftKind::Mapping,
        &strip(&baseline.mappings),
        &strip(&now.mappings),
        |k| (k.to_string(), String::new()),
    );
    diff_maps(&mut out, DriftKind::Tag, &baseline.tags, &now.tags, |k| {
        (f.clone(), k.to_string())
    });
    match (&baseline.role, &now.role) {
        (Some(b), Some(n)) => {
            if b.trust != n.trust {
                out.push(Drift {
                    kind: DriftKind::RoleTrust,
                    resource: b.name.clone(),
                    field: String::new(),
                    baseline: b.trust.clone(),
                    current: n.trust.clone(),
                });
            }
            diff_maps(&mut out, DriftKind::RoleInline, &b.inline, &n.inline, |k| {
                (b.name.clone(), k.to_string())
            });
            diff_maps(
                &mut out,
                DriftKind::RoleAttached,
                &set_of(&b.attached),
                &set_of(&n.attached),
                |k| (b.name.clone(), k.to_string()),
            );
        }
        (b, n) if b != n => out.push(Drift {
            kind: DriftKind::RoleTrust,
            resource: baseline.configuration.role.clone(),
            field: "readable".into(),
            baseline: json!(b.is_some()),
            current: json!(n.is_some()),
        }),
        _ => {}
    }
    let users: std::collections::BTreeSet<&String> = baseline
        .deploy_users
        .keys()
        .chain(now.deploy_users.keys())
        .collect();
    let none = Vec::new();
    for u in users {
        diff_maps(
            &mut out,
            DriftKind::AccessKey,
            &set_of(baseline.deploy_users.get(u).unwrap_or(&none)),
            &set_of(now.deploy_users.get(u).unwrap_or(&none)),
            |k| (u.to_string(), k.to_string()),
        );
    }
    diff_maps(
        &mut out,
        DriftKind::RoleFunction,
        &set_of(&baseline.role_functions),
        &set_of(&now.role_functions),
        |k| (k.to_string(), String::new()),
    );
    diff_maps(
        &mut out,
        DriftKind::Rule,
        &baseline.rules,
        &now.rules,
        |k| (k.to_string(), String::new()),
    );
    out
}

/// A small baseline for tests of the code that reads drift.
#[cfg(test)]
pub mod tests {
    use super::super::model::*;
    use super::*;

    pub fn sample() -> Baseline {
        Baseline {
            format: FORMAT,
            taken_at: "2026-12-01T10:00:00.000Z".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            function: "orders".into(),
            function_arn: "arn:aws:lambda:us-east-1:111111111111:function:orders".into(),
            env_key_id: "k".into(),
            configuration: Configuration {
                runtime: Some("python3.12".into()),
                handler: Some("handler.handler".into()),
                role: "arn:aws:iam::111111111111:role/orders".into(),
                timeout: Some(3),
                memory_size: Some(128),
                description: String::new(),
                layers: vec![],
                environment: [("DB".to_string(), "h1".to_string())].into(),
                code_sha256: "c1".into(),
            },
            versions: [(
                "1".to_string(),
                Version {
                    code_sha256: "c1".into(),
                    layers: vec![],
                    environment: Default::default(),
                },
            )]
            .into(),
            aliases: [("live".to_string(), "1".to_string())].into(),
            policies: Default::default(),
            urls: Default::default(),
            mappings: Default::default(),
            tags: Default::default(),
            role: Some(Role {
                name: "orders".into(),
                arn: "arn:aws:iam::111111111111:role/orders".into(),
                trust: json!({"Statement": []}),
                inline: Default::default(),
                attached: vec![],
            }),
            deploy_users: [("deployer".to_string(), vec!["AKIA1".to_string()])].into(),
            role_functions: vec!["orders".into()],
            rules: Default::default(),
            packages: Default::default(),
        }
    }

    #[test]
    fn the_same_state_has_no_drift() {
        assert!(drift(&sample(), &sample()).is_empty());
    }

    #[test]
    fn each_technique_shows_as_one_item() {
        let b = sample();
        let mut n = sample();
        n.configuration.code_sha256 = "evil".into();
        n.configuration.layers = vec!["arn:aws:lambda:us-east-1:999999999999:layer:x:1".into()];
        n.configuration
            .environment
            .insert("AWS_LAMBDA_EXEC_WRAPPER".into(), "h2".into());
        n.versions.insert(
            "2".into(),
            Version {
                code_sha256: "evil".into(),
                layers: vec![],
                environment: Default::default(),
            },
        );
        n.aliases.insert("live".into(), "2".into());
        n.policies.entry("$LATEST".into()).or_default().insert(
            "backdoor".into(),
            json!({"Sid": "backdoor", "Principal": "*"}),
        );
        n.urls.insert(
            "$LATEST".into(),
            UrlConfig {
                auth_type: "NONE".into(),
                cors: Value::Null,
            },
        );
        n.mappings.insert(
            Mapping::key("arn:aws:sqs:us-east-1:999999999999:q", "$LATEST"),
            Mapping {
                uuid: "u".into(),
                source_arn: "arn:aws:sqs:us-east-1:999999999999:q".into(),
                qualifier: "$LATEST".into(),
                enabled: true,
                batch_size: Some(10),
            },
        );
        if let Some(r) = n.role.as_mut() {
            r.inline.insert("admin".into(), json!({"Statement": []}));
        }
        n.deploy_users
            .get_mut("deployer")
            .unwrap()
            .push("AKIA2".into());
        n.role_functions.push("miner".into());
        n.rules.insert(
            "every-minute".into(),
            Rule {
                arn: "arn:aws:events:us-east-1:111111111111:rule/every-minute".into(),
                schedule: Some("rate(1 minute)".into()),
                event_pattern: None,
                enabled: true,
                targets: [("1".to_string(), "arn:...:miner".to_string())].into(),
            },
        );
        let d = drift(&b, &n);
        let ids: Vec<String> = d.iter().map(Drift::id).collect();
        assert_eq!(
            ids,
            [
                "configuration:orders:code_sha256",
                "configuration:orders:layers",
                "configuration:orders:environment.AWS_LAMBDA_EXEC_WRAPPER",
                "version:orders:2",
                "alias:orders:live",
                "statement:$LATEST:backdoor",
                "url:$LATEST",
                "mapping:arn:aws:sqs:us-east-1:999999999999:q -> $LATEST",
                "role_inline:orders:admin",
                "access_key:deployer:AKIA2",
                "role_function:miner",
                "rule:every-minute",
            ]
        );
        let alias = &d[4];
        assert_eq!(alias.baseline, json!("1"));
        assert_eq!(alias.current, json!("2"));
        let env = &d[2];
        assert_eq!(env.baseline, Value::Null);
        assert_eq!(env.current, json!("h2"));
        // Only the new version is not blocking: it stays as evidence.
        assert_eq!(d.iter().filter(|x| !x.blocking()).count(), 1);
        assert!(!d[3].blocking());
    }

    #[test]
    fn a_removed_or_disabled_mapping_drifts_but_not_its_uuid() {
        let key = Mapping::key("arn:aws:sqs:us-east-1:111111111111:jobs", "$LATEST");
        let m = Mapping {
            uuid: "a".into(),
            source_arn: "arn:aws:sqs:us-east-1:111111111111:jobs".into(),
            qualifier: "$LATEST".into(),
            enabled: true,
            batch_size: Some(10),
        };
        let mut b = sample();
        b.mappings.insert(key.clone(), m.clone());
        let mut n = b.clone();
        n.mappings.get_mut(&key).unwrap().uuid = "b".into();
        assert!(drift(&b, &n).is_empty(), "a new uuid alone is no drift");
        n.mappings.get_mut(&key).unwrap().enabled = false;
        let d = drift(&b, &n);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].current["enabled"], json!(false));
        n.mappings.clear();
        assert_eq!(drift(&b, &n)[0].current, Value::Null);
    }

    #[test]
    fn an_alias_on_a_version_with_the_baselines_content_is_no_drift() {
        let b = sample();
        let mut n = sample();
        // Version 1 deleted, its code and configuration re-published as 3.
        let v1 = n.versions.remove("1").unwrap();
        n.versions.insert("3".into(), v1.clone());
        n.aliases.insert("live".into(), "3".into());
        let ids: Vec<String> = drift(&b, &n).iter().map(Drift::id).collect();
        assert_eq!(ids, ["version:orders:1", "version:orders:3"]);
        // Another content under the alias is drift, numbers shown.
        n.versions.get_mut("3").unwrap().layers = vec!["evil".into()];
        let d = drift(&b, &n);
        let alias = d.iter().find(|d| d.kind == DriftKind::Alias).unwrap();
        assert_eq!(
            (&alias.baseline, &alias.current),
            (&json!("1"), &json!("3"))
        );
    }

    #[test]
    fn removed_keys_and_changed_trust_are_drift() {
        let b = sample();
        let mut n = sample();
        n.deploy_users.get_mut("deployer").unwrap().clear();
        if let Some(r) = n.role.as_mut() {
            r.trust = json!({"Statement": [{"Principal": {"AWS": "*"}}]});
        }
        let ids: Vec<String> = drift(&b, &n).iter().map(Drift::id).collect();
        assert_eq!(ids, ["role_trust:orders", "access_key:deployer:AKIA1"]);
    }
}
