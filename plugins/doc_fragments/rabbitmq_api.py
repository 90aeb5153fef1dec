# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the RabbitMQ management API, C(https://) when the listener serves TLS.
    type: str
    default: http://127.0.0.1:15672
  login_user:
    description: Management user (tag C(administrator) or C(policymaker) for changes).
    type: str
    default: admin
  login_password:
    description: Password of O(login_user); from a vault variable.
    type: str
    required: true
  ca_cert:
    description: CA bundle that verifies the management listener's certificate.
    type: path
  client_cert:
    description: Client certificate, when the listener asks for one.
    type: path
  client_key:
    description: Private key of O(client_cert).
    type: path
  validate_certs:
    description: Verify the listener's certificate. Turn off only on a test bench.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each API request.
    type: int
    default: 30
"""
