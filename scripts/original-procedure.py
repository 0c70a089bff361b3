#!/usr/bin/env python3
"""The hand-run break-glass procedure this provider replaces, as its PowerShell does it.

The script the mission describes signs in with a client secret, creates the account with a
password it keeps in a variable, assigns Global Administrator permanently through a PIM
schedule request, then walks every conditional-access policy and *sets* its excluded users to
the new account (dropping everyone else's exclusions), turns on the Entra diagnostic setting for
`SignInLogs` only, creates an action group, and creates an alert whose query compares the UPN
case-sensitively (`==`). One request at a time, no retries, no reads back.

It is replayed here, with the Python standard library only, against the emulated tenant:

- `make`-free fixture generation: `--dump FILE` writes the tenant as a seed afterwards
  (fake-tenant/seeds/script-made.json is made this way);
- the benchmark replays it with latency added, as the baseline a user knows (`make bench`).

Usage: original-procedure.py --url URL --tenant-id ID --client-id ID --client-secret SECRET
       [--upn bkr-admin01@contoso.onmicrosoft.com] [--dump FILE] [--requests]
       [--same-work]

`--same-work` (for the benchmark's second reference) does what the provider's quickstart does,
still one request after another: two accounts (the UPN with `01` and `02`), each waited for
until PIM reports its Global Administrator assignment `Provisioned` (read every half second,
as the provider does), and the exclusion added to every policy's list rather than replacing it.
"""

import argparse
import json
import time
import urllib.request

from tenant_session import Session

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
SUBSCRIPTION = "eeb0c733-9a1c-437b-b310-e18599b1b281"
RESOURCE_GROUP = "rg-breakglass-monitoring"
WORKSPACE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    "/providers/Microsoft.OperationalInsights/workspaces/law-breakglass"
)


def wait_provisioned(s, request_id):
    """Reads the PIM request until it is no longer pending (every half second)."""
    while True:
        answer = s.graph("GET", f"/roleManagement/directory/roleAssignmentScheduleRequests/{request_id}")
        if answer.get("status") not in ("PendingProvisioning", "Granted", "PendingScheduleCreation"):
            return answer
        time.sleep(0.5)


