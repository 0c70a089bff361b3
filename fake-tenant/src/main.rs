fn main() {
    eprintln!("breakglass-fake-tenant: not yet implemented");
    std::process::exit(1);
}
