mod artifacts;
mod health;
mod inventory;
mod lab;
mod transport;

fn main() {}
