//! What one run shares between its steps and targets, and nothing longer.
//!
//! The runner creates one `RunContext` per command (or per alarm in a
//! long-lived responder) and drops it with the run, so nothing here
//! outlives the run or grows across runs. Two kinds of things live here:
//!
//! - **Reads every target needs** (the region's functions and their roles,
//!   for blast radius and `--target` globs): read once per run, however many
//!   targets, so the cost per target does not grow with the account.
//! - **Typed slots** an action keeps between its observation and its apply
//!   (the exact bytes observed, a window end chosen once): each action
//!   module owns its slot type, so no other module can misread it. Slots may
//!   hold environment variable values: `RunContext` is deliberately neither
//!   `Serialize` nor `Debug`-printable with its contents.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use aws_sdk_lambda::types::{FunctionConfiguration, FunctionVersion};

use super::lambda::indicators::drift::BaselineReader;
use super::lambda::qualifiers::ListedVersion;
use super::ActionError;
use crate::aws::error::classify;
use crate::aws::Aws;
use crate::plan::Change;

/// One function as ListFunctions reports it: enough for blast radius and
/// target selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSummary {
    pub name: String,
    pub arn: String,
    pub role: Option<String>,
    /// Lambda's `LastModified` (indicators: a function on the victim's role
    /// changed inside the incident window).
    pub last_modified: Option<String>,
    pub code_sha256: Option<String>,
}

/// The region's functions, read once per run.
#[derive(Debug, Default)]
pub struct FunctionInventory {
    pub functions: Vec<FunctionSummary>,
}

/// Every function's versions (`$LATEST` included) by its unqualified ARN,
/// from ListFunctions pages of every version: 50 versions of any functions
/// a call, where ListVersionsByFunction costs a call a function out of the
/// same 15/s control-plane quota (issue 15).
#[derive(Debug, Default)]
pub struct VersionIndex {
    pub by_function: HashMap<String, Vec<ListedVersion>>,
}

impl VersionIndex {
    fn add(&mut self, f: &FunctionConfiguration) {
        let Some(arn) = f.function_arn() else {
            return;
        };
        let version = f.version().unwrap_or("$LATEST");
        self.by_function
            .entry(unqualified(arn, version).to_string())
            .or_default()
            .push(ListedVersion {
                version: version.to_string(),
                arn: arn.to_string(),
                code_sha256: f.code_sha256().unwrap_or_default().to_string(),
                last_modified: f.last_modified().map(str::to_string),
            });
    }
}

/// Every page of ListFunctions with every version, or `None` past
/// `budget` pages or on a failed page.
async fn read_versions(aws: Aws, budget: usize) -> Option<Arc<VersionIndex>> {
    let mut index = VersionIndex::default();
    let mut pages = aws
        .lambda
        .list_functions()
        .function_version(FunctionVersion::All)
        .into_paginator()
        .send();
    let mut read = 0usize;
    while let Some(page) = pages.next().await {
        read += 1;
        if read > budget {
            return None;
        }
        for f in page.ok()?.functions() {
            index.add(f);
        }
    }
    Some(Arc::new(index))
}

/// A version's ARN without its qualifier (`...:function:NAME:1` →
/// `...:function:NAME`); an unqualified one as it is.
fn unqualified<'a>(arn: &'a str, version: &str) -> &'a str {
    arn.strip_suffix(version)
        .and_then(|a| a.strip_suffix(':'))
        .unwrap_or(arn)
}

impl FunctionInventory {
    /// ARNs of the functions whose execution role is `role_arn`, sorted.
    pub fn using_role(&self, role_arn: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .functions
            .iter()
            .filter(|f| f.role.as_deref() == Some(role_arn))
            .map(|f| f.arn.clone())
            .collect();
        out.sort();
        out
    }
}

/// What the region's listing said of each function, by name, as a
/// streamed selection's pages arrive (`RunContext::listed_function`).
#[derive(Debug, Default)]
pub struct ListedPages(Mutex<HashMap<String, FunctionSummary>>);

