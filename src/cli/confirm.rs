//! The one confirmation prompt (`run`, `recover`): only a typed `yes` goes
//! on; without a terminal nothing is asked and nothing is changed.

use std::io::{BufRead, IsTerminal, Write};

use super::{CliError, ErrorClass};

/// Asks `question` on stderr. `what` names the work for the refusal
/// without a terminal ("3 change(s)"), `unattended` is the hint then.
pub fn confirm(question: &str, what: &str, unattended: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            ErrorClass::Refused,
            format!(
                "{what} need confirmation, but there is no terminal to ask; nothing was changed"
            ),
            unattended,
        ));
    }
    eprint!("{question} Type `yes` to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::new(
            ErrorClass::Refused,
            "not confirmed; nothing was changed",
            "type `yes` at the prompt, or pass --yes",
        ))
    }
}
