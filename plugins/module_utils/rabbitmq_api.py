# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client of the RabbitMQ management HTTP API, shared by the rabbitmq_* modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote
from ansible.module_utils.urls import open_url
from ansible_collections.celerystack.platform.plugins.module_utils.rabbitmq_topology import diff_of


def connection_argument_spec():
    """Connection options every rabbitmq_* module takes (doc fragment: rabbitmq_api)."""
    return dict(
        api_url=dict(type="str", default="http://127.0.0.1:15672"),
        login_user=dict(type="str", default="admin"),
        login_password=dict(type="str", required=True, no_log=True),
        ca_cert=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    )


class ApiError(Exception):
    """The management API refused a request or could not be reached."""


class ManagementApi:
    def __init__(self, params):
        self.base = params["api_url"].rstrip("/") + "/api"
        self.options = dict(
            url_username=params["login_user"],
            url_password=params["login_password"],
            force_basic_auth=True,
            validate_certs=params["validate_certs"],
            ca_path=params.get("ca_cert") or None,
            client_cert=params.get("client_cert"),
            client_key=params.get("client_key"),
            timeout=params["timeout"],
            headers={"Content-Type": "application/json"},
        )

    @staticmethod
    def path(*parts):
        """Join URL path parts, each percent-encoded (a vhost of '/' is '%2F')."""
        return "/" + "/".join(quote(part, safe="") for part in parts)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        try:
            response = open_url(self.base + path, method=method, data=data, **self.options)
            raw = response.read()
        except HTTPError as err:
            detail = err.read().decode("utf-8", "replace") if hasattr(err, "read") else ""
            raise ApiError("%s %s: HTTP %s %s" % (method, path, err.code, detail.strip())) from err
        except URLError as err:
            raise ApiError("%s %s: %s" % (method, path, err.reason)) from err
        return json.loads(raw) if raw else None

    def get(self, *parts, **query):
        path = self.path(*parts)
        if query:
            path += "?" + "&".join("%s=%s" % (k, quote(str(v), safe=",")) for k, v in query.items())
        return self.request("GET", path)

    def put(self, body, *parts):
        return self.request("PUT", self.path(*parts), body)

    def post(self, body, *parts):
        return self.request("POST", self.path(*parts), body)

    def delete(self, *parts):
        return self.request("DELETE", self.path(*parts))


def converge(module, run, errors):
    """Run a planning module's `run(module, api)` and exit with its changes and their diff.

    `errors` are the exceptions that mean "refused": the module fails with their message.
    """
    try:
        changes = run(module, ManagementApi(module.params))
    except (ApiError, *errors) as err:
        module.fail_json(msg=str(err))
    module.exit_json(
        changed=bool(changes),
        changes=[{k: c[k] for k in ("action", "kind", "name")} for c in changes],
        diff=diff_of(changes),
    )
