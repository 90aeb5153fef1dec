# shellcheck shell=bash
# Sourced by every harness script: one place for paths and the environment the tools need.
CS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CS_CACHE=${CS_CACHE:-$CS_ROOT/.cache}
CS_VENV=${CS_VENV:-$CS_ROOT/.venv}
CS_APP_VENV=${CS_APP_VENV:-$CS_CACHE/app-venv}
export CS_ROOT CS_CACHE CS_VENV CS_APP_VENV
export CONTAINERS_CONF=$CS_ROOT/harness/containers.conf
export PATH=$CS_VENV/bin:$PATH
# The collection resolves by FQCN from the working tree (collections/ holds one link to it, which
# ansible.cfg names too); the community collections it uses come from the `ansible` package
# inside the virtualenv.
export ANSIBLE_COLLECTIONS_PATH=$CS_ROOT/collections
export ANSIBLE_CONFIG=$CS_ROOT/ansible.cfg

cs_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# Scenarios live in molecule/ at the top of the collection (the product layout), not extensions/.
export MOLECULE_GLOB='molecule/*/molecule.yml'
