//! `switcher`: placeholder until the switcher issue lands.

fn main() {}
