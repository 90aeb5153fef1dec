#!/usr/bin/python
# Copyright: Celerystack engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the action plugin plugins/action/vault_vars.py does the work, on the
# controller (like ansible.builtin.debug).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vault_vars
short_description: Write a variables file, vault-encrypted with the run's own vault secret
version_added: 0.2.0
author: Celerystack engineers (@celerystack)
description:
  - Writes O(vars) as a YAML variables file (for example an inventory's
    C(group_vars/all/vault_pki.yml)) whose whole content is vault-encrypted with a vault secret
    this playbook run was given (C(--vault-id), C(--ask-vault-pass), C(--vault-password-file)), so
    the file opens with the same password as the rest of the inventory's vault.
  - Runs on the controller only; nothing is sent to a managed host.
  - Idempotent on the data, not the bytes (encrypting the same text twice gives different
    ciphertext). An existing file is decrypted with the run's secrets and parsed; it is rewritten
    only when its variables differ from O(vars), or when it is not encrypted. Otherwise only its
    mode is corrected.
  - The file is replaced in one rename (a temporary file in the same directory), so a reader sees
    the old file or the new one, never half of one.
  - Results and diffs name the variables added, modified or removed, never a value. Still use
    C(no_log) on the task, since its arguments hold the values.
  - The whole file is rewritten from O(vars), so comments in it are not kept, nor are variables that
    O(vars) does not hold.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Reports what would change and writes nothing.
  diff_mode:
    support: partial
    details:
      - The diff lists variable names (nested mapping keys as C(name['key'])); values are hidden.
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - The file to write, on the controller. Its directory must exist.
      - A symbolic link is followed; its target is written.
    type: path
    required: true
  vars:
    description:
      - The variables the file holds, exactly (a variable missing here is removed from the file).
    type: dict
    required: true
  mode:
    description:
      - Permissions of the file, as an octal string.
    type: raw
    default: "0600"
  vault_id:
    description:
      - The vault id whose secret encrypts the file (the C(prod) of C(--vault-id prod@prompt)).
      - Without it, the run's one vault secret is used; with several, the one that decrypts the
        existing file. Otherwise the task fails and asks for O(vault_id).
      - C(--ask-vault-pass) and C(--vault-password-file) load the vault id C(default), which
        writes a C($ANSIBLE_VAULT;1.1;AES256) file; any other vault id is written into the header
        (C($ANSIBLE_VAULT;1.2;AES256;prod)).
    type: str
notes:
  - The task fails, writing nothing, when the run has no vault secret, when O(vault_id) is not
    one of the run's, or when an existing file cannot be decrypted with the run's secrets.
seealso:
  - module: ansible.builtin.include_vars
  - name: Encrypting content with Ansible Vault
    description: How vault ids and passwords are given to a run.
    link: https://docs.ansible.com/ansible/latest/vault_guide/vault_encrypting_content.html
"""

EXAMPLES = r"""
- name: Ensure the inventory's vault file holds the TLS keys
  celerystack.platform.vault_vars:
    path: "{{ inventory_dir }}/group_vars/all/vault_pki.yml"
    vars:
      vault_tls_private_keys: "{{ new_keys }}"
    vault_id: prod
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
path:
  description: The file written (a symbolic link resolved).
  returned: success
  type: str
vault_id:
  description: The vault id whose secret encrypts the file.
  returned: success
  type: str
  sample: prod
mode:
  description: The file's permissions.
  returned: success
  type: str
  sample: "0600"
added:
  description: Variables the file did not hold before.
  returned: success
  type: list
  elements: str
  sample: ["vault_tls_private_keys['db1.example.com']"]
modified:
  description: Variables whose value changed.
  returned: success
  type: list
  elements: str
removed:
  description: Variables the file held and no longer holds.
  returned: success
  type: list
  elements: str
"""
