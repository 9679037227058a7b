//! Auth's domain types: parsed once at the edge, so an invalid value cannot travel further.

mod email;
mod password;
mod secret_token;

pub use email::Email;
pub use password::{Password, PasswordError};
pub use secret_token::{Purpose, SecretToken, TokenHasher};
