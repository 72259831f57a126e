//! Actions: one struct per action, each observe → plan → apply → verify.
//!
//! `observe` only reads. `plan` is pure: from the observation (and, for
//! restoring actions, this incident's journal) it computes the changes that
//! would bring the resource to the desired state, none when it is already
//! there. `apply` carries out exactly one planned change. `verify` checks,
//! after the fact, that the desired state really holds.
//!
//! Adding an action touches its own file and one line in `registry`.

pub mod cloudtrail;
pub mod evidence;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod registry;
pub mod run_context;
pub mod secrets;
pub mod spec;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aws::{Aws, AwsError, Caller};
use crate::plan::{Change, Decision};
use crate::state::AuditEvent;
pub use run_context::RunContext;
use spec::ActionSpec;

/// Everything one step sees while it runs.
pub struct StepContext<'a> {
    pub aws: &'a Aws,
    /// What this run shares between steps and targets (dropped with it).
    pub run: &'a RunContext,
    /// Read AWS afresh, never from the run's memo of planning reads: the
    /// compare-and-swap re-read right before a write, verification and
    /// recovery are true; only planning reads (nothing has changed yet)
    /// share what another step already read (`RunContext::planned_read`).
    pub fresh: bool,
    /// Verification, after every change of the run: a read of state that
    /// targets share (a role) is made once for all of them
    /// (`shared_read`); each check still reads AWS, after the changes.
    pub verifying: bool,
    pub caller: &'a Caller,
    /// Arguments with every reference resolved.
    pub args: &'a Map<String, Value>,
    /// This incident's journal so far (restoring actions read prior state).
    pub history: &'a crate::state::History,
    pub step_id: &'a str,
    /// `${incident.started_at}`: stable across runs, so time-based changes
    /// (session revocation) plan the same value every time.
    pub incident_started_at: &'a str,
    pub incident_id: &'a str,
}

impl StepContext<'_> {
    /// A read other steps and targets of this run may share: while
    /// planning through the planning memo (`RunContext::planned_read`),
    /// while verifying through a memo of its own that starts after every
    /// change of the run, so a role shared by a hundred targets is read
    /// once to verify, not a hundred times; otherwise always from AWS.
    pub async fn shared_read<T, F>(&self, key: String, fetch: F) -> Result<T, ActionError>
    where
        T: Clone + Send + Sync + 'static,
        F: std::future::Future<Output = Result<T, ActionError>>,
    {
        // Boxed: the fetch is an SDK call, whose future is large, and the
        // steps that share reads nest them several deep.
        let (fresh, key) = if self.verifying {
            (false, format!("verify {key}"))
        } else {
            (self.fresh, key)
        };
        Box::pin(self.run.planned_read(fresh, key, fetch)).await
    }

    /// `shared_read` for a read that fails with its AWS error, kept as it
    /// was (a reading that keeps each part's outcome, e.g. public access).
    pub async fn shared_aws_read<T, F>(&self, key: String, fetch: F) -> Result<T, AwsError>
    where
        T: Clone + Send + Sync + 'static,
        F: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.shared_read(key, async { fetch.await.map_err(ActionError::from) })
            .await
            .map_err(|e| match e {
                ActionError::Aws(e) => *e,
                // Only AWS is read; kept readable were it ever otherwise.
                other => AwsError::new(
                    "read",
                    self.step_id,
                    crate::aws::AwsErrorKind::Other,
                    other.to_string(),
                    other.hint(),
                ),
            })
    }

    /// The step's arguments as the action's typed struct, read once.
    ///
    /// Each argument is first checked against the action's spec (presence,
    /// type, range, extra check), so that the error names the argument even
    /// where serde would only say "invalid type"; then the whole map is
    /// deserialized. Validation checked the playbook, but a reference
    /// resolved at run time (`${steps.x.y}`, `--param`) can still carry a
    /// value the action cannot use: that is the user's input, so the error
    /// says what to fix.
    pub fn args_as<T: DeserializeOwned>(&self, spec: &ActionSpec) -> Result<T, ActionError> {
        let fail = |what: String| {
            ActionError::input(
                format!("step `{}` ({}): {what}", self.step_id, spec.name),
                format!(
                    "fix the step's `with:` in the playbook (or the `--param` or step output it refers to); `firebreak actions {}` lists its arguments",
                    spec.name
                ),
            )
        };
        for p in spec.params {
            match self.args.get(p.name) {
                // An optional argument given as null is treated as absent,
                // as it always was.
                None | Some(Value::Null) if !p.required => {}
                None => return Err(fail(format!("argument `{}` is missing", p.name))),
                Some(v) => p.validate(v).map_err(|e| fail(format!("argument {e}")))?,
            }
        }
        serde_json::from_value(Value::Object(self.args.clone()))
            .map_err(|e| fail(format!("the arguments cannot be read: {e}")))
    }

    /// An observation's state as the action's typed struct. The state comes
    /// from `observe` in this process, or from a saved plan or the journal
    /// written by another run: one that does not fit was written by another
    /// version of firebreak.
    pub fn state_as<T: DeserializeOwned>(
        &self,
        spec: &ActionSpec,
        observed: &Observation,
    ) -> Result<T, ActionError> {
        T::deserialize(&observed.state).map_err(|e| {
            ActionError::input(
                format!(
                    "step `{}` ({}): the observed state of {} cannot be read: {e}",
                    self.step_id, spec.name, observed.target
                ),
                "the saved plan or journal was written by another version of firebreak (or edited); plan again with this version",
            )
        })
    }
}

