"""A client-credentials session against Microsoft Graph and ARM (or the emulated tenant that
stands in for them), with the Python standard library only. Shared by the scripts that act as
"another administrator" or replay the hand-run procedure."""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

GRAPH = "https://graph.microsoft.com/.default"
ARM = "https://management.azure.com/.default"


class Session:
    def __init__(self, url, tenant, client, secret):
        self.url = url.rstrip("/")
        self.tenant = tenant
        self.client = client
        self.secret = secret
        self.tokens = {}
        self.count = 0

    def token(self, scope):
        if scope not in self.tokens:
            form = urllib.parse.urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": self.client,
                    "client_secret": self.secret,
                    "scope": scope,
                }
            ).encode()
            answer = self.call("POST", f"/{self.tenant}/oauth2/v2.0/token", form, None,
                               "application/x-www-form-urlencoded")
            self.tokens[scope] = answer["access_token"]
        return self.tokens[scope]

    def call(self, method, path, body, scope, content_type="application/json"):
        headers = {"Content-Type": content_type}
        if scope:
            headers["Authorization"] = "Bearer " + self.token(scope)
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        self.count += 1
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
        except urllib.error.HTTPError as e:
            sys.exit(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}")
        return json.loads(text) if text else None

    def graph(self, method, path, body=None):
        return self.call(method, "/v1.0" + path, body, GRAPH)

    def arm(self, method, path, body, api_version):
        return self.call(method, f"{path}?api-version={api_version}", body, ARM)
