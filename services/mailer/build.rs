//! Rebuild when a migration or a template changes, so both are embedded afresh.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
}
