"""Settings from the environment and a protected secrets source, never from code.

Non-secret settings are environment variables `CELERYSTACK_<NAME>` (the deployment renders them
into an environment file). Secrets are `NAME=value` lines in a file that only the service user
can read: `$CREDENTIALS_DIRECTORY/secrets` when systemd passes it (LoadCredential=), otherwise the
file named by CELERYSTACK_SECRETS_FILE. A one-off command (migrate with the migration account)
may pass a secret as CELERYSTACK_<NAME> in its own environment instead.

A missing required setting stops start-up with ImproperlyConfigured naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

PREFIX = "CELERYSTACK_"
_MISSING = object()


def parse_secrets(text: str) -> dict[str, str]:
    """NAME=value lines; blank lines and # comments are skipped; values are taken verbatim."""
    secrets = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ImproperlyConfigured(f"secrets file line {number} is not NAME=value")
        secrets[name.strip()] = value
    return secrets


class Config:
    def __init__(self, environ=None):
        self.environ = os.environ if environ is None else environ
        self._secrets = None

    def secrets_path(self) -> Path | None:
        credentials = self.environ.get("CREDENTIALS_DIRECTORY")
        if credentials and (Path(credentials) / "secrets").exists():
            return Path(credentials) / "secrets"
        named = self.environ.get(PREFIX + "SECRETS_FILE")
        return Path(named) if named else None

    def secrets(self) -> dict[str, str]:
        if self._secrets is None:
            path = self.secrets_path()
            if path is None:
                self._secrets = {}
            else:
                try:
                    self._secrets = parse_secrets(path.read_text())
                except OSError as err:
                    raise ImproperlyConfigured(
                        f"secrets file {path} cannot be read: {err.strerror}"
                    ) from err
        return self._secrets

    def get(self, name: str, default=_MISSING) -> str:
        value = self.environ.get(PREFIX + name, "")
        if value != "":
            return value
        if default is _MISSING:
            raise ImproperlyConfigured(f"{PREFIX}{name} is not set: the environment must name it")
        return default

    def integer(self, name: str, default=_MISSING) -> int:
        value = self.get(name, default)
        try:
            return int(value)
        except (TypeError, ValueError) as err:
            raise ImproperlyConfigured(f"{PREFIX}{name} must be an integer, not {value!r}") from err

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name, "true" if default else "false").lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise ImproperlyConfigured(f"{PREFIX}{name} must be true or false, not {value!r}")
        return value in ("true", "1", "yes")

    def list(self, name: str, default: str = "") -> list[str]:
        return [item.strip() for item in self.get(name, default).split(",") if item.strip()]

    def secret(self, name: str, default=_MISSING) -> str:
        value = self.environ.get(PREFIX + name) or self.secrets().get(name)
        if value:
            return value
        if default is _MISSING:
            where = self.secrets_path() or "(no secrets file: set CELERYSTACK_SECRETS_FILE)"
            raise ImproperlyConfigured(f"secret {name} is missing from {where}")
        return default

    def numbered_secrets(self, name: str) -> list[str]:
        """The values of NAME_1, NAME_2, ... in the secrets file, in that order (a list secret:
        values are verbatim, so no separator could be safe inside one line)."""
        found = {}
        for key, value in self.secrets().items():
            number = key.removeprefix(name + "_")
            if key.startswith(name + "_") and number.isdigit() and value:
                found[int(number)] = value
        return [found[number] for number in sorted(found)]
