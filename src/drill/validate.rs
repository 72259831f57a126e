//! Raw → validated drill. Every problem is collected with its place in the
//! file (`file:line:col`), like playbooks and routes: an unknown technique
//! or check (with the nearest name), a name `setup` does not create, a
//! missing argument, a playbook that does not load.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Map;
use serde_saphyr::Spanned;

use super::model::{
    Check, Drill, EnvValue, Function, Respond, Role, Setup, Targets, Technique, Via, CHECKS,
    TECHNIQUES,
};
use super::raw::{Names, PolicyMap, RawCheck, RawDrill};
use crate::playbook::diagnostics::{choices_hint, Problem};
use crate::playbook::source::{Pos, Source};
use crate::playbook::validate::API_VERSION;

const DEFAULT_CODE: &str = "def handler(event, context):\n    return {\"ok\": True}\n";

struct V {
    source: Arc<Source>,
    problems: Vec<Problem>,
}

impl V {
    fn pos<T>(&self, s: &Spanned<T>) -> Pos {
        Pos::from_location(&s.referenced, &self.source)
    }

    fn problem<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, hint: impl Into<String>) {
        let pos = self.pos(at);
        self.problems
            .push(Problem::new(pos, message).label("here").hint(hint));
    }

    /// A logical name: short, lower-case, so that the per-run suffix keeps
    /// every AWS name within its limits.
    fn name(&mut self, s: &Spanned<String>, what: &str) -> String {
        let ok = !s.value.is_empty()
            && s.value.len() <= 40
            && s.value.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/' || c == '_'
            });
        if !ok {
            self.problem(
                s,
                format!("`{}` is not a valid {what} name", s.value),
                "use 1-40 characters: lower-case letters, digits, `-`, `_` (and `/` in parameter names); each run adds its own suffix",
            );
        }
        s.value.clone()
    }

    /// `field` must be given and name one of `known` (`kind`s of setup).
    fn reference(
        &mut self,
        field: &Option<Spanned<String>>,
        field_name: &str,
        at: &Spanned<String>,
        kind: &str,
        known: &[String],
    ) -> String {
        match field {
            None => {
                self.problem(
                    at,
                    format!("`{}` needs `{field_name}:`", at.value),
                    format!("add `{field_name}: NAME`, one of the {kind} in `setup`"),
                );
                String::new()
            }
            Some(s) => self.known(s, kind, known),
        }
    }

    fn known(&mut self, s: &Spanned<String>, kind: &str, known: &[String]) -> String {
        if !known.contains(&s.value) {
            let hint = if known.is_empty() {
                format!("`setup` creates no {kind}; add it there first")
            } else {
                choices_hint(
                    &s.value,
                    &known.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            };
            self.problem(
                s,
                format!("`{}` is not one of the {kind} in `setup`", s.value),
                hint,
            );
        }
        s.value.clone()
    }

    fn unique(&mut self, names: &[&Spanned<String>], what: &str) {
        let mut seen = HashSet::new();
        for n in names {
            if !seen.insert(n.value.as_str()) {
                self.problem(
                    *n,
                    format!("{what} `{}` is declared twice", n.value),
                    "give each one its own name",
                );
            }
        }
    }

    fn policies(&mut self, map: &Option<Spanned<PolicyMap>>) -> Vec<(String, Vec<String>)> {
        let Some(map) = map else { return Vec::new() };
        let mut out = Vec::new();
        for (name, actions) in &map.value {
            let n = self.name(name, "policy");
            if actions.value.is_empty() {
                self.problem(
                    actions,
                    "a policy needs at least one action",
                    "list actions such as `s3:GetObject`",
                );
            }
            for a in &actions.value {
                if !(a.value == "*" || a.value.contains(':')) {
                    self.problem(
                        a,
                        format!("`{}` is not an IAM action", a.value),
                        "write `service:Action`, e.g. `dynamodb:GetItem`",
                    );
                }
            }
            out.push((n, actions.value.iter().map(|a| a.value.clone()).collect()));
        }
        out
    }
}

fn names(list: &Names) -> Vec<String> {
    list.iter().map(|s| s.value.clone()).collect()
}

