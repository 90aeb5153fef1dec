"""The README's "Your own hosts" commands, verbatim, as a new user runs them.

    own_hosts.py run --user NAME --readme README.md --checkout DIR --work DIR
                     --host-vars DIR --password-file F --transcript F
    own_hosts.py edit-hosts SPEC.json HOSTS.yml     (the user's edit of hosts.yml)
    own_hosts.py edit-vault VALUES.json VAULT.yml   (the user's $EDITOR on vault.yml)

`run` takes the first ```sh block under "## Your own hosts" and runs it line by line in one bash,
in a copy of the checkout, as a local user of its own (ssh reads that account's ~/.ssh), from
`env -i` (no harness environment), on a terminal: every vault password prompt is answered as a
person would type it. The two steps a person does by hand are the only additions, each printed
as such: the host names put into hosts.yml (after the `cp -r` line that asks for them) and
$EDITOR on the vault, which is this script's `edit-vault`. The whole transcript goes to
--transcript (the scenario's log, which the tests search for secrets); the password is never
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import pwd
import re
import select
import shlex
import sys
import time
from pathlib import Path

HOSTS_EDIT = re.compile(r"#.*host names in hosts\.yml")
PROMPT = re.compile(r"(?i)password[^\n]*: $")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
VAULT_LINE = re.compile(r"^(vault_[a-z0-9_]+):.*$")
# A run that prints nothing for this long has hung (a prompt nobody answers, an SSH wait).
QUIET_LIMIT = 900


def readme_block(readme: Path) -> list[str]:
    """The lines of the first ```sh block of the "Your own hosts" section."""
    text = readme.read_text()
    section = text.split("\n## Your own hosts\n", 1)
    if len(section) != 2:
        raise SystemExit("README.md has no '## Your own hosts' section")
    block = re.search(r"^```sh\n(.*?)^```$", section[1].split("\n## ", 1)[0], re.S | re.M)
    if not block:
        raise SystemExit("README.md's 'Your own hosts' section has no ```sh block")
    return block.group(1).splitlines()


def build_script(lines: list[str], own_hosts: str, work: Path) -> str:
    """One bash script: each README line echoed then run, the hosts.yml edit after its line."""
    out = ["set -eo pipefail"]
    edited = False
    for line in lines:
        if not line.strip():
            continue
        out.append(f"printf '%s\\n' {shlex.quote('$ ' + line)}")
        out.append(line)
        if HOSTS_EDIT.search(line):
            target = line.split()[3] if line.startswith("cp -r ") else "inventories/mine"
            spec = shlex.quote(str(work / "hosts.json"))
            edit = f"python3 {shlex.quote(own_hosts)} edit-hosts {spec} {target}/hosts.yml"
            out.append(f"printf '%s\\n' {shlex.quote('(the test, as the user) $ ' + edit)}")
            out.append(edit)
            edited = True
    if not edited:
        raise SystemExit("README's 'Your own hosts' no longer says where the host names go")
    return "\n".join(out) + "\n"


