"""Microsoft's own Python SDKs against the emulated tenant, over TLS.

Run by tests/it/sdk_python.rs (part of `make test`) with the packages pinned in
requirements.txt on PYTHONPATH. It drives, through the official clients and as a user would,
every operation the provider relies on: sign-in with a client secret and with a certificate
(MSAL, azure-identity), users, authentication methods, groups, conditional-access policies,
PIM schedule requests and schedules, deleted items (msgraph-sdk, i.e. Kiota), subscriptions,
resource groups, Log Analytics workspaces and tables, action groups, scheduled query rules
(azure-mgmt-*), and Entra diagnostic settings (no SDK package covers microsoft.aadiam, so
through a management client's documented `send_request`, as `az rest` does).

Inputs (environment): BG_URL (the emulator's public https base URL), BG_TENANT_ID,
BG_CLIENT_ID, BG_CLIENT_SECRET, BG_SUBSCRIPTION_ID, BG_CA_FILE (the test CA the server
certificate chains to), BG_WORK_DIR (a scratch directory). Every check prints one `ok` line;
the first failure prints what was expected and exits non-zero.
"""

import asyncio
import base64
import datetime
import json
import os
import ssl
import sys
import traceback
import uuid

import httpx
import msal
import requests
from azure.core.rest import HttpRequest
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.mgmt.loganalytics import LogAnalyticsManagementClient
from azure.mgmt.loganalytics.models import Workspace, WorkspaceSku
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.models import (
    ActionGroupPatchBody,
    ActionGroupResource,
    Actions,
    Condition,
    EmailReceiver,
    ScheduledQueryRuleCriteria,
    ScheduledQueryRuleResource,
    ScheduledQueryRuleResourcePatch,
)
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import ResourceGroup, ResourceGroupPatchable
from azure.mgmt.resource.subscriptions import SubscriptionClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.conditional_access_condition_set import ConditionalAccessConditionSet
from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
from msgraph.generated.models.conditional_access_users import ConditionalAccessUsers
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.request_schedule import RequestSchedule
from msgraph.generated.models.unified_role_assignment_schedule_request import (
    UnifiedRoleAssignmentScheduleRequest,
)
from msgraph.generated.models.unified_role_schedule_request_actions import (
    UnifiedRoleScheduleRequestActions,
)
from msgraph.generated.models.user import User
from msgraph.generated.role_management.directory.role_assignment_schedules.role_assignment_schedules_request_builder import (
    RoleAssignmentSchedulesRequestBuilder as SchedulesRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

URL = os.environ["BG_URL"].rstrip("/")
TENANT = os.environ["BG_TENANT_ID"]
CLIENT = os.environ["BG_CLIENT_ID"]
SECRET = os.environ["BG_CLIENT_SECRET"]
SUBSCRIPTION = os.environ["BG_SUBSCRIPTION_ID"]
CA = os.environ["BG_CA_FILE"]
WORK = os.environ["BG_WORK_DIR"]
HOST = URL.split("://", 1)[1].split(":")[0]

GRAPH = "https://graph.microsoft.com/.default"
ARM = "https://management.azure.com/.default"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
CA_POLICY = "ca000000-0000-4000-8000-000000000001"  # CA001: Require MFA for all users
SEED_RG = "rg-breakglass-monitoring"
SEED_WORKSPACE = "law-breakglass"

CHECKS = 0


def check(name, condition, detail=""):
    global CHECKS
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    CHECKS += 1
    print(f"ok {CHECKS} - {name}", flush=True)


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def admin(method, path, body=None):
    """The emulator's test-only admin API (not part of any Microsoft service)."""
    response = requests.request(method, f"{URL}/_fake{path}", json=body, verify=CA, timeout=30)
    response.raise_for_status()
    return response


# --------------------------------------------------------------------------------------------
# Sign-in


def sign_in_with_msal():
    """MSAL itself: instance discovery at the emulator, then OIDC discovery, then the token."""
    session = requests.Session()
    session.verify = CA
    app = msal.ConfidentialClientApplication(
        CLIENT,
        client_credential=SECRET,
        authority=f"{URL}/{TENANT}",
        instance_discovery=f"{URL}/common/discovery/instance",
        http_client=session,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH])
    check("MSAL signs in with a secret after instance and OIDC discovery",
          "access_token" in result, json.dumps({k: v for k, v in result.items() if k != "access_token"}))
    check("the token endpoint MSAL used came from the discovery document",
          app.authority.token_endpoint == f"{URL}/{TENANT}/oauth2/v2.0/token", app.authority.token_endpoint)