impl ListedPages {
    /// Keeps a page's functions (a later page's entry for a name stands).
    pub fn add(&self, page: &[FunctionSummary]) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.extend(page.iter().map(|f| (f.name.clone(), f.clone())));
    }

    fn get(&self, name: &str) -> Option<FunctionSummary> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(name).cloned()
    }
}

/// One planning read's answer, of whatever type its key names.
type SharedRead = OnceCell<Arc<dyn Any + Send + Sync>>;

#[derive(Default)]
pub struct RunContext {
    functions: Arc<OnceCell<Arc<FunctionInventory>>>,
    /// `defer_listing`, until `contained`.
    defer_listing: std::sync::atomic::AtomicBool,
    /// Whether the deferred listing's task was started.
    listing_started: std::sync::atomic::AtomicBool,
    /// Whether the listing is read page by page for a streamed selection.
    streamed: std::sync::atomic::AtomicBool,
    /// Roles observed without their blast radius (step id, role ARN).
    deferred: Mutex<Vec<(String, String)>>,
    /// Planning reads by key (operation and resource), shared by the steps
    /// and targets of one plan: nothing changes while a plan is made, so a
    /// second read would only spend quota.
    /// One cell per key, so that targets planning at the same moment wait
    /// for the one read in flight instead of each making it.
    planned: Mutex<HashMap<String, Arc<SharedRead>>>,
    slots: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// Every version in the region, when reading them all costs fewer
    /// calls than one listing per target (`versions`); `None` once that
    /// was found not to pay or could not be read.
    versions: Arc<OnceCell<Option<Arc<VersionIndex>>>>,
    /// Whether the first target started the planning index's read.
    versions_loading: std::sync::atomic::AtomicBool,
    /// The same, read again for verification, after every change.
    verified_versions: OnceCell<Option<Arc<VersionIndex>>>,
    /// How many targets the run has, once they are known.
    targets: std::sync::OnceLock<usize>,
    /// Changes this run made, or found made, to shared state (`settle`).
    settled: Mutex<std::collections::HashSet<String>>,
    /// One lock per resource being changed (`exclusive`).
    changing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Reads baselines for `lambda.indicators` (`baseline_store`): the
    /// baseline module sits above this layer, so the engine hands its
    /// reader in (`indicators::drift` says why).
    baselines: Option<Arc<dyn BaselineReader>>,
}

impl fmt::Debug for RunContext {
    // Slots may hold secret values: only their number is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = self.slots.lock().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("RunContext")
            .field("functions_read", &self.functions.initialized())
            .field("slots", &slots)
            .finish()
    }
}

