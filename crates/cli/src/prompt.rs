//! Asking before destroying data.

use std::io::{BufRead, IsTerminal, Write};

use crate::Failure;

/// Proceeds if `yes`, or if the user answers `y` at a terminal; refuses otherwise.
pub fn confirm(question: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    ask(question, "pass --yes", &format!("{question} [y/N] "), |a| matches!(a, "y" | "Y" | "yes"))
}

/// Proceeds if `given` is `name`, or if the user types `name` at a terminal: what a command
/// that replaces a production destination's data asks for, so a muscle-memory `y` is not
/// enough.
pub fn type_name(question: &str, name: &str, given: Option<&str>) -> Result<(), Failure> {
    if let Some(given) = given {
        return if given == name {
            Ok(())
        } else {
            Err(Failure::Refused(format!("--confirm {given:?} is not {name:?}; nothing was changed")))
        };
    }
    let prompt = format!("{question}\nType the destination's name ({name}) to go on: ");
    ask(question, &format!("pass --confirm {name}"), &prompt, |a| a == name)
}

/// Shows `prompt` at a terminal and proceeds if the trimmed answer is `accepted`; without a
/// terminal, refuses with `question` and what to pass instead (`instead`).
fn ask(question: &str, instead: &str, prompt: &str, accepted: impl Fn(&str) -> bool) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Refused(format!(
            "{question} Not confirmed: {instead} to run without a terminal"
        )));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::Failed(e.into()))?;
    if accepted(answer.trim()) {
        Ok(())
    } else {
        Err(Failure::Refused("not confirmed; nothing was changed".into()))
    }
}
