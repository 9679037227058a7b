//! Asking before destroying data.

use std::io::{BufRead, IsTerminal, Write};

use crate::Failure;

/// Proceeds if `yes`, or if the user answers `y` at a terminal; refuses otherwise.
pub fn confirm(question: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Refused(format!(
            "{question} Not confirmed: pass --yes to run without a terminal"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::Failed(e.into()))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::Refused("not confirmed; nothing was changed".into()))
    }
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
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Refused(format!(
            "{question} Not confirmed: pass --confirm {name} to run without a terminal"
        )));
    }
    eprint!("{question}\nType the destination's name ({name}) to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::Failed(e.into()))?;
    if answer.trim() == name {
        Ok(())
    } else {
        Err(Failure::Refused("not confirmed; nothing was changed".into()))
    }
}