impl RunContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// This run reads baselines with `reader`.
    pub fn with_baselines(mut self, reader: Arc<dyn BaselineReader>) -> Self {
        self.baselines = Some(reader);
        self
    }

    /// The run's baseline reader, when its entry point gave one.
    pub fn baselines(&self) -> Option<&Arc<dyn BaselineReader>> {
        self.baselines.as_ref()
    }

    /// The slot of type `T` for this run, created empty on first use.
    pub fn slot<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        // A poisoned lock only means a thread panicked while inserting; the
        // map itself is intact.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let any = slots
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()) as Arc<dyn Any + Send + Sync>)
            .clone();
        // The map is keyed by the type id, so the downcast cannot fail; an
        // empty slot is the safe answer if it ever did.
        any.downcast::<T>().unwrap_or_default()
    }

    /// A read made while planning, shared with every other planning read of
    /// the same `key` in this run (e.g. describe and set_concurrency both
    /// read a function's concurrency). With `fresh` (the re-read before a
    /// write, verification, recovery) AWS is always read, and the answer
    /// replaces the shared one. Failures are never kept.
    pub async fn planned_read<T, F>(
        &self,
        fresh: bool,
        key: String,
        fetch: F,
    ) -> Result<T, ActionError>
    where
        T: Clone + Send + Sync + 'static,
        F: std::future::Future<Output = Result<T, ActionError>>,
    {
        let cell = {
            let mut memo = self.planned.lock().unwrap_or_else(|e| e.into_inner());
            if fresh {
                // A fresh answer replaces the shared one for later planning.
                let cell = Arc::new(OnceCell::new());
                memo.insert(key, cell.clone());
                cell
            } else {
                memo.entry(key).or_default().clone()
            }
        };
        let value = cell
            .get_or_try_init(|| async {
                let v = fetch.await?;
                Ok::<_, ActionError>(Arc::new(v) as Arc<dyn Any + Send + Sync>)
            })
            .await?
            .clone();
        // The key names what is read, so the type always matches; a
        // mismatch would be a bug in a caller sharing a key across types.
        value.downcast::<T>().map(|v| T::clone(&v)).map_err(|_| {
            ActionError::input(
                "a shared planning read had an unexpected type",
                "report this as a bug in firebreak",
            )
        })
    }

    /// The run has `n` targets (set once, when they are chosen).
    pub fn set_targets(&self, n: usize) {
        let _ = self.targets.set(n);
    }

    /// How many targets the run has (0 until they are chosen).
    pub fn targets(&self) -> usize {
        self.targets.get().copied().unwrap_or(0)
    }

    /// Every function's versions, read once for the run (ListFunctions,
    /// every version) when the run has more than one target and the pages
    /// number no more than the targets: past that, one ListVersionsByFunction
    /// a target is cheaper, and `None` says to use it (the pages already
    /// read are the price of finding out, at most one a target). A failed
    /// read is `None` too: each target then lists its own.
    ///
    /// While planning, the first target does not wait for the pages: it
    /// starts their read in a task of its own and lists its own versions
    /// (one call), so that its containment, and with it the deny on a
    /// role every target shares, does not wait twenty pages for a
    /// thousand functions (harm stopped under a second at any N). The
    /// other targets wait for the pages, which the bucket serves before
    /// every target's reads. `verifying`: a second index, read when
    /// verification first asks, after every change of the run, and shared
    /// by every target's checks (waited for: nothing is in a hurry then).
    pub async fn versions(&self, aws: &Aws, verifying: bool) -> Option<Arc<VersionIndex>> {
        let budget = self.targets();
        if budget < 2 {
            return None;
        }
        if verifying {
            return self
                .verified_versions
                .get_or_init(|| read_versions(aws.clone(), budget))
                .await
                .clone();
        }
        if let Some(index) = self.versions.get() {
            return index.clone();
        }
        if crate::aws::call_path::current_target() != 0 {
            return self
                .versions
                .get_or_init(|| read_versions(aws.clone(), budget))
                .await
                .clone();
        }
        if !self
            .versions_loading
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let (cell, aws) = (self.versions.clone(), aws.clone());
            // Outside any target's scope: the bucket serves it before
            // every target's reads, since every target's plan needs it.
            tokio::spawn(async move {
                cell.get_or_init(|| read_versions(aws, budget)).await;
            });
        }
        None
    }

    fn intent(c: &Change) -> String {
        serde_json::json!([c.target, c.attribute, c.after]).to_string()
    }

    /// `c` is in effect: this run made it, or re-read it in place.
    pub fn settle(&self, c: &Change) {
        let mut s = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        s.insert(Self::intent(c));
    }

    /// Whether this run already made `c` (same resource, attribute and
    /// end state) for another target: the hundredth target on a shared
    /// role then need not read the role a hundredth time before finding
    /// the deny in place. Verification still reads it.
    pub fn is_settled(&self, c: &Change) -> bool {
        let s = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        s.contains(&Self::intent(c))
    }

    /// Waits until no other target of this run is changing `resource`,
    /// and keeps it until the guard is dropped. Targets that share a
    /// resource (a role) then change it one after another, each re-reading
    /// it first: the first puts the deny on, the others find it in place,
    /// rather than all of them reading "no deny" at once and each putting
    /// it on (and detaching what the first already detached).
    pub async fn exclusive(&self, resource: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.changing.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(resource.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Every function in the region (ListFunctions, every page), read the
    /// first time any target asks and shared by all of them.
    pub async fn functions(&self, aws: &Aws) -> Result<Arc<FunctionInventory>, ActionError> {
        self.functions
            .get_or_try_init(|| list_functions(aws.clone()))
            .await
            .cloned()
    }

    /// What this run's listing of the region said of function `name`: the
    /// whole listing once read, else the pages a streamed selection has
    /// received (`listed_pages`); `None` when no page named it.
    pub fn listed_function(&self, name: &str) -> Option<FunctionSummary> {
        if let Some(all) = self.functions.get() {
            return all
                .functions
                .binary_search_by(|f| f.name.as_str().cmp(name))
                .ok()
                .map(|i| all.functions[i].clone());
        }
        self.listed_pages().get(name)
    }

    /// Where a streamed selection keeps the pages it hands out.
    pub fn listed_pages(&self) -> Arc<ListedPages> {
        self.slot::<ListedPages>()
    }

    /// Whether the region's functions were read already.
    pub fn functions_listed(&self) -> bool {
        self.functions.initialized()
    }

    /// Until `contained`: an observation whose plan does not depend on
    /// the blast radius (a role quarantine whose `scope` was chosen) goes
    /// on without the region's listing (`functions_unless_deferred`),
    /// unless the listing was already read (to choose the targets). Only
    /// `run --yes` sets it: no human reads that plan before it is applied,
    /// and the deny on a role a thousand functions share then waits for no
    /// listing of them (issue 15). Decided once, so that named targets are
    /// all planned alike; a streamed selection's observations use the
    /// listing once it is read (`stream_functions`).
    pub fn defer_listing(&self) {
        if self.functions.get().is_none() {
            self.defer_listing
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Every target's harm-stopping steps ran: from now on the listing is
    /// waited for, and the roles whose blast radius was deferred are
    /// returned (step id, role ARN), to be named now.
    pub fn contained(&self) -> Vec<(String, String)> {
        self.defer_listing
            .store(false, std::sync::atomic::Ordering::Release);
        let mut d = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *d)
    }

    /// The region's functions, read now if they have to be; `None` while
    /// the run defers the listing (`defer_listing`), which is then started
    /// in a task of its own so that it is ready when the blast radius is
    /// named.
    pub async fn functions_unless_deferred(
        &self,
        aws: &Aws,
    ) -> Result<Option<Arc<FunctionInventory>>, ActionError> {
        // A streamed selection's listing is used once read: an observation
        // without it cannot tell a role only its function uses, and is read
        // again before its change (four IAM calls a role, for every target
        // of a fleet with a role each). Named targets are all planned alike.
        if self.streamed.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(listed) = self.functions.get() {
                return Ok(Some(listed.clone()));
            }
        }
        if !self
            .defer_listing
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return self.functions(aws).await.map(Some);
        }
        if !self
            .listing_started
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let (cell, aws) = (self.functions.clone(), aws.clone());
            // A failed page is not kept: whoever waits for the listing
            // next reads it again, and reports the failure.
            tokio::spawn(async move {
                let _ = cell.get_or_try_init(|| list_functions(aws)).await;
            });
        }
        Ok(None)
    }

    /// The region's functions page by page, as ListFunctions answers
    /// them, so that a run can start on the first page's matches while the
    /// rest is read. The listing is the run's one listing: kept when the
    /// last page is read (`functions` then waits for nothing), and already
    /// read or being read, it is handed over whole as one page.
    pub fn stream_functions(&self, aws: &Aws) -> FunctionPages {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.listing_started
            .store(true, std::sync::atomic::Ordering::Release);
        self.streamed
            .store(true, std::sync::atomic::Ordering::Release);
        let (cell, aws) = (self.functions.clone(), aws.clone());
        tokio::spawn(async move {
            // Whether this task read the pages (and sent them), or found
            // the listing read by someone else.
            let mut paged = false;
            let read = cell
                .get_or_try_init(|| {
                    paged = true;
                    // Each page starts its targets' harm-stopping steps.
                    crate::aws::call_path::feeding_changes(list_functions_paged(aws, Some(&tx)))
                })
                .await;
            match read {
                Ok(all) if !paged => {
                    let _ = tx.send(Ok(all.functions.clone()));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        });
        rx
    }

    /// Step `step` observed role `role` without its blast radius
    /// (`functions_unless_deferred` said `None`).
    pub fn blast_radius_deferred(&self, step: &str, role: &str) {
        let mut d = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        let entry = (step.to_string(), role.to_string());
        if !d.contains(&entry) {
            d.push(entry);
        }
    }
}

/// ListFunctions, every page, sorted by name.
async fn list_functions(aws: Aws) -> Result<Arc<FunctionInventory>, ActionError> {
    list_functions_paged(aws, None).await
}

/// `list_functions`, handing each page to `pages` as it is read.
async fn list_functions_paged(
    aws: Aws,
    pages_to: Option<&FunctionPageSender>,
) -> Result<Arc<FunctionInventory>, ActionError> {
    let mut functions = Vec::new();
    let mut pages = aws.lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| classify("ListFunctions", "lambda:ListFunctions", "functions", e))?;
        let read: Vec<FunctionSummary> = page
            .functions()
            .iter()
            .filter_map(|f| {
                Some(FunctionSummary {
                    name: f.function_name()?.to_string(),
                    arn: f.function_arn()?.to_string(),
                    role: f.role().map(str::to_string),
                    last_modified: f.last_modified().map(str::to_string),
                    code_sha256: f.code_sha256().map(str::to_string),
                })
            })
            .collect();
        if let Some(to) = pages_to {
            // A receiver gone only means nobody wants the pages any more;
            // the listing is still kept for the run.
            let _ = to.send(Ok(read.clone()));
        }
        functions.extend(read);
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Arc::new(FunctionInventory { functions }))
}

