//! Rebuild when a migration, template or stylesheet changes.

fn main() {
    for dir in ["migrations", "templates", "static"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
