"""Files that hold secrets: never read, whatever the user's ignore rules say.

The list is fixed in code and kept apart from the user's editable patterns (Settings.ignore_patterns), so
deleting a user pattern such as `.*` cannot expose a key, and a pattern added here reaches every
installation. Patterns use `.gitignore` syntax and are matched, lower-cased, against the whole absolute
path, so a library folder that is itself inside `~/.ssh` or a browser profile is covered too.

Names are not enough (a service-account key is saved under any name): a file whose text holds a private
key block is refused after extraction, before anything of it is stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the extractors import the format libraries; the ignore rules must stay light
    from .extractors.model import Extracted

SECRET_PATTERNS = [
    # keys, certificates and key stores
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.p8",
    "*.jks",
    "*.keystore",
    "*.ppk",  # PuTTY private keys
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".ssh/",
    ".gnupg/",
    "*.keychain",
    "*.keychain-db",
    # environment files and tool credentials
    ".env",
    ".env.*",
    "*.env",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".yarnrc.yml",
    ".pypirc",
    ".git-credentials",
    ".my.cnf",
    ".htpasswd",
    ".s3cfg",
    ".boto",
    ".dockercfg",
    ".vault-token",
    "**/.docker/config.json",
    "**/.cargo/credentials*",
    "**/.gem/credentials",
    "**/.composer/auth.json",
    "**/.config/gh/hosts.yml",
    "**/.streamlit/secrets.toml",
    "terraform.tfstate*",
    "*.tfvars",
    # cloud and cluster credentials
    ".aws/",
    ".azure/",
    "**/.config/gcloud/",
    ".kube/",
    "kubeconfig*",
    "*.kubeconfig",
    "credentials.json",
    "credentials.y*ml",
    "client_secret*.json",
    "token.json",
    "*service-account*.json",
    "*service_account*.json",
    "*-sa-key*.json",
    "secrets.y*ml",
    "secrets.json",
    "secrets.toml",
    # password managers and their exports
    "*.kdbx",
    "*.kdb",
    "*.1pux",
    "*.1pif",
    "*.agilekeychain/",
    "*.opvault/",
    "bitwarden_export_*",
    "bitwarden_encrypted_export_*",
    "lastpass*export*.csv",
    "*password*.csv",  # Chrome, Edge, Firefox and 1Password CSV exports ("Chrome Passwords.csv")
    "*passwort*.csv",
    "logins.csv",
    "logins.json",
    # browser profiles (cookies, saved logins, history), where each browser keeps them on Linux, macOS and
    # Windows; not any folder named "chromium" (that may be a source checkout)
    ".mozilla/",
    "*.default/",
    "*.default-release/",
    "*.default-esr/",
    ".thunderbird/",
    "**/.config/google-chrome*/",
    "**/.config/chromium/",
    "**/.config/bravesoftware/",
    "**/.config/microsoft-edge*/",
    "**/.config/vivaldi*/",
    "**/.config/opera*/",
    "**/application support/google/chrome*/",
    "**/application support/chromium/",
    "**/application support/bravesoftware/",
    "**/application support/microsoft edge*/",
    "**/application support/firefox/",
    "**/application support/vivaldi/",
    "**/appdata/local/google/chrome*/",
    "**/appdata/local/chromium/",
    "**/appdata/local/bravesoftware/",
    "**/appdata/local/microsoft/edge*/",
    "**/appdata/local/vivaldi/",
    "**/appdata/roaming/mozilla/",
    "**/appdata/roaming/opera software/",
    "login data*",
    "web data*",
    "key3.db",
    "key4.db",
]

PRIVATE_KEY_REASON = "Contains a private key; not indexed"

# A key block, not a mention of one: the header, then (after optional "Proc-Type:"-style header lines) base64
# key material. Possessive quantifiers keep the search linear on hostile text; "\\n" is the JSON-escaped line
# break of a service-account key file.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:\s|\\n)*+(?:[A-Za-z-]++:[^\n\\]*+(?:\s|\\n)++){0,4}+"
    r"[A-Za-z0-9+/]{40}"
)
_PUTTY_KEY = re.compile(r"^PuTTY-User-Key-File-\d+:", re.MULTILINE)


def holds_private_key(extracted: Extracted) -> bool:
    """Does any section of the text hold a private key block (PEM, OpenSSH, PGP, PuTTY)?"""
    return any(
        _PRIVATE_KEY.search(section.text) or _PUTTY_KEY.search(section.text) for section in extracted.sections
    )
