"""Before Qt starts on Linux/X11: are the system libraries that Qt's xcb platform plugin loads installed?

Qt's own message for a missing one ("xcb-cursor0 or libxcb-cursor0 is needed … no Qt platform plugin could
be initialized") names one library at a time and no package, and it aborts the process. Here the plugin's
whole dependency tree is read with `ldd` (no Qt library is loaded to do it), and every missing library is
named with the packages that provide it and one install command for the user's distribution.

Run as `python -m almanac.app.system_check` (the Makefile's `run` target does) or from `almanac gui`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# soname -> package providing it on (Debian/Ubuntu, Fedora, Arch): the libraries outside the C runtime and
# compression libraries in the dependency tree of PySide6 6.12's libqxcb.so (read with ldd; Debian names
# checked with dpkg -S). `python -m almanac.app.system_check --all` prints the full install commands.
PACKAGES: dict[str, tuple[str, str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11", "libx11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11"),
    "libXau.so.6": ("libxau6", "libXau", "libxau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp", "libxdmcp"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd"),
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx", "libglvnd"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype", "freetype2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2", "glib2"),
}

DISTROS = {  # family -> (name, install command prefix, column in PACKAGES)
    "debian": ("Debian / Ubuntu", "sudo apt-get install", 0),
    "fedora": ("Fedora", "sudo dnf install", 1),
    "arch": ("Arch Linux", "sudo pacman -S --needed", 2),
}
FILE_SEARCH = {  # finds the package that holds a library file
    "debian": "apt-file search {}",
    "fedora": "dnf provides '*/{}'",
    "arch": "pacman -F {}",
}
_FAMILY_IDS = {
    "debian": "debian",
    "ubuntu": "debian",
    "linuxmint": "debian",
    "pop": "debian",
    "fedora": "fedora",
    "rhel": "fedora",
    "centos": "fedora",
    "rocky": "fedora",
    "almalinux": "fedora",
    "arch": "arch",
    "manjaro": "arch",
    "endeavouros": "arch",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)

Finder = Callable[[Path], list[str]]


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, found without importing (and so loading) any Qt library."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def ldd_missing(library: Path) -> list[str]:
    """Sonames in `library`'s dependency tree that the dynamic loader cannot find (empty if ldd fails)."""
    try:
        out = subprocess.run(
            ["ldd", str(library)], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []  # no ldd (not glibc): Qt will say what is missing itself
    return list(dict.fromkeys(_NOT_FOUND.findall(out)))


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will start on X11 (the xcb plugin): Linux, a display, and no other platform asked for."""
    if not platform.startswith("linux"):
        return False
    override = env.get("QT_QPA_PLATFORM", "")
    if override:
        return override.split(":")[0].split(";")[0] == "xcb"
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return False  # Qt picks its Wayland plugin there
    return bool(env.get("DISPLAY"))


def distro_family(os_release: str) -> str | None:
    """ "debian", "fedora" or "arch" from the text of /etc/os-release (ID, then ID_LIKE), else None."""
    values = {}
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').lower()
    for name in [values.get("ID", ""), *values.get("ID_LIKE", "").split()]:
        if name in _FAMILY_IDS:
            return _FAMILY_IDS[name]
    return None


def install_command(missing: list[str], family: str) -> str:
    _, prefix, column = DISTROS[family]
    packages = dict.fromkeys(PACKAGES[s][column] for s in missing if s in PACKAGES)
    return f"{prefix} {' '.join(packages)}" if packages else ""


def report(missing: list[str], family: str | None) -> str:
    """What to tell the user: the missing libraries and the command that installs them."""
    lines = [
        "Almanac cannot open its window: the X11 platform plugin of Qt needs system libraries that are not"
        " installed:",
        "    " + " ".join(missing),
        "",
    ]
    families = [family] if family else list(DISTROS)
    lines.append("Install them with:" if family else "Install them with the command for your distribution:")
    for fam in families:
        command = install_command(missing, fam)
        if command:
            lines.append(f"    {command}" if family else f"    {DISTROS[fam][0]}:  {command}")
    unknown = [s for s in missing if s not in PACKAGES]
    if unknown:
        lines.append(f"and the package that provides {', '.join(unknown)}; to find it:")
        for fam in families:
            search = FILE_SEARCH[fam].format(unknown[0])
            lines.append(f"    {search}" if family else f"    {DISTROS[fam][0]}:  {search}")
    lines += ["", "Then start Almanac again."]
    return "\n".join(lines)


def read_os_release() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return ""


def preflight(
    *,
    env: Mapping[str, str] | None = None,
    plugin: Path | None = None,
    finder: Finder = ldd_missing,
    os_release: str | None = None,
    out: Callable[[str], object] | None = None,
) -> int | None:
    """Call before QApplication is created. Returns 1 after printing what to install when libraries are
    missing, else None (also when the check does not apply: another platform, no display, no plugin)."""
    if not uses_xcb(os.environ if env is None else env):
        return None
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return None
    missing = finder(plugin)
    if not missing:
        return None
    text = report(missing, distro_family(read_os_release() if os_release is None else os_release))
    (out or (lambda s: print(s, file=sys.stderr)))(text)
    return 1


def all_commands() -> str:
    """Every package in the table, per distribution: what the README lists."""
    return "\n".join(f"{DISTROS[f][0]}:  {install_command(list(PACKAGES), f)}" for f in DISTROS)


if __name__ == "__main__":
    if sys.argv[1:] == ["--all"]:
        print(all_commands())
        sys.exit(0)
    sys.exit(preflight() or 0)
