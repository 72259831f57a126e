//! Who made each change, from CloudTrail's LookupEvents: the newest event
//! of the kind that makes the change (`Kind::events`) naming the resource.
//! A change by a principal outside the `deployers` allowlist stays
//! suspicious (and says who); one by a deployer is marked expected.

use serde_json::Value;

use super::model::{Indicator, Kind, Source};

/// The resource name CloudTrail events carry for an indicator: the
/// function, the role, the rule or the user.
pub fn resource_name(i: &Indicator) -> String {
    let r = i.resource.as_str();
    match i.kind {
        Kind::AdminInlinePolicy | Kind::RolePolicyChanged | Kind::RogueRule | Kind::AccessKey => {
            r.rsplit('/').next().unwrap_or(r).to_string()
        }
        Kind::ForeignEventSource => i.artifact["uuid"].as_str().unwrap_or(r).to_string(),
        _ => r
            .split_once(":function:")
            .map(|(_, rest)| rest.split(':').next().unwrap_or(rest))
            .unwrap_or(r)
            .to_string(),
    }
}

/// The acting principal of a LookupEvents record: `userIdentity.arn` of
/// the raw event, else the `Username` LookupEvents reports.
pub fn actor(event: &Value) -> Option<String> {
    let raw: Value = event["CloudTrailEvent"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    raw["userIdentity"]["arn"]
        .as_str()
        .or_else(|| event["Username"].as_str())
        .map(str::to_string)
}

fn names(event: &Value, name: &str) -> bool {
    let listed = event["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["ResourceName"].as_str() == Some(name));
    listed
        || event["CloudTrailEvent"].as_str().is_some_and(|raw| {
            raw.contains(&format!("\"{name}\"")) || raw.contains(&format!(":{name}\""))
        })
}

/// Whether `actor` is one of `deployers`: its ARN, the user or role name
/// it carries, or, for an assumed-role session
/// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), the role's ARN.
pub fn is_deployer(actor: &str, deployers: &[String]) -> bool {
    let resource = actor.rsplit(':').next().unwrap_or(actor);
    let parts: Vec<&str> = resource.split('/').collect();
    let role_arn = match (parts.first(), parts.get(1)) {
        (Some(&"assumed-role"), Some(role)) => {
            let f: Vec<&str> = actor.split(':').collect();
            f.get(4)
                .map(|acct| format!("arn:{}:iam::{acct}:role/{role}", f.get(1).unwrap_or(&"aws")))
        }
        _ => None,
    };
    deployers.iter().any(|d| {
        d == actor
            || parts.iter().skip(1).any(|p| p == d)
            || role_arn.as_deref() == Some(d.as_str())
    })
}

/// Names the actor and time of every indicator an event explains.
/// `events` are LookupEvents records (`lookup::Found::events`, oldest first).
pub fn attribute(indicators: &mut [Indicator], events: &[Value], deployers: &[String]) {
    for i in indicators.iter_mut() {
        let name = resource_name(i);
        let found = events.iter().rev().find(|e| {
            let n = e["EventName"].as_str().unwrap_or_default();
            i.kind.events().iter().any(|p| n.starts_with(p)) && names(e, &name)
        });
        let Some(e) = found else { continue };
        let who = actor(e);
        i.when = e["EventTime"].as_str().map(str::to_string);
        i.source = Source::Cloudtrail;
        let event = e["EventName"].as_str().unwrap_or_default();
        match &who {
            Some(a) if is_deployer(a, deployers) => {
                i.suspicious = false;
                i.why = format!("{event} by {a}, a listed deployer");
            }
            Some(a) => {
                i.suspicious = true;
                i.why = format!("{}; {event} by {a}, who is not a listed deployer", i.why);
            }
            None => {}
        }
        i.actor = who;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, resource: &str, who: &str, at: &str) -> Value {
        json!({
            "EventName": name,
            "EventTime": at,
            "Username": who.rsplit('/').next(),
            "Resources": [{"ResourceType": "AWS::Lambda::Function", "ResourceName": resource}],
            "CloudTrailEvent": json!({"userIdentity": {"arn": who}, "eventName": name}).to_string(),
        })
    }

    fn ind(kind: Kind, resource: &str) -> Indicator {
        Indicator {
            kind,
            resource: resource.into(),
            detail: "d".into(),
            suspicious: true,
            why: "w".into(),
            source: Source::Heuristic,
            actor: None,
            when: None,
            active: true,
            artifact: json!({}),
        }
    }

    #[test]
    fn each_indicator_names_who_changed_it_and_deployers_are_expected() {
        let f = "arn:aws:lambda:us-east-1:1:function:victim";
        let mut inds = vec![
            ind(Kind::PublicStatement, f),
            ind(Kind::ForeignLayer, &format!("{f}:live")),
            ind(Kind::AccessKey, "arn:aws:iam::1:user/deploy"),
            ind(Kind::PublicUrl, f),
        ];
        let events = vec![
            event(
                "UpdateFunctionConfiguration20150331v2",
                "victim",
                "arn:aws:iam::1:role/ci-deployer",
                "2026-11-23T05:00:00Z",
            ),
            event(
                "AddPermission20150331v2",
                "victim",
                "arn:aws:iam::1:user/mallory",
                "2026-11-23T06:00:00Z",
            ),
            event(
                "CreateAccessKey",
                "deploy",
                "arn:aws:iam::1:user/mallory",
                "2026-11-23T07:00:00Z",
            ),
        ];
        attribute(&mut inds, &events, &["ci-deployer".into()]);
        assert_eq!(
            inds[0].actor.as_deref(),
            Some("arn:aws:iam::1:user/mallory")
        );
        assert!(inds[0].suspicious && inds[0].why.contains("not a listed deployer"));
        assert_eq!(inds[0].source, Source::Cloudtrail);
        assert!(!inds[1].suspicious, "{:?}", inds[1]);
        assert_eq!(inds[2].when.as_deref(), Some("2026-11-23T07:00:00Z"));
        assert_eq!(inds[3].actor, None, "no event explains it");
        assert_eq!(inds[3].source, Source::Heuristic);
    }

    #[test]
    fn deployers_match_by_arn_or_name() {
        let d = vec!["arn:aws:iam::1:role/ci".to_string(), "alice".to_string()];
        assert!(is_deployer("arn:aws:iam::1:role/ci", &d));
        assert!(is_deployer("arn:aws:iam::1:user/alice", &d));
        assert!(!is_deployer("arn:aws:iam::1:user/mallory", &d));
        assert!(is_deployer("arn:aws:sts::1:assumed-role/ci/build-17", &d));
        assert!(is_deployer(
            "arn:aws:sts::1:assumed-role/deployer/s",
            &["deployer".to_string()]
        ));
        assert!(!is_deployer(
            "arn:aws:sts::1:assumed-role/other/s",
            &["arn:aws:iam::1:role/ci".to_string()]
        ));
    }
}