/// Serializes a typed observed state. The types hold only strings, numbers,
/// booleans, lists and maps with string keys, which always serialize; a
/// failure would be a bug in a type, and is reported rather than panicking.
pub fn state_of<T: Serialize>(spec: &ActionSpec, state: &T) -> Result<Value, ActionError> {
    serde_json::to_value(state).map_err(|e| {
        ActionError::input(
            format!("{}: the observed state cannot be recorded: {e}", spec.name),
            "this is a bug in firebreak; please report it",
        )
    })
}

/// What a step read: the resource and the state its plan depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub target: String,
    pub state: Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub changes: Vec<Change>,
    pub outputs: Map<String, Value>,
    /// Something the responder should know (e.g. "nothing recorded to restore").
    pub note: Option<String>,
}

/// An audit event an action asks for after a change (see `apply_with_receipt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub event: AuditEvent,
    pub data: Value,
}

/// One post-change check (design contract 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub target: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    /// Boxed: AWS errors carry several strings and would make every
    /// `Result` in the engine large.
    #[error(transparent)]
    Aws(Box<AwsError>),
    #[error("{message}")]
    Input { message: String, hint: String },
    /// The step must not run until someone chooses (a shared role): the
    /// engine holds it and every other step goes on.
    #[error("{}", .0.question)]
    Decision(Box<Decision>),
}

impl From<AwsError> for ActionError {
    fn from(e: AwsError) -> Self {
        ActionError::Aws(Box::new(e))
    }
}