def certificate_pem():
    """A fresh RSA key and self-signed certificate, registered on the app (admin API)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "breakglass-sdk-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    admin("POST", f"/auth/applications/{CLIENT}/certificates", {"pem": cert_pem})
    return cert_pem, key_pem


def sign_in_with_certificate(cert_pem, key_pem):
    # What MSAL Python actually sends: PS256 and a padded x5t#S256 (the header is read back
    # from the request MSAL made).
    seen = []
    session = requests.Session()
    session.verify = CA
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request.body))
    app = msal.ConfidentialClientApplication(
        CLIENT,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=f"{URL}/{TENANT}",
        instance_discovery=False,
        http_client=session,
    )
    result = app.acquire_token_for_client(scopes=[ARM])
    check("MSAL signs in with a certificate", "access_token" in result, str(result.get("error_description")))
    assertions = [
        dict(pair.split("=", 1) for pair in body.split("&"))["client_assertion"]
        for body in seen
        if isinstance(body, str) and "client_assertion=" in body
    ]
    header = json.loads(base64.urlsafe_b64decode(
        requests.utils.unquote(assertions[0]).split(".")[0] + "=="))
    check("MSAL's assertion is PS256 with a padded x5t#S256",
          header.get("alg") == "PS256" and header.get("x5t#S256", "").endswith("="), json.dumps(header))

    path = os.path.join(WORK, "client-certificate.pem")
    with open(path, "w") as f:
        f.write(key_pem + cert_pem)
    credential = CertificateCredential(
        TENANT, CLIENT, certificate_path=path, authority=URL,
        disable_instance_discovery=True, connection_verify=CA,
    )
    token = credential.get_token(ARM).token
    check("azure-identity CertificateCredential signs in (appidacr 2: certificate)",
          claims(token).get("appidacr") == "2", json.dumps(claims(token)))


def secret_credential():
    credential = ClientSecretCredential(
        TENANT, CLIENT, SECRET, authority=URL, disable_instance_discovery=True, connection_verify=CA,
    )
    token = credential.get_token(GRAPH).token
    check("azure-identity ClientSecretCredential signs in (appidacr 1: secret)",
          claims(token).get("appidacr") == "1", json.dumps(claims(token)))
    return credential


# --------------------------------------------------------------------------------------------
# Microsoft Graph (msgraph-sdk / Kiota)


def graph_client(credential):
    context = ssl.create_default_context(cafile=CA)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=context, timeout=30)
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH], allowed_hosts=[HOST])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{URL}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def graph_operations(graph):
    organization = await graph.organization.get()
    check("organization is this tenant", organization.value[0].id == TENANT, organization.value[0].id)

    suffix = uuid.uuid4().hex[:8]
    upn = f"bg-sdk-{suffix}@contoso.onmicrosoft.com"
    created = await graph.users.post(User(
        account_enabled=True,
        display_name=f"SDK emergency {suffix}",
        mail_nickname=f"bg-sdk-{suffix}",
        user_principal_name=upn,
        password_profile=PasswordProfile(
            password=f"Sdk-{uuid.uuid4().hex}-Aa1!", force_change_password_next_sign_in=False
        ),
    ))
    user_id = created.id
    check("users: create", bool(user_id) and created.user_principal_name == upn, str(created.user_principal_name))

    fetched = await graph.users.by_user_id(user_id).get()
    check("users: get by id", fetched.user_principal_name == upn, str(fetched.user_principal_name))
    by_upn = await graph.users.by_user_id(upn.upper()).get()
    check("users: get by UPN in another case", by_upn.id == user_id, str(by_upn.id))

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter=f"userPrincipalName eq '{upn}'", select=["id", "userPrincipalName", "accountEnabled"]
    )
    found = await graph.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    check("users: $filter and $select", [u.id for u in found.value] == [user_id], str([u.id for u in found.value]))

    page = await graph.users.get(request_configuration=RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=2)))
    next_link = page.odata_next_link
    check("users: paging links follow the public URL",
          bool(next_link) and next_link.startswith(f"{URL}/v1.0/users"), str(next_link))
    second = await graph.users.with_url(next_link).get()
    check("users: the nextLink is followed by the SDK", len(second.value) > 0, str(second.value))

    await graph.users.by_user_id(user_id).patch(User(display_name=f"SDK emergency {suffix} (renamed)"))
    renamed = await graph.users.by_user_id(user_id).get()
    check("users: patch", renamed.display_name.endswith("(renamed)"), str(renamed.display_name))

    methods = await graph.users.by_user_id(user_id).authentication.methods.get()
    check("authentication methods: the password method",
          any(m.odata_type == "#microsoft.graph.passwordAuthenticationMethod" for m in methods.value),
          str([m.odata_type for m in methods.value]))

    groups = await graph.groups.get()
    all_staff = next(g for g in groups.value if g.display_name == "All Staff")
    members = await graph.groups.by_group_id(all_staff.id).members.graph_user.get()
    check("groups: members cast to users (Kiota's /members/graph.user)",
          len(members.value) > 0 and all(m.odata_type == "#microsoft.graph.user" for m in members.value),
          str([m.odata_type for m in members.value]))

    # Conditional access: add the account to one policy's exclusions, keep everything else.
    policies = await graph.identity.conditional_access.policies.get()
    check("CA policies: list", any(p.id == CA_POLICY for p in policies.value), str(len(policies.value)))
    before = await graph.identity.conditional_access.policies.by_conditional_access_policy_id(CA_POLICY).get()
    excluded = list(before.conditions.users.exclude_users or [])
    await graph.identity.conditional_access.policies.by_conditional_access_policy_id(CA_POLICY).patch(
        ConditionalAccessPolicy(conditions=ConditionalAccessConditionSet(
            users=ConditionalAccessUsers(exclude_users=excluded + [user_id]))))
    after = await graph.identity.conditional_access.policies.by_conditional_access_policy_id(CA_POLICY).get()
    check("CA policies: patch adds the exclusion and keeps the rest",
          after.conditions.users.exclude_users == excluded + [user_id]
          and after.conditions.users.include_users == before.conditions.users.include_users
          and after.grant_controls.built_in_controls == before.grant_controls.built_in_controls,
          str(after.conditions.users.exclude_users))

    # PIM: a permanent active Global Administrator assignment, then its removal.
    admin("PUT", "/settings", {"pim.provisioning_delay_ms": 0})
    definition = await graph.role_management.directory.role_definitions.by_unified_role_definition_id(
        GLOBAL_ADMINISTRATOR).get()
    check("PIM: role definition", definition.display_name == "Global Administrator", str(definition.display_name))
    requests_api = graph.role_management.directory.role_assignment_schedule_requests
    request = await requests_api.post(UnifiedRoleAssignmentScheduleRequest(
        action=UnifiedRoleScheduleRequestActions.AdminAssign,
        principal_id=user_id,
        role_definition_id=GLOBAL_ADMINISTRATOR,
        directory_scope_id="/",
        justification="break-glass account (SDK test)",
        schedule_info=RequestSchedule(
            start_date_time=datetime.datetime.now(datetime.timezone.utc),
            expiration=ExpirationPattern(type=ExpirationPatternType.NoExpiration),
        ),
    ))
    check("PIM: schedule request created", request.status in ("PendingProvisioning", "Provisioned"), str(request.status))
    again = await requests_api.by_unified_role_assignment_schedule_request_id(request.id).get()
    check("PIM: schedule request provisioned", again.status == "Provisioned", str(again.status))
    schedules = await graph.role_management.directory.role_assignment_schedules.get(
        request_configuration=RequestConfiguration(query_parameters=SchedulesRequestBuilder.
            RoleAssignmentSchedulesRequestBuilderGetQueryParameters(filter=f"principalId eq '{user_id}'")))
    check("PIM: permanent schedule for the account",
          [s.role_definition_id for s in schedules.value] == [GLOBAL_ADMINISTRATOR]
          and schedules.value[0].schedule_info.expiration.type == ExpirationPatternType.NoExpiration,
          str([(s.role_definition_id, s.schedule_info) for s in schedules.value]))
    instances = await graph.role_management.directory.role_assignment_schedule_instances.get()
    check("PIM: schedule instance in force",
          any(i.principal_id == user_id and i.end_date_time is None for i in instances.value), "")
    removal = await requests_api.post(UnifiedRoleAssignmentScheduleRequest(
        action=UnifiedRoleScheduleRequestActions.AdminRemove,
        principal_id=user_id, role_definition_id=GLOBAL_ADMINISTRATOR, directory_scope_id="/",
    ))
    check("PIM: removal request", removal.status in ("PendingRevocation", "Revoked"), str(removal.status))

    # Put the CA policy back as it was.
    await graph.identity.conditional_access.policies.by_conditional_access_policy_id(CA_POLICY).patch(
        ConditionalAccessPolicy(conditions=ConditionalAccessConditionSet(
            users=ConditionalAccessUsers(exclude_users=excluded))))

    # Deleted items: soft delete, list through Kiota's graph.user cast, restore, purge.
    await graph.users.by_user_id(user_id).delete()
    deleted = await graph.directory.deleted_items.graph_user.get()
    check("deleted items: listed through /directory/deletedItems/graph.user",
          any(u.id == user_id for u in deleted.value), str([u.id for u in deleted.value]))
    item = await graph.directory.deleted_items.by_directory_object_id(user_id).get()
    check("deleted items: get", item.id == user_id and item.odata_type == "#microsoft.graph.user", str(item.odata_type))
    restored = await graph.directory.deleted_items.by_directory_object_id(user_id).restore.post()
    check("deleted items: restore", restored.id == user_id, str(restored.id))
    await graph.users.by_user_id(user_id).delete()
    await graph.directory.deleted_items.by_directory_object_id(user_id).delete()
    gone = await graph.directory.deleted_items.graph_user.get()
    check("deleted items: permanent delete", all(u.id != user_id for u in gone.value), "")


# --------------------------------------------------------------------------------------------
# Azure Resource Manager (azure-mgmt-*), at each package's default api-version


def arm_operations(credential):
    options = {"base_url": URL, "connection_verify": CA}
    subscriptions = SubscriptionClient(credential, **options)
    listed = [s.subscription_id for s in subscriptions.subscriptions.list()]
    check("subscriptions: list", SUBSCRIPTION in listed, str(listed))
    check("subscriptions: get", subscriptions.subscriptions.get(SUBSCRIPTION).tenant_id == TENANT, "")
    check("tenants: list", [t.tenant_id for t in subscriptions.tenants.list()] == [TENANT], "")

    resources = ResourceManagementClient(credential, SUBSCRIPTION, **options)
    rg = "rg-sdk-test"
    created = resources.resource_groups.create_or_update(rg, ResourceGroup(location="West Europe", tags={"owner": "sdk"}))
    check("resource groups: create", created.location == "westeurope", str(created.location))
    check("resource groups: exists (HEAD)", resources.resource_groups.check_existence(rg), "")
    patched = resources.resource_groups.update(rg, ResourceGroupPatchable(tags={"owner": "secops"}))
    check("resource groups: update (PATCH)", patched.tags == {"owner": "secops"} and patched.location == "westeurope",
          str(patched.tags))
    check("resource groups: list", rg in [g.name for g in resources.resource_groups.list()], "")

    logs = LogAnalyticsManagementClient(credential, SUBSCRIPTION, **options)
    workspace = logs.workspaces.begin_create_or_update(
        rg, "law-sdk-test", Workspace(location="westeurope", sku=WorkspaceSku(name="PerGB2018"), retention_in_days=30)
    ).result()
    check("workspaces: create", bool(workspace.customer_id) and workspace.provisioning_state == "Succeeded",
          str(workspace.provisioning_state))
    check("workspaces: get", logs.workspaces.get(rg, "law-sdk-test").customer_id == workspace.customer_id, "")
    check("workspaces: list by resource group", [w.name for w in logs.workspaces.list_by_resource_group(rg)] == ["law-sdk-test"], "")
    in_subscription = [w.name for w in logs.workspaces.list()]
    check("workspaces: list by subscription", {"law-sdk-test", SEED_WORKSPACE} <= set(in_subscription), str(in_subscription))
    table = logs.tables.get(SEED_RG, SEED_WORKSPACE, "Heartbeat")
    check("tables: get", table.name == "Heartbeat", str(table.name))
    seeded = logs.workspaces.get(SEED_RG, SEED_WORKSPACE)

    monitor = MonitorManagementClient(credential, SUBSCRIPTION, **options)
    group = monitor.action_groups.create_or_update(rg, "ag-sdk-test", ActionGroupResource(
        location="Global", group_short_name="bgsdk", enabled=True,
        email_receivers=[EmailReceiver(name="secops", email_address="secops@contoso.com")],
    ))
    check("action groups: create", group.email_receivers[0].status == "Enabled", str(group.email_receivers))
    check("action groups: get", monitor.action_groups.get(rg, "ag-sdk-test").group_short_name == "bgsdk", "")
    disabled = monitor.action_groups.update(rg, "ag-sdk-test", ActionGroupPatchBody(enabled=False))
    check("action groups: update (PATCH)", disabled.enabled is False, str(disabled.enabled))
    check("action groups: list", ["ag-sdk-test"] == [g.name for g in monitor.action_groups.list_by_resource_group(rg)], "")

    rule = monitor.scheduled_query_rules.create_or_update(rg, "sqr-sdk-test", ScheduledQueryRuleResource(
        location="westeurope", enabled=True, severity=0,
        evaluation_frequency=datetime.timedelta(minutes=5), window_size=datetime.timedelta(minutes=5),
        scopes=[seeded.id],
        criteria=ScheduledQueryRuleCriteria(all_of=[Condition(
            query="Heartbeat | where Computer startswith 'bg-'", time_aggregation="Count",
            operator="GreaterThan", threshold=0,
        )]),
        actions=Actions(action_groups=[group.id]),
    ))
    check("scheduled query rules: create", rule.severity == 0 and rule.actions.action_groups == [group.id], str(rule.actions))
    check("scheduled query rules: get", monitor.scheduled_query_rules.get(rg, "sqr-sdk-test").enabled is True, "")
    muted = monitor.scheduled_query_rules.update(rg, "sqr-sdk-test", ScheduledQueryRuleResourcePatch(enabled=False))
    check("scheduled query rules: update (PATCH)", muted.enabled is False, str(muted.enabled))
    check("scheduled query rules: list",
          ["sqr-sdk-test"] == [r.name for r in monitor.scheduled_query_rules.list_by_resource_group(rg)], "")

    # Entra diagnostic settings: microsoft.aadiam, api-version 2017-04-01, through a management
    # client's public send_request (azure-mgmt-monitor's client only has a private one).
    path = "/providers/microsoft.aadiam/diagnosticSettings/bg-sdk-test?api-version=2017-04-01"
    body = {"properties": {"workspaceId": seeded.id, "logs": [
        {"category": "SignInLogs", "enabled": True}, {"category": "AuditLogs", "enabled": True}]}}
    put = resources.send_request(HttpRequest("PUT", path, json=body))
    check("Entra diagnostic settings: create", put.status_code == 200 and put.json()["name"] == "bg-sdk-test", put.text())
    got = resources.send_request(HttpRequest("GET", path))
    check("Entra diagnostic settings: get",
          [l["category"] for l in got.json()["properties"]["logs"]] == ["SignInLogs", "AuditLogs"], got.text())
    listed = resources.send_request(HttpRequest("GET", "/providers/microsoft.aadiam/diagnosticSettings?api-version=2017-04-01"))
    check("Entra diagnostic settings: list", "bg-sdk-test" in [s["name"] for s in listed.json()["value"]], listed.text())
    deleted = resources.send_request(HttpRequest("DELETE", path))
    check("Entra diagnostic settings: delete", deleted.status_code in (200, 204), str(deleted.status_code))

    monitor.scheduled_query_rules.delete(rg, "sqr-sdk-test")
    monitor.action_groups.delete(rg, "ag-sdk-test")
    logs.workspaces.begin_delete(rg, "law-sdk-test").result()
    resources.resource_groups.begin_delete(rg).result()
    check("resource groups: delete (with everything in it)", not resources.resource_groups.check_existence(rg), "")


def main():
    sign_in_with_msal()
    cert_pem, key_pem = certificate_pem()
    sign_in_with_certificate(cert_pem, key_pem)
    credential = secret_credential()
    asyncio.run(graph_operations(graph_client(credential)))
    arm_operations(credential)
    print(f"sdk: all {CHECKS} checks passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - report any failure, with the SDK's own traceback
        traceback.print_exc()
        print(f"sdk: failed after {CHECKS} checks", flush=True)
        sys.exit(1)
