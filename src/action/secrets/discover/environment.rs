//! Environment variables whose value names a secret or a parameter (an
//! ARN, a name): the function reads it at run time, so it is readable and
//! must be assumed stolen. The value is looked at only to resolve the
//! reference; callers keep it in a `SecretValue`.

use super::found::Found;
use super::inventory::Inventory;
use crate::action::secrets::value::SecretValue;

/// Records what `var`'s value refers to; false when it names nothing
/// (then it may be a plaintext secret itself).
pub fn reference(inv: &Inventory, found: &mut Found, var: &str, value: &SecretValue) -> bool {
    let v = value.expose().trim();
    let from = format!("environment variable {var}");
    if let Some(arn) = inv.secret(v) {
        found.secret(arn, from);
        return true;
    }
    // The ARN of a secret ListSecrets does not show (scheduled for
    // deletion, or gone): kept, so that rotation reports it.
    if v.starts_with("arn:") && v.split(':').nth(2) == Some("secretsmanager") {
        found.secret(v, from);
        return true;
    }
    match inv.parameter(v) {
        Some((name, true)) => found.parameter(name, from),
        Some((name, false)) => found.plain_parameter(name, from),
        None => return false,
    }
    true
}