impl ActionError {
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> Self {
        ActionError::Input {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn hint(&self) -> &str {
        match self {
            ActionError::Aws(e) => &e.hint,
            ActionError::Input { hint, .. } => hint,
            ActionError::Decision(_) => "choose one of the options the plan lists",
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(self, ActionError::Aws(e) if e.kind.retryable())
    }

    /// Whether a failed mutation may nevertheless have taken effect: the
    /// request may have reached AWS (timeout, lost connection, server error).
    /// Such a change stays "in doubt" in the journal, never "failed".
    pub fn outcome_unknown(&self) -> bool {
        use crate::aws::AwsErrorKind as K;
        // An answer with an error code is a definite refusal; only a missing
        // or server-side answer leaves the outcome open.
        matches!(self, ActionError::Aws(e) if matches!(e.kind, K::Timeout | K::EndpointUnreachable | K::ServiceUnavailable)
            || (e.kind == K::Other && e.code.is_none()))
    }
}

#[async_trait]
pub trait Action: Send + Sync {
    fn spec(&self) -> &'static ActionSpec;

    async fn observe(&self, cx: &StepContext<'_>) -> Result<Observation, ActionError>;

    /// The part of `observe` whose changes do not depend on the rest,
    /// read first and planned with `plan` on its own: `run --yes` applies
    /// those changes before the rest is read, when the step goes ahead of
    /// its plan (`planning::applies_early`), then plans the whole as
    /// usual. The whole observation reads the same part again from the
    /// run's shared reads, so it costs no call. `None` (the default): the
    /// step is planned from the whole only.
    ///
    /// Why: closing the function's own public statement (its GetPolicy is
    /// on a quota of its own) need not wait for the listing of its aliases
    /// and URLs, which shares the control plane's 15 requests a second
    /// with every throttle and removal (issue 15).
    async fn first_look(&self, _cx: &StepContext<'_>) -> Result<Option<Observation>, ActionError> {
        Ok(None)
    }

    /// Those of the step's outputs that the run's listing of the region
    /// already holds for its target (`RunContext::listed_function`),
    /// without a call; `None` (the default) when the action has none or
    /// no page named the target. Only outputs that `observe` reads from
    /// the same fields are given, and the step's own reading still comes
    /// first at its turn.
    ///
    /// Why: the role's quarantine takes its role from `lambda.describe`,
    /// whose GetFunction a thousand targets ask for at once. The listing
    /// page that named the target names its role too, so the deny that
    /// stops every function on a shared role is asked for as soon as the
    /// first page is read (issue 15: harm stopped under a second at any
    /// N). At the quarantine's turn its arguments are resolved again from
    /// describe's own reading; if the role changed in between, the step
    /// is observed again with the new role (`Reading::take`), and what was
    /// applied to the role the page named is reported with it.
    fn listed_outputs(&self, _cx: &StepContext<'_>) -> Option<Map<String, Value>> {
        None
    }

    fn plan(&self, cx: &StepContext<'_>, observed: &Observation) -> Result<Planned, ActionError>;

    async fn apply(&self, cx: &StepContext<'_>, change: &Change) -> Result<(), ActionError>;

    /// `apply`, plus an audit record to write once the change is made, for
    /// facts known only afterwards (an evidence manifest's hash).
    async fn apply_with_receipt(
        &self,
        cx: &StepContext<'_>,
        change: &Change,
    ) -> Result<Option<Receipt>, ActionError> {
        self.apply(cx, change).await.map(|()| None)
    }

    /// The current value of one attribute this action changes, for
    /// `recover` (null when absent). Read-only actions change nothing.
    async fn read(
        &self,
        _cx: &StepContext<'_>,
        target: &str,
        attribute: &str,
    ) -> Result<Value, ActionError> {
        Err(ActionError::input(
            format!("{} cannot read {attribute} of {target}", self.spec().name),
            "this action changes nothing, so there is nothing to recover",
        ))
    }

    /// Whether `resource` is one of the resources `observed` covers: the
    /// observation's target by default. An action over many resources (a
    /// list of secrets) names each in its observed state. Resume matches a
    /// change left in doubt to its step by this, so a change of a sibling
    /// target's step (the same step id) is not taken for this one's, and a
    /// secret whose rotation landed is confirmed although its step's target
    /// is the whole list.
    fn covers(&self, observed: &Observation, resource: &str) -> bool {
        observed.target == resource
    }

    /// Whether what this step observed belongs to its target alone, so that
    /// no other target of the run changes it (`ActionSpec::own_state` by
    /// default). A role used by no function but the target is such state
    /// too, though roles in general are not. Called with an empty
    /// `cx.history`.
    fn owns_observed(&self, _cx: &StepContext<'_>, _observed: &Observation) -> bool {
        self.spec().own_state
    }

    /// Whether `change` itself stops harm, for an action whose spec says
    /// it does (`ActionSpec::stops_harm`): such changes go in the first
    /// pass, before every target's other steps; the action's other
    /// changes wait for the second (a role's deny stops everything the
    /// role could do; detaching its policies only tidies up behind it).
    /// True by default: every change of a harm-stopping action.
    fn change_stops_harm(&self, _change: &Change) -> bool {
        true
    }

    /// Whether each change concerns a resource of its own, so that one
    /// change left in doubt (a timeout) need not stop the step's other
    /// changes. False by default: most actions' changes build on each
    /// other (a role's deny before its policies are detached).
    fn independent_changes(&self) -> bool {
        false
    }

    /// Whether `recover` undoes this action's changes. Evidence is never
    /// taken back.
    fn undoable(&self) -> bool {
        true
    }

    /// Why `recover` lists this action's changes but never restores them,
    /// not even with `--include-risky` (a rotated secret: the old value
    /// must be assumed stolen). `None`: restored like any other change.
    fn never_restored(&self) -> Option<&'static str> {
        None
    }

    /// Why moving a resource to `change.after` during recovery would re-open
    /// a door (public or cross-account access, broad permissions); `None`
    /// when it is safe. Such restorations are held back unless asked for.
    async fn restore_risk(
        &self,
        _cx: &StepContext<'_>,
        _change: &Change,
    ) -> Result<Option<String>, ActionError> {
        Ok(None)
    }

    /// Checks that the desired state holds. Read-only actions have none.
    async fn verify(
        &self,
        _cx: &StepContext<'_>,
        _observed: &Observation,
    ) -> Result<Vec<Check>, ActionError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::spec::{HarmOrder, ParamDef, ValueType};
    use super::*;
    use serde_json::json;

    static SPEC: ActionSpec = ActionSpec {
        name: "test.action",
        summary: "",
        mutating: false,
        stops_harm: false,
        harm_order: HarmOrder::Access,
        own_state: false,
        params: &[
            ParamDef::new("function", ValueType::String, "").check(lambda::function::check_literal),
            ParamDef::new("value", ValueType::Integer, "")
                .optional()
                .range(0, 10),
        ],
        outputs: &[],
        iam_actions: &[],
    };

    #[derive(Debug, Deserialize)]
    struct Args {
        function: lambda::function::FunctionArg,
        value: Option<i32>,
    }

    fn with_cx<R>(args: Value, f: impl FnOnce(&StepContext<'_>) -> R) -> R {
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .build();
        let aws = Aws::from_sdk_config(&sdk, "us-east-1".into(), &Default::default());
        let run = RunContext::new();
        let caller = Caller {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/oncall".into(),
        };
        let args = args.as_object().cloned().unwrap_or_default();
        f(&StepContext {
            aws: &aws,
            run: &run,
            fresh: true,
            verifying: false,
            caller: &caller,
            args: &args,
            history: &[],
            step_id: "contain",
            incident_started_at: "2026-01-01T00:00:00Z",
            incident_id: "inc-1",
        })
    }

    #[test]
    fn arguments_are_read_once_into_their_types() {
        let args: Args = with_cx(json!({"function": "demo", "value": 3}), |cx| {
            cx.args_as(&SPEC)
        })
        .unwrap();
        assert_eq!(args.function.as_str(), "demo");
        assert_eq!(args.value, Some(3));
        let args: Args = with_cx(json!({"function": "demo", "value": null}), |cx| {
            cx.args_as(&SPEC)
        })
        .unwrap();
        assert_eq!(args.value, None);
    }

    #[test]
    fn a_bad_argument_is_named_with_its_step_and_action() {
        let e = with_cx(json!({"value": 3}), |cx| cx.args_as::<Args>(&SPEC)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "step `contain` (test.action): argument `function` is missing"
        );
        assert!(!e.hint().contains("validation bug"), "{}", e.hint());
        let e = with_cx(json!({"function": "demo", "value": "3"}), |cx| {
            cx.args_as::<Args>(&SPEC)
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "step `contain` (test.action): argument `value` must be an integer, found the string \"3\""
        );
        let e = with_cx(json!({"function": "bad name!"}), |cx| {
            cx.args_as::<Args>(&SPEC)
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("argument `function`: `bad name!` is neither"),
            "{e}"
        );
    }

    #[test]
    fn a_state_from_another_version_is_an_input_error() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct State {
            tags: Map<String, Value>,
        }
        let observed = Observation {
            target: "arn:x".into(),
            state: json!({"tags": ["a"]}),
        };
        let e = with_cx(json!({}), |cx| cx.state_as::<State>(&SPEC, &observed)).unwrap_err();
        assert!(matches!(e, ActionError::Input { .. }));
        assert!(
            e.to_string().starts_with(
                "step `contain` (test.action): the observed state of arn:x cannot be read"
            ),
            "{e}"
        );
        assert!(e.hint().contains("another version"));
    }
}