pub fn validate(raw: RawDrill, source: Arc<Source>, path: &Path) -> Result<Drill, Vec<Problem>> {
    let mut v = V {
        source: source.clone(),
        problems: Vec::new(),
    };
    if raw.api_version.value != API_VERSION {
        v.problem(
            &raw.api_version,
            format!("unsupported apiVersion `{}`", raw.api_version.value),
            format!("write `apiVersion: {API_VERSION}`"),
        );
    }
    if raw.kind.value != "Drill" {
        v.problem(
            &raw.kind,
            format!("`kind: {}` in a drill file", raw.kind.value),
            "write `kind: Drill`",
        );
    }
    let name = v.name(&raw.name, "drill");

    // Setup: the names everything else refers to.
    let s = &raw.setup.value;
    let role_names: Vec<String> = s.roles.iter().map(|r| r.name.value.clone()).collect();
    let fn_names: Vec<String> = s
        .functions
        .value
        .iter()
        .map(|f| f.name.value.clone())
        .collect();
    let (secrets, parameters, queues, users) = (
        names(&s.secrets),
        names(&s.parameters),
        names(&s.queues),
        names(&s.users),
    );
    v.unique(&s.roles.iter().map(|r| &r.name).collect::<Vec<_>>(), "role");
    v.unique(
        &s.functions
            .value
            .iter()
            .map(|f| &f.name)
            .collect::<Vec<_>>(),
        "function",
    );
    for (list, what) in [
        (&s.secrets, "secret"),
        (&s.parameters, "parameter"),
        (&s.queues, "queue"),
        (&s.users, "user"),
    ] {
        v.unique(&list.iter().collect::<Vec<_>>(), what);
        for n in list {
            v.name(n, what);
        }
    }
    let mut setup = Setup {
        secrets: secrets.clone(),
        parameters: parameters.clone(),
        queues: queues.clone(),
        users: users.clone(),
        ..Default::default()
    };
    for r in &s.roles {
        let name = v.name(&r.name, "role");
        let managed = v.policies(&r.managed);
        let inline = v.policies(&r.inline);
        setup.roles.push(Role {
            name,
            managed,
            inline,
        });
    }
    if s.functions.value.is_empty() {
        v.problem(
            &s.functions,
            "`setup.functions` is empty",
            "a drill needs at least the function the attacker compromises",
        );
    }
    for f in &s.functions.value {
        let name = v.name(&f.name, "function");
        let role = v.known(&f.role, "roles", &role_names);
        let mut env = Vec::new();
        for (k, val) in f.env.iter().flat_map(|e| e.value.iter()) {
            let value = if let Some(n) = val.value.strip_prefix("secret:") {
                let spanned = Spanned {
                    value: n.to_string(),
                    referenced: val.referenced,
                    defined: val.defined,
                };
                EnvValue::Secret(v.known(&spanned, "secrets", &secrets))
            } else if let Some(n) = val.value.strip_prefix("parameter:") {
                let spanned = Spanned {
                    value: n.to_string(),
                    referenced: val.referenced,
                    defined: val.defined,
                };
                EnvValue::Parameter(v.known(&spanned, "parameters", &parameters))
            } else {
                EnvValue::Plain(val.value.clone())
            };
            env.push((k.value.clone(), value));
        }
        let versions = f.versions.as_ref().map_or(0, |n| n.value);
        if versions > 5 {
            if let Some(n) = &f.versions {
                v.problem(
                    n,
                    "at most 5 versions",
                    "a drill stays small so that it runs in seconds",
                );
            }
        }
        if let Some(a) = &f.alias {
            v.name(a, "alias");
            if versions == 0 {
                v.problem(
                    a,
                    "an alias needs a published version",
                    "add `versions: 1` (or more)",
                );
            }
        }
        let queue = f.queue.as_ref().map(|q| v.known(q, "queues", &queues));
        setup.functions.push(Function {
            name,
            role,
            code: f
                .code
                .as_ref()
                .map_or(DEFAULT_CODE.to_string(), |c| c.value.clone()),
            env,
            versions,
            alias: f.alias.as_ref().map(|a| a.value.clone()),
            url: f.url.as_ref().is_some_and(|u| u.value),
            logs: names(&f.logs),
            queue,
        });
    }
    setup.alarm = s
        .alarm
        .as_ref()
        .map(|a| v.known(&a.value.function, "functions", &fn_names));

    // Attack.
    let mut attack = Vec::new();
    for step in &raw.attack.value {
        let t = &step.technique;
        let f = |v: &mut V| v.reference(&step.function, "function", t, "functions", &fn_names);
        let technique = match t.value.as_str() {
            "resource_policy_backdoor" => Technique::ResourcePolicyBackdoor {
                function: f(&mut v),
            },
            "malicious_layer" => Technique::MaliciousLayer {
                function: f(&mut v),
            },
            "code_overwrite" => {
                let function = f(&mut v);
                if let Some(func) = setup.functions.iter().find(|x| x.name == function) {
                    if func.alias.is_none() {
                        v.problem(t, format!("`code_overwrite` repoints an alias, and function `{function}` has none"), "give the function `versions: 1` and `alias: live` in `setup`");
                    }
                }
                Technique::CodeOverwrite { function }
            }
            "inline_admin_policy" => Technique::InlineAdminPolicy {
                role: v.reference(&step.role, "role", t, "roles", &role_names),
            },
            "public_function_url" => Technique::PublicFunctionUrl {
                function: f(&mut v),
            },
            "foreign_event_source" => Technique::ForeignEventSource {
                function: f(&mut v),
            },
            "exec_wrapper" => Technique::ExecWrapper {
                function: f(&mut v),
            },
            "new_access_key" => Technique::NewAccessKey {
                user: v.reference(&step.user, "user", t, "users", &users),
            },
            "rogue_function" => {
                let role = v.reference(&step.role, "role", t, "roles", &role_names);
                let name = match &step.name {
                    Some(n) => v.name(n, "function"),
                    None => {
                        v.problem(
                            t,
                            "`rogue_function` needs `name:`",
                            "add `name: NAME` for the attacker's function",
                        );
                        String::new()
                    }
                };
                Technique::RogueFunction { role, name }
            }
            "telltale_logs" => {
                if step.lines.is_empty() {
                    v.problem(
                        t,
                        "`telltale_logs` needs `lines:`",
                        "list the log lines the attacker's activity leaves",
                    );
                }
                Technique::TelltaleLogs {
                    function: f(&mut v),
                    lines: names(&step.lines),
                }
            }
            "invoke_flood" => {
                let count = step.count.as_ref().map_or(20, |c| c.value);
                if let Some(c) = &step.count {
                    if c.value == 0 || c.value > 200 {
                        v.problem(
                            c,
                            "`count` must be 1-200",
                            "a drill stays small: a few dozen invocations show the cost abuse",
                        );
                    }
                }
                Technique::InvokeFlood {
                    function: f(&mut v),
                    count,
                }
            }
            "set_alarm" => {
                if setup.alarm.is_none() {
                    v.problem(
                        t,
                        "`set_alarm` needs an alarm",
                        "add `alarm: {function: NAME}` to `setup`",
                    );
                }
                Technique::SetAlarm
            }
            other => {
                let ids: Vec<&str> = TECHNIQUES.iter().map(|t| t.id).collect();
                v.problem(
                    t,
                    format!("unknown technique `{other}`"),
                    choices_hint(other, &ids),
                );
                continue;
            }
        };
        attack.push(technique);
    }
    if raw.attack.value.is_empty() {
        v.problem(
            &raw.attack,
            "`attack` is empty",
            "list the attacker's steps (see `firebreak drill list` and docs/drills.md)",
        );
    }

    // Respond.
    let r = &raw.respond.value;
    let via = match r.via.as_ref().map(|s| s.value.as_str()) {
        None | Some("alarm") => Via::Alarm,
        Some("direct") => Via::Direct,
        Some(other) => {
            if let Some(s) = &r.via {
                v.problem(
                    s,
                    format!("unknown `via: {other}`"),
                    choices_hint(other, &["alarm", "direct"]),
                );
            }
            Via::Alarm
        }
    };
    if via == Via::Alarm && setup.alarm.is_none() {
        v.problem(
            &raw.respond,
            "`via: alarm` needs an alarm in `setup`",
            "add `alarm: {function: NAME}` to `setup`, or respond `via: direct`",
        );
    }
    if via == Via::Alarm && !attack.iter().any(|t| matches!(t, Technique::SetAlarm)) {
        v.problem(
            &raw.respond,
            "`via: alarm`, but no attack step sets the alarm",
            "end `attack` with `- technique: set_alarm`",
        );
    }
    let function = v.known(&r.function, "functions", &fn_names);
    let base = path.parent().unwrap_or(Path::new("."));
    let playbook_path = base.join(&r.playbook.value);
    let playbook = match crate::playbook::load(&playbook_path) {
        Ok(p) => Some(p),
        Err(e) => {
            let detail = match &e {
                crate::playbook::LoadError::Invalid(errs) => errs.to_string(),
                other => other.to_string(),
            };
            v.problem(&r.playbook, format!("the playbook does not load: {detail}"), "fix the path (relative to the drill file) or run `firebreak validate` on the playbook");
            None
        }
    };
    let mut params = Map::new();
    for (k, val) in r.params.iter().flat_map(|p| p.value.iter()) {
        if let Some(pb) = &playbook {
            if pb.param(&k.value).is_none() {
                let known: Vec<&str> = pb.params.iter().map(|p| p.name.as_str()).collect();
                v.problem(
                    k,
                    format!("playbook `{}` has no param `{}`", pb.name, k.value),
                    choices_hint(&k.value, &known),
                );
            }
        }
        if ["function", "forensic_bucket"].contains(&k.value.as_str()) {
            v.problem(
                k,
                format!("`{}` is set by the drill", k.value),
                "remove it: the drill passes its own function and forensic bucket",
            );
        }
        params.insert(k.value.clone(), val.value.clone());
    }
    for u in &r.users {
        v.known(u, "users", &users);
    }

    // Expect.
    let check = |v: &mut V, c: &RawCheck| -> Option<Check> {
        let name = c.check.value.as_str();
        let Some((_, arg)) = CHECKS.iter().find(|(n, _)| *n == name) else {
            let all: Vec<&str> = CHECKS.iter().map(|(n, _)| *n).collect();
            v.problem(
                &c.check,
                format!("unknown check `{name}`"),
                choices_hint(name, &all),
            );
            return None;
        };
        let given = [
            ("function", &c.function),
            ("role", &c.role),
            ("user", &c.user),
            ("secret", &c.secret),
            ("parameter", &c.parameter),
        ];
        for (field, value) in given {
            if let (Some(s), true) = (value, Some(field) != *arg) {
                v.problem(
                    s,
                    format!("`{name}` takes no `{field}:`"),
                    match arg {
                        Some(a) => format!("it takes `{a}:`"),
                        None => "it takes no argument".to_string(),
                    },
                );
            }
        }
        let mut arg_of = |field: &str, kind: &str, known: &[String]| {
            let value = given
                .iter()
                .find(|(f, _)| *f == field)
                .and_then(|(_, v)| (*v).clone());
            v.reference(&value, field, &c.check, kind, known)
        };
        Some(match name {
            "function_throttled" => {
                Check::FunctionThrottled(arg_of("function", "functions", &fn_names))
            }
            "public_access_closed" => {
                Check::PublicAccessClosed(arg_of("function", "functions", &fn_names))
            }
            "role_quarantined" => Check::RoleQuarantined(arg_of("role", "roles", &role_names)),
            "keys_deactivated" => Check::KeysDeactivated(arg_of("user", "users", &users)),
            "event_sources_disabled" => {
                Check::EventSourcesDisabled(arg_of("function", "functions", &fn_names))
            }
            "secret_rotated" => Check::SecretRotated(arg_of("secret", "secrets", &secrets)),
            "parameter_rotated" => {
                Check::ParameterRotated(arg_of("parameter", "parameters", &parameters))
            }
            "artifacts_contained" => Check::ArtifactsContained,
            "artifacts_in_evidence" => Check::ArtifactsInEvidence,
            "evidence_verified" => Check::EvidenceVerified,
            "audit_verified" => Check::AuditVerified,
            "function_invocable" => {
                Check::FunctionInvocable(arg_of("function", "functions", &fn_names))
            }
            "role_restored" => Check::RoleRestored(arg_of("role", "roles", &role_names)),
            "artifacts_stay_removed" => Check::ArtifactsStayRemoved,
            "recovered_to_baseline" => {
                Check::RecoveredToBaseline(arg_of("function", "functions", &fn_names))
            }
            "rogue_functions_throttled" => Check::RogueFunctionsThrottled,
            _ => Check::RogueRulesDisabled,
        })
    };
    let contained: Vec<Check> = raw
        .expect
        .value
        .contained
        .iter()
        .filter_map(|c| check(&mut v, c))
        .collect();
    let recovered: Vec<Check> = raw
        .expect
        .value
        .recovered
        .iter()
        .filter_map(|c| check(&mut v, c))
        .collect();
    if contained.is_empty() && raw.expect.value.contained.is_empty() {
        v.problem(
            &raw.expect,
            "`expect.contained` is empty",
            "list what must hold after containment, e.g. `- check: function_throttled`",
        );
    }

    let mut targets = Targets::default();
    if let Some(t) = &raw.targets {
        for (field, slot) in [
            (&t.value.detect_s, &mut targets.detect),
            (&t.value.contain_s, &mut targets.contain),
            (&t.value.evidence_s, &mut targets.evidence),
            (&t.value.recover_s, &mut targets.recover),
        ] {
            if let Some(s) = field {
                if s.value == 0 || s.value > 3600 {
                    v.problem(
                        s,
                        "a target is 1-3600 seconds",
                        "set how long the step may take, e.g. `contain_s: 30`",
                    );
                }
                *slot = Duration::from_secs(u64::from(s.value));
            }
        }
    }

    if !v.problems.is_empty() {
        return Err(v.problems);
    }
    let Some(playbook) = playbook else {
        return Err(v.problems);
    };
    Ok(Drill {
        name,
        description: raw.description.map(|d| d.value).unwrap_or_default(),
        path: path.to_path_buf(),
        source,
        setup,
        attack,
        respond: Respond {
            via,
            playbook,
            playbook_path,
            function,
            params,
            users: names(&r.users),
        },
        contained,
        recovered,
        targets,
    })
}
