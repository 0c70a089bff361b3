#!/usr/bin/env python3
"""What `make demo` does as the tenant's *other* administrators, and how it reads the tenant back.

- `summary UPN...`: each account as the tenant has it (enabled, cloud-only, its directory
  roles), then every conditional-access policy with whether it excludes all of the accounts;
- `new-policy NAME`: creates an enabled policy requiring MFA for all users, the way a colleague
  would next month, without knowing about the emergency accounts;
- `plan-changes`: reads `terraform show -json PLAN` on stdin and prints each change to a managed
  object (a `check` block's data source is read on every plan; those reads are not changes).

Standard library only; it signs in with the same client credentials the provider uses (ARM_*),
at the endpoint in BREAKGLASS_GRAPH_ENDPOINT / BREAKGLASS_LOGIN_ENDPOINT.
"""

import argparse
import json
import os
import sys
import urllib.parse

from tenant_session import Session


def session():
    login = os.environ["BREAKGLASS_LOGIN_ENDPOINT"]
    graph = os.environ.get("BREAKGLASS_GRAPH_ENDPOINT", login)
    if login.rstrip("/") != graph.rstrip("/"):
        sys.exit("demo-admin: the login and Graph endpoints must be the same emulated tenant")
    return Session(login, os.environ["ARM_TENANT_ID"], os.environ["ARM_CLIENT_ID"],
                   os.environ["ARM_CLIENT_SECRET"])


def quoted(value):
    return "'" + value.replace("'", "''") + "'"


def summary(s, upns):
    ids = []
    print("Emergency accounts:")
    for upn in upns:
        found = s.graph("GET", "/users?$filter=" + urllib.parse.quote(
            f"userPrincipalName eq {quoted(upn)}") +
            "&$select=id,userPrincipalName,accountEnabled,onPremisesSyncEnabled")["value"]
        if not found:
            print(f"  {upn}: MISSING")
            continue
        user = found[0]
        ids.append(user["id"])
        roles = s.graph("GET", "/roleManagement/directory/roleAssignments?$filter=" +
                        urllib.parse.quote(f"principalId eq {quoted(user['id'])}"))["value"]
        names = []
        for r in roles:
            definition = s.graph("GET", "/roleManagement/directory/roleDefinitions/" +
                                 r["roleDefinitionId"])
            names.append(definition.get("displayName", r["roleDefinitionId"]))
        cloud = "synced from on-premises" if user.get("onPremisesSyncEnabled") else "cloud-only"
        state = "enabled" if user.get("accountEnabled") else "DISABLED"
        print(f"  {user['userPrincipalName']}  {user['id']}  {state}, {cloud}, "
              f"roles: {', '.join(names) or 'none'}")
    print()
    print("Conditional-access policies:")
    for p in s.graph("GET", "/identity/conditionalAccess/policies")["value"]:
        users = (p.get("conditions") or {}).get("users") or {}
        excluded = set(users.get("excludeUsers") or [])
        if not users:
            mark = "n/a (targets workload identities)"
        elif ids and all(i in excluded for i in ids):
            mark = "excludes the accounts"
        else:
            mark = "DOES NOT exclude the accounts"
        others = len(excluded - set(ids))
        extra = f", plus {others} other exclusion(s) kept" if others else ""
        print(f"  [{p.get('state')}] {p.get('displayName')}: {mark}{extra}")


def new_policy(s, name):
    policy = s.graph("POST", "/identity/conditionalAccess/policies", {
        "displayName": name,
        "state": "enabled",
        "conditions": {
            "clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {"includeUsers": ["All"]},
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    })
    print(f"another administrator created the policy {name!r} ({policy['id']})")


def plan_changes(plan):
    for change in plan.get("resource_changes") or []:
        actions = change["change"]["actions"]
        if actions == ["no-op"]:
            continue
        if actions == ["read"] and change.get("action_reason") == "read_because_check_nested":
            continue
        print(f"{change['address']}: {'/'.join(actions)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("summary").add_argument("upns", nargs="+")
    sub.add_parser("new-policy").add_argument("name")
    sub.add_parser("plan-changes")
    a = ap.parse_args()
    if a.command == "plan-changes":
        plan_changes(json.load(sys.stdin))
        return
    s = session()
    if a.command == "summary":
        summary(s, a.upns)
    else:
        new_policy(s, a.name)


if __name__ == "__main__":
    main()
