# Who hears about it when a break-glass account signs in: the security operations centre by
# e-mail and the on-call phone by SMS. Azure Monitor texts a number at most once every five
# minutes and mails an address at most 100 times an hour, so two accounts signing in within
# the same five minutes send two e-mails and one SMS.
#
# The subscription is the provider's `subscription_id` (or ARM_SUBSCRIPTION_ID).

terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {
  subscription_id = "eeb0c733-9a1c-437b-b310-e18599b1b281"
}

resource "breakglass_action_group" "oncall" {
  resource_group_name = "rg-breakglass-monitoring"
  name                = "ag-breakglass"
  short_name          = "bg-alert" # at most 12 characters; prefixes every SMS and subject

  email_receivers {
    name          = "soc"
    email_address = "soc@contoso.com"
  }

  email_receivers {
    name                    = "ciso"
    email_address           = "ciso@contoso.com"
    use_common_alert_schema = false
  }

  sms_receivers {
    name         = "oncall"
    country_code = "31"        # digits only, no "+"
    phone_number = "612345678" # digits only, without the country code
  }

  tags = {
    purpose = "break-glass monitoring"
  }
}

output "action_group_id" {
  description = "Feed this into breakglass_signin_alert.action_group_ids."
  value       = breakglass_action_group.oncall.id
}
