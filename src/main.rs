//! The `periscope` command.

fn main() {
    println!("periscope");
}
