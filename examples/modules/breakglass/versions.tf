terraform {
  # No `check` block in the module itself, so it also runs on Terraform 1.0; the calling root
  # module adds one (Terraform 1.5 or later), as examples/quickstart does.
  required_version = ">= 1.0"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}