def same_work(s, upn):
    """The quickstart's job, sequentially: two accounts, their roles in force, added exclusions."""
    local, domain = upn.split("@")
    ids = []
    for n in ("01", "02"):
        name = f"{local.rstrip('0123456789')}{n}@{domain}"
        user = s.graph("POST", "/users", {
            "accountEnabled": True, "displayName": f"Break Glass Admin {n}",
            "mailNickname": name.split("@")[0], "userPrincipalName": name,
            "passwordProfile": {"password": "Bkr!" + "x7Q2" * 8,
                                "forceChangePasswordNextSignIn": False},
        })
        request = s.graph("POST", "/roleManagement/directory/roleAssignmentScheduleRequests", {
            "action": "adminAssign", "justification": "Break glass account",
            "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/",
            "principalId": user["id"],
            "scheduleInfo": {"startDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             "expiration": {"type": "noExpiration"}},
        })
        wait_provisioned(s, request["id"])
        ids.append(user["id"])
    for p in s.graph("GET", "/identity/conditionalAccess/policies")["value"]:
        users = (p.get("conditions") or {}).get("users")
        if p.get("state") == "disabled" or not users:
            continue
        users["excludeUsers"] = (users.get("excludeUsers") or []) + ids
        s.graph("PATCH", f"/identity/conditionalAccess/policies/{p['id']}",
                {"conditions": {"users": users}})
    return ids[0]


def procedure(s, upn, settle):
    alias = upn.split("@")[0]
    # The password sits in a variable, as in the script.
    password = "Bkr!" + "x7Q2" * 8
    user = s.graph("POST", "/users", {
        "accountEnabled": True,
        "displayName": "Break Glass Admin 01",
        "mailNickname": alias,
        "userPrincipalName": upn,
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False},
    })
    user_id = user["id"]
    # Replication: the script simply waits (`--settle`; 0 against a tenant without lag).
    time.sleep(settle)
    s.graph("POST", "/roleManagement/directory/roleAssignmentScheduleRequests", {
        "action": "adminAssign",
        "justification": "Break glass account",
        "roleDefinitionId": GLOBAL_ADMINISTRATOR,
        "directoryScopeId": "/",
        "principalId": user_id,
        "scheduleInfo": {"startDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "expiration": {"type": "noExpiration"}},
    })
    policies = s.graph("GET", "/identity/conditionalAccess/policies")["value"]
    for p in policies:
        if p.get("state") == "disabled":
            continue
        users = p["conditions"].get("users")
        if not users:
            continue  # workload-identity policies target service principals only
        # The script's bug: it sets the list instead of adding to it.
        users["excludeUsers"] = [user_id]
        s.graph("PATCH", f"/identity/conditionalAccess/policies/{p['id']}",
                {"conditions": {"users": users}})
    monitoring(s, upn)
    return user_id


def monitoring(s, upn):
    """The diagnostic setting, the action group and the alert, as the script writes them."""
    s.arm("PUT", "/providers/microsoft.aadiam/diagnosticSettings/EntraSignInLogs", {
        "properties": {
            "workspaceId": WORKSPACE,
            "logs": [{"category": "SignInLogs", "enabled": True,
                      "retentionPolicy": {"enabled": False, "days": 0}}],
        },
    }, "2017-04-01")
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/microsoft.insights/actionGroups/ag-breakglass"
    s.arm("PUT", group, {
        "location": "Global",
        "properties": {
            "groupShortName": "breakglass",
            "enabled": True,
            "emailReceivers": [{"name": "secops", "emailAddress": "secops@contoso.com",
                                "useCommonAlertSchema": True}],
            "smsReceivers": [{"name": "oncall", "countryCode": "1", "phoneNumber": "4255550100"}],
        },
    }, "2023-01-01")
    rule = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Insights/scheduledQueryRules/alert-breakglass-signin"
    s.arm("PUT", rule, {
        "location": "westeurope",
        "properties": {
            "displayName": "Break glass sign-in",
            "severity": 0,
            "enabled": True,
            "evaluationFrequency": "PT5M",
            "windowSize": "PT5M",
            "scopes": [WORKSPACE],
            # Case-sensitive, and no skipQueryValidation: on a workspace without SigninLogs
            # the service refuses it, which the script's authors met and worked around by
            # creating the rule later (here the workspace already has the table).
            "criteria": {"allOf": [{
                "query": f'SigninLogs | where UserPrincipalName == "{upn}"',
                "timeAggregation": "Count",
                "operator": "GreaterThan",
                "threshold": 0,
                "failingPeriods": {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1},
            }]},
            "actions": {"actionGroups": [group]},
            "skipQueryValidation": True,
        },
    }, "2021-08-01")


def merge_patch(before, after):
    """The RFC 7396 merge patch that turns `before` into `after` (arrays are replaced whole)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return after
    patch = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_patch(before[key], value)
    return patch


def state(s):
    with urllib.request.urlopen(s.url + "/_fake/state", timeout=60) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--tenant-id", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--upn", default="bkr-admin01@contoso.onmicrosoft.com")
    ap.add_argument("--settle", type=float, default=0, help="seconds to wait after creating the user")
    ap.add_argument("--dump", help="write the tenant afterwards as a seed extending `default` "
                    "(a merge patch over the tenant as it was before the procedure)")
    ap.add_argument("--requests", action="store_true", help="print the request count")
    ap.add_argument("--same-work", action="store_true",
                    help="two accounts, roles waited for, exclusions added (see above); then "
                    "the monitoring part as the script does it")
    a = ap.parse_args()
    s = Session(a.url, a.tenant_id, a.client_id, a.client_secret)
    before = state(s) if a.dump else None
    if a.same_work:
        user_id = same_work(s, a.upn)
        monitoring(s, a.upn)
    else:
        user_id = procedure(s, a.upn, a.settle)
    if a.requests:
        print(json.dumps({"user_id": user_id, "requests": s.count}))
    if a.dump:
        seed = {"extends": "default", **merge_patch(before, state(s))}
        with open(a.dump, "w") as f:
            json.dump(seed, f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