def clean_env(user: pwd.struct_passwd, editor: str) -> dict[str, str]:
    """What a new user's login shell has: no harness variables, no virtualenv, no Ansible
    settings; the machine's pip configuration (its index) is kept, as a user's pip.conf would be."""
    env = {
        "HOME": user.pw_dir,
        "USER": user.pw_name,
        "LOGNAME": user.pw_name,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "EDITOR": editor,
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    return env


def run(args: argparse.Namespace) -> int:
    import yaml  # the harness's Python, which runs this as root

    password = Path(args.password_file).read_text().strip()
    user = pwd.getpwnam(args.user)
    work = Path(args.work)
    own_hosts = str(work / "own_hosts.py")
    spec = json.loads((work / "hosts.json").read_text())
    spec["host_vars"] = {
        f.stem: yaml.safe_load(f.read_text()) or {} for f in Path(args.host_vars).glob("*.yml")
    }
    (work / "hosts.json").write_text(json.dumps(spec))
    script = work / "own-hosts.sh"
    script.write_text(build_script(readme_block(Path(args.readme)), own_hosts, work))
    editor = f"python3 {own_hosts} edit-vault {work / 'values.json'}"
    env = clean_env(user, editor)

    pid, fd = pty.fork()
    if pid == 0:  # the user's shell
        os.initgroups(user.pw_name, user.pw_gid)
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.chdir(args.checkout)
        os.execve("/bin/bash", ["bash", str(script)], env)  # noqa: S606 (a fixed program)
    transcript = open(args.transcript, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
    transcript.write(f"\n### The README's 'Your own hosts', verbatim ({time.ctime()})\n")
    pending = ""
    last = time.monotonic()
    try:
        while True:
            ready = select.select([fd], [], [], 10)[0]
            if not ready:
                if time.monotonic() - last > QUIET_LIMIT:
                    os.kill(pid, 9)
                    print(f"no output for {QUIET_LIMIT} s: killed", file=sys.stderr)
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the shell has exited
                break
            if not data:
                break
            last = time.monotonic()
            text = ANSI.sub("", data.decode("utf-8", "replace")).replace("\r\n", "\n")
            transcript.write(text)
            transcript.flush()
            sys.stdout.write(text)
            sys.stdout.flush()
            pending = (pending + text)[-300:]
            if PROMPT.search(pending):
                os.write(fd, password.encode() + b"\n")
                pending = ""
    finally:
        transcript.close()
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status)


def edit_hosts(spec_file: str, hosts_file: str) -> int:
    """Put the test hosts where the example's are: each group that lists hosts gets the test
    hosts of the same group, each with its address and the scenario's host_vars for it."""
    import yaml  # the README's virtualenv has it (Ansible's dependency)

    spec = json.loads(Path(spec_file).read_text())
    tree = yaml.safe_load(Path(hosts_file).read_text())
    placed: set[str] = set()

    def host_vars(host: str) -> dict:
        return {"ansible_host": spec["addresses"][host], **spec["host_vars"].get(host, {})}

    seen: set[str] = set()

    def walk(name: str, group: dict) -> None:
        seen.add(name)
        if "hosts" in group:
            members = spec["groups"].get(name)
            if not members:
                raise SystemExit(f"hosts.yml group {name!r} has no test host")
            group["hosts"] = {h: host_vars(h) for h in members}
            placed.update(members)
        for child, body in (group.get("children") or {}).items():
            walk(child, body or {})

    walk("all", tree["all"])
    if set(spec["groups"]) - seen:
        raise SystemExit(f"hosts.yml has no group {sorted(set(spec['groups']) - seen)}")
    if set(spec["addresses"]) - placed:
        raise SystemExit(f"hosts.yml has no place for {sorted(set(spec['addresses']) - placed)}")
    Path(hosts_file).write_text(yaml.safe_dump(tree, sort_keys=False))
    return 0


def edit_vault(values_file: str, vault_file: str) -> int:
    """A real value for every vault_ variable the example names; the test's values are those of
    the scenario's vault. A name either side lacks is an example out of date."""
    values = json.loads(Path(values_file).read_text())
    named: set[str] = set()
    lines = []
    for line in Path(vault_file).read_text().splitlines():
        match = VAULT_LINE.match(line)
        if match:
            name = match.group(1)
            if name not in values:
                raise SystemExit(f"vault.yml.example names {name}, which the test has no value for")
            named.add(name)
            line = f"{name}: {json.dumps(values[name])}"
        lines.append(line)
    unnamed = set(values) - named
    if unnamed:
        raise SystemExit(f"vault.yml.example lacks {sorted(unnamed)}")
    Path(vault_file).write_text("\n".join(lines) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    options = ("user", "readme", "checkout", "work", "host-vars", "password-file", "transcript")
    for option in options:
        r.add_argument(f"--{option}", required=True)
    for name in ("edit-hosts", "edit-vault"):
        e = sub.add_parser(name)
        e.add_argument("data")
        e.add_argument("target")
    args = parser.parse_args()
    if args.command == "run":
        return run(args)
    if args.command == "edit-hosts":
        return edit_hosts(args.data, args.target)
    return edit_vault(args.data, args.target)


if __name__ == "__main__":
    sys.exit(main())
