// sqlx::migrate! embeds the SQL files at build time; rebuild when one is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=.");
}
