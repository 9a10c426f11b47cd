// `sqlx::migrate!` embeds migrations/ at compile time: rebuild this crate when a migration is
// added or changed, or a binary built before would run without it.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