type FunctionPageSender =
    tokio::sync::mpsc::UnboundedSender<Result<Vec<FunctionSummary>, ActionError>>;

/// The region's functions page by page (`RunContext::stream_functions`);
/// closed after the last page or after the one failure.
pub type FunctionPages =
    tokio::sync::mpsc::UnboundedReceiver<Result<Vec<FunctionSummary>, ActionError>>;

/// A slot of byte buffers by key: what an action observed, kept for its
/// apply so that what is written is exactly what was read.
#[derive(Default)]
pub struct Remembered {
    bytes: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl Remembered {
    /// Keeps `bytes` under `key` unless the run already holds some: the
    /// first reading stands.
    pub fn put_first(&self, key: &str, bytes: Vec<u8>) {
        let mut m = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_insert_with(|| Arc::new(bytes));
    }

    pub fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let m = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key).cloned()
    }

    /// Drops what has been written for good (the run keeps going; memory
    /// should not hold what the bucket now has).
    pub fn forget(&self, key: &str) {
        let mut m = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(Mutex<u32>);

    #[test]
    fn a_slot_is_shared_within_a_run_and_gone_with_it() {
        let run = RunContext::new();
        *run.slot::<Counter>().0.lock().unwrap() += 1;
        *run.slot::<Counter>().0.lock().unwrap() += 1;
        assert_eq!(*run.slot::<Counter>().0.lock().unwrap(), 2);
        let next = RunContext::new();
        assert_eq!(*next.slot::<Counter>().0.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn planning_reads_are_shared_and_fresh_reads_are_not() {
        let run = RunContext::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let read = |fresh: bool| {
            run.planned_read(fresh, "GetFunctionConcurrency f".into(), async {
                Ok::<u32, ActionError>(calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
            })
        };
        assert_eq!(read(false).await.unwrap(), 0);
        assert_eq!(read(false).await.unwrap(), 0, "shared while planning");
        assert_eq!(read(true).await.unwrap(), 1, "a fresh read goes to AWS");
        assert_eq!(read(false).await.unwrap(), 1, "and replaces the shared one");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn deferred_roles_are_named_once_each_when_contained() {
        let run = RunContext::new();
        run.defer_listing();
        assert!(run.defer_listing.load(std::sync::atomic::Ordering::Acquire));
        run.blast_radius_deferred("quarantine-role", "arn:role/a");
        run.blast_radius_deferred("quarantine-role", "arn:role/a");
        run.blast_radius_deferred("quarantine-role", "arn:role/b");
        assert_eq!(
            run.contained(),
            [
                ("quarantine-role".to_string(), "arn:role/a".to_string()),
                ("quarantine-role".to_string(), "arn:role/b".to_string())
            ]
        );
        assert!(!run.defer_listing.load(std::sync::atomic::Ordering::Acquire));
        assert!(run.contained().is_empty(), "named once");
    }

    #[test]
    fn a_run_whose_functions_are_listed_does_not_defer_them() {
        let run = RunContext::new();
        let _ = run.functions.set(Arc::new(FunctionInventory::default()));
        run.defer_listing();
        assert!(!run.defer_listing.load(std::sync::atomic::Ordering::Acquire));
    }

    #[test]
    fn debug_never_shows_slot_contents() {
        let run = RunContext::new();
        run.slot::<Remembered>().put_first("k", b"hunter2".to_vec());
        let shown = format!("{run:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    /// Evidence writes the plan's reading, not apply's, which comes after
    /// the run's own changes; once written and forgotten, a new reading
    /// is kept.
    #[test]
    fn the_first_reading_is_kept_until_forgotten() {
        let kept = Remembered::default();
        kept.put_first("k", b"before".to_vec());
        kept.put_first("k", b"after".to_vec());
        assert_eq!(
            kept.get("k").as_deref().map(Vec::as_slice),
            Some(&b"before"[..])
        );
        kept.forget("k");
        kept.put_first("k", b"later".to_vec());
        assert_eq!(
            kept.get("k").as_deref().map(Vec::as_slice),
            Some(&b"later"[..])
        );
    }

    #[test]
    fn blast_radius_is_every_function_on_the_role() {
        let inv = FunctionInventory {
            functions: vec![
                FunctionSummary {
                    name: "b".into(),
                    arn: "arn:b".into(),
                    role: Some("r1".into()),
                    last_modified: None,
                    code_sha256: None,
                },
                FunctionSummary {
                    name: "a".into(),
                    arn: "arn:a".into(),
                    role: Some("r1".into()),
                    last_modified: None,
                    code_sha256: None,
                },
                FunctionSummary {
                    name: "c".into(),
                    arn: "arn:c".into(),
                    role: Some("r2".into()),
                    last_modified: None,
                    code_sha256: None,
                },
            ],
        };
        assert_eq!(inv.using_role("r1"), vec!["arn:a", "arn:b"]);
        assert!(inv.using_role("r3").is_empty());
    }

    #[test]
    fn a_page_of_every_version_is_kept_by_function() {
        let arn = "arn:aws:lambda:us-east-1:111122223333:function:demo";
        let entry = |version: &str, sha: &str| {
            FunctionConfiguration::builder()
                .function_name("demo")
                .function_arn(format!("{arn}:{version}"))
                .version(version)
                .role("arn:aws:iam::111122223333:role/r")
                .code_sha256(sha)
                .build()
        };
        let mut index = VersionIndex::default();
        for f in [
            entry("$LATEST", "new"),
            entry("1", "old"),
            entry("2", "new"),
        ] {
            index.add(&f);
        }
        assert_eq!(index.by_function.len(), 1, "keyed by the unqualified ARN");
        let versions: Vec<(&str, &str)> = index.by_function[arn]
            .iter()
            .map(|v| (v.version.as_str(), v.code_sha256.as_str()))
            .collect();
        assert_eq!(versions, [("$LATEST", "new"), ("1", "old"), ("2", "new")]);
        assert_eq!(index.by_function[arn][1].arn, format!("{arn}:1"));
        assert_eq!(
            unqualified(arn, "$LATEST"),
            arn,
            "an unqualified ARN as it is"
        );
    }
}
