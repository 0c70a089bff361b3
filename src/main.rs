fn main() {
    eprintln!("terraform-provider-breakglass: not yet implemented");
    std::process::exit(1);
}
