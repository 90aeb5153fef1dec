# shellcheck shell=bash
# Shared by the benchmarks (sourced).

# cs_hosts_cpu: each sandbox host's CPU time so far, in ns, from its cgroup: "name ns" per line.
# Prints nothing where the machine's cgroups are not v1 (the figures then say n/a).
cs_hosts_cpu() {
  local name id usage
  for name in $(podman ps --filter label=celerystack.sandbox --format '{{.Names}}'); do
    id=$(podman inspect -f '{{.Id}}' "$name")
    usage=/sys/fs/cgroup/cpuacct/libpod_parent/libpod-$id/cpuacct.usage
    [[ -r $usage ]] && echo "${name#celerystack-sandbox-} $(cat "$usage")"
  done
  true
}
