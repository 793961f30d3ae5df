"""Secrets stay out whatever the user's ignore patterns say: by name (a fixed list) and by content (a key)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from almanac.core import store
from almanac.core.ignore import IgnoreRules, is_secret
from almanac.core.library import Library
from almanac.core.secret_files import PRIVATE_KEY_REASON
from almanac.core.settings import DEFAULT_IGNORE, Settings
from indexcheck import problems

BODY = "\n".join(base64.b64encode(os.urandom(900)).decode()[i : i + 64] for i in range(0, 1200, 64))
RSA_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{BODY}\n-----END RSA PRIVATE KEY-----\n"
OPENSSH_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
ENCRYPTED_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF00FF00FF00FF\n\n"
    f"{BODY}\n-----END RSA PRIVATE KEY-----\n"
)
SERVICE_ACCOUNT = json.dumps(
    {
        "type": "service_account",
        "project_id": "demo",
        "private_key_id": "abc123",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{BODY}\n-----END PRIVATE KEY-----\n",
        "client_email": "bot@demo.iam.gserviceaccount.com",
    },
    indent=2,
)

# Each holds the word "hunter2", which must never become searchable.
SECRET_NAMES = [
    "credentials.json",
    "client_secret_1234-abcd.apps.googleusercontent.com.json",
    "token.json",
    "secrets.yml",
    "secrets.yaml",
    "config/secrets.json",
    "my-service-account.json",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".env",
    ".env.production",
    "cert.pem",
    "Server.KEY",
    "bundle.p12",
    "bundle.pfx",
    "id_ed25519.pub",
    ".kube/config",
    "deploy/kubeconfig.yaml",
    "prod.kubeconfig",
    ".ssh/config",
    ".aws/credentials",
    ".docker/config.json",
    ".config/gcloud/application_default_credentials.json",
    ".config/gh/hosts.yml",
    "vault.kdbx",
    "export.1pux",
    "bitwarden_export_20240101120000.json",
    "lastpass_vault_export.csv",
    "Chrome Passwords.csv",
    "logins.json",
    ".mozilla/firefox/abcd1234.default-release/prefs.js",
    "profiles/x1y2z3.default-release/bookmarks.html",
    ".config/google-chrome/Default/Preferences.json",
    "Library/Application Support/Google/Chrome/Default/History.txt",
    "AppData/Local/Google/Chrome/User Data/Default/Bookmarks.json",
]


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def secrets_folder(tmp_path):
    root = tmp_path / "home"
    for rel in SECRET_NAMES:
        _write(root, rel, "password = hunter2\n")
    _write(root, "notes/ordinary.md", "# Ordinary\n\nShopping list: tomatoes.\n")
    _write(root, ".hidden-notes/idea.md", "# Idea\n\nA dotted folder of ordinary notes about kites.\n")
    _write(
        root, "src/chromium/README.md", "# Chromium\n\nA source checkout, not a browser profile: rendering.\n"
    )
    _write(
        root,
        "docs/keys.md",
        "A key file starts with -----BEGIN RSA PRIVATE KEY-----, says the zeppelin manual.\n",
    )
    _write(root, "backup/server-notes.txt", "Old server. Key below.\n\n" + RSA_KEY)
    _write(root, "backup/deploy.md", "# Deploy\n\n```\n" + OPENSSH_KEY + "```\n")
    _write(root, "backup/legacy.conf", ENCRYPTED_KEY)
    _write(root, "downloads/demo-7f3a9c1e2b4d.json", SERVICE_ACCOUNT)  # the name the cloud console gives it
    return root


def fts(lib, word):
    rows = lib.conn.execute(
        "SELECT d.path FROM chunks_fts f JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
        " WHERE chunks_fts MATCH ?",
        (f'"{word}"',),
    )
    return [Path(p).relative_to(lib.folders()[0].path).as_posix() for (p,) in rows]


@pytest.mark.parametrize("patterns", [list(DEFAULT_IGNORE), [], ["*.log"]], ids=["defaults", "none", "other"])
def test_secrets_stay_out_whatever_the_user_patterns(tmp_path, secrets_folder, patterns, hash_embedder):
    settings = Settings(ignore_patterns=patterns)
    with Library(tmp_path / "index.db", settings=settings, embedder=hash_embedder) as lib:
        lib.add_folder(secrets_folder)
        lib.index()
        assert fts(lib, "hunter2") == []
        stored = {
            Path(p).relative_to(secrets_folder).as_posix()
            for (p,) in lib.conn.execute("SELECT path FROM documents")
        }
        assert not stored & set(SECRET_NAMES)
        assert fts(lib, "tomatoes") == ["notes/ordinary.md"]
        assert fts(lib, "rendering") == ["src/chromium/README.md"]
        assert fts(lib, "zeppelin") == ["docs/keys.md"]  # a mention of a key is not a key
        # Key blocks are refused by content, with a reason, and nothing of them is stored.
        failures = {Path(p).relative_to(secrets_folder).as_posix(): r for p, r in lib.status().failures}
        assert failures == {
            "backup/server-notes.txt": PRIVATE_KEY_REASON,
            "backup/deploy.md": PRIVATE_KEY_REASON,
            "backup/legacy.conf": PRIVATE_KEY_REASON,
            "downloads/demo-7f3a9c1e2b4d.json": PRIVATE_KEY_REASON,
        }
        assert fts(lib, "server") == []
        key_material = BODY.split("\n", 1)[0]
        assert (
            lib.conn.execute("SELECT count(*) FROM chunks WHERE instr(text, ?)", (key_material,)).fetchone()[
                0
            ]
            == 0
        )
        # Without the user's ".*" an ordinary dotted folder is indexed; with it, it is not.
        assert fts(lib, "kites") == ([] if ".*" in patterns else [".hidden-notes/idea.md"])
        assert problems(lib.conn) == []


def test_a_library_folder_inside_a_secret_folder(tmp_path):
    ssh = tmp_path / ".ssh"
    _write(ssh, "config", "Host example\n  User hunter2\n")
    _write(ssh, "notes.txt", "hunter2 notes\n")
    rules = IgnoreRules(ssh, [])
    assert rules.ignored(ssh / "notes.txt") and rules.ignored(ssh / "config")
    assert is_secret(Path("/home/u/Library/Application Support/Google/Chrome/Default"), is_dir=True)
    assert not is_secret(Path("/home/u/src/chromium/base"), is_dir=True)


def test_old_settings_lose_the_copied_secret_defaults(tmp_path):
    old_defaults = [
        ".*",
        "node_modules/",
        ".env",
        ".env.*",
        "*.pem",
        "*.key",
        "*.p12",
        "*.pfx",
        "id_rsa*",
        "id_dsa*",
        "id_ecdsa*",
        "id_ed25519*",
        "*.keychain",
        "*.keychain-db",
        "*.kdbx",
        "*.swp",
    ]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"ignore_patterns": [*old_defaults, "drafts/", "*.log"], "top_k": 7}))
    loaded = Settings.load(path)
    assert loaded.ignore_patterns == [".*", "node_modules/", "*.swp", "drafts/", "*.log"]
    assert loaded.top_k == 7
    loaded.save(path)
    assert json.loads(path.read_text())["ignore_patterns"] == loaded.ignore_patterns
    assert not {".env", "*.pem", "*.kdbx"} & set(Settings().ignore_patterns)  # new users: not copied either


def test_a_file_that_becomes_a_key_is_dropped(tmp_path, hash_embedder):
    root = tmp_path / "docs"
    note = _write(root, "note.txt", "Harmless text about sailing.\n")
    with Library(tmp_path / "i.db", settings=Settings(), embedder=hash_embedder) as lib:
        lib.add_folder(root)
        lib.index()
        assert fts(lib, "sailing") == ["note.txt"]
        note.write_text("Harmless text about sailing.\n" + RSA_KEY)
        lib.index()
        assert fts(lib, "sailing") == []
        assert lib.status().failures == [(store.display_path(str(note)), PRIVATE_KEY_REASON)]
        assert problems(lib.conn) == []


def test_the_fast_secret_matcher_agrees_with_pathspec():
    from almanac.core.ignore import SECRET_SPEC

    probes = [n.lower() for n in SECRET_NAMES] + [
        "notes/ordinary.md", "src/chromium/readme.md", "a/.env.local", "a/b/.ssh", "my.envelope/x.md",
        "appdata/local/google/chromecast-notes.md", "x/tokens.json", "home/u/.config/gh/other.yml",
    ]  # fmt: skip
    for probe in probes:
        for p in (f"home/u/{probe}", probe, f"home/u/{probe}/"):
            assert is_secret(Path("/" + p), is_dir=p.endswith("/")) == SECRET_SPEC.match_file(p), p


def test_a_harmless_link_to_a_secret_is_not_followed(tmp_path, hash_embedder):
    root = tmp_path / "docs"
    _write(root, ".aws/credentials", "aws_secret_access_key = hunter2\n")
    _write(root, "notes.txt", "Ordinary notes about gliders.\n")
    (root / "creds.txt").symlink_to(root / ".aws" / "credentials")
    (root / "more-notes.txt").symlink_to(root / "notes.txt")  # a link to an ordinary file still works
    with Library(tmp_path / "i.db", settings=Settings(ignore_patterns=[]), embedder=hash_embedder) as lib:
        lib.add_folder(root)
        lib.index()
        assert fts(lib, "hunter2") == []
        assert sorted(fts(lib, "gliders")) == ["more-notes.txt", "notes.txt"]
