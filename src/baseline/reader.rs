//! The baseline reader `lambda.indicators` is given through the run
//! (`action::lambda::indicators::drift::BaselineReader`): the newest
//! baseline of a function taken before the incident started, against a
//! fresh capture. Read-only, like the capture itself.

use async_trait::async_trait;

use super::capture::{capture, Scope};
use super::{drift, BaselineError, BaselineStore};
use crate::action::lambda::indicators::drift::{BaselineDrift, BaselineReader};
use crate::action::ActionError;
use crate::aws::Aws;

/// Reads from the store the step names.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreReader;

fn action_err(e: BaselineError) -> ActionError {
    match e {
        BaselineError::Aws(a) => ActionError::Aws(a),
        other => ActionError::input(other.to_string(), other.hint().to_string()),
    }
}

#[async_trait]
impl BaselineReader for StoreReader {
    async fn read(
        &self,
        aws: &Aws,
        account: &str,
        store: &str,
        function: &str,
        before: &str,
    ) -> Result<Option<BaselineDrift>, ActionError> {
        let store = BaselineStore::parse(store).map_err(action_err)?;
        let Some(b) = store
            .newest_before(aws, account, &aws.region, function, before)
            .await
            .map_err(action_err)?
        else {
            return Ok(None);
        };
        // Looked up after the baseline is found: a directory without one
        // must not get a fresh key file from a read-only identify step.
        let key = store.env_key().map_err(action_err)?;
        if b.env_key_id != key.id() {
            return Err(ActionError::input(
                format!(
                    "the baseline of `{function}` taken at {} was hashed with another key ({}) than this store's ({})",
                    b.taken_at,
                    b.env_key_id,
                    key.id()
                ),
                "set FIREBREAK_BASELINE_KEY to the key used when the baseline was taken (or use the store's baseline.key)",
            ));
        }
        let scope = Scope {
            deploy_users: b.deploy_users.keys().cloned().collect(),
        };
        let now = capture(aws, account, &b.function, &key, &scope)
            .await
            .map_err(action_err)?;
        Ok(Some(BaselineDrift {
            taken_at: b.taken_at.clone(),
            store: store.to_string(),
            deploy_users: b.deploy_users.keys().cloned().collect(),
            drift: drift(&b, &now),
        }))
    }
}
