"""The start-up check for the system libraries Qt's xcb plugin needs: when it applies, what it finds in
ldd's output, and the install command it prints for each distribution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from almanac.app import system_check
from almanac.app.system_check import (
    distro_family,
    install_command,
    ldd_missing,
    preflight,
    report,
    uses_xcb,
    xcb_plugin,
)

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
UBUNTU = "ID=ubuntu\nID_LIKE=debian\n"
FEDORA = "ID=fedora\nVERSION_ID=40\n"
MANJARO = "ID=manjaro\nID_LIKE=arch\n"
# What ldd prints for libqxcb.so on a Debian machine without the xcb utility libraries.
LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd1a3f5000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibfoo-unknown.so.3 => not found
"""


def test_applies_only_to_x11_on_linux_without_an_override():
    assert uses_xcb({"DISPLAY": ":0"}, "linux")
    assert not uses_xcb({}, "linux")  # no display: Qt's own message is right
    assert not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses_xcb(
        {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux"
    )
    assert not uses_xcb({"DISPLAY": ":0"}, "darwin")


def test_distribution_families():
    assert distro_family(DEBIAN) == "debian"
    assert distro_family(UBUNTU) == "debian"
    assert distro_family(FEDORA) == "fedora"
    assert distro_family(MANJARO) == "arch"
    assert distro_family("ID=gentoo\n") is None


def test_ldd_output_is_read_once_per_missing_library(monkeypatch):
    def fake_run(cmd, **kwargs):
        assert cmd[0] == "ldd"
        return subprocess.CompletedProcess(cmd, 0, LDD_OUTPUT, "")

    monkeypatch.setattr(system_check.subprocess, "run", fake_run)
    missing = ldd_missing(Path("/x/libqxcb.so"))
    assert missing == [
        "libxcb-cursor.so.0",
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
        "libfoo-unknown.so.3",
    ]


def test_no_ldd_means_no_complaint(monkeypatch):
    def no_ldd(cmd, **kwargs):
        raise FileNotFoundError("ldd")

    monkeypatch.setattr(system_check.subprocess, "run", no_ldd)
    assert ldd_missing(Path("/x/libqxcb.so")) == []


def test_install_commands_per_distribution():
    missing = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-shape.so.0"]
    assert install_command(missing, "debian") == (
        "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0"
    )
    assert (
        install_command(missing, "fedora")
        == "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms libxcb"
    )
    assert install_command(missing, "arch") == (
        "sudo pacman -S --needed xcb-util-cursor xcb-util-wm xcb-util-keysyms libxcb"
    )


def test_report_for_a_known_and_an_unknown_distribution():
    missing = ["libxcb-cursor.so.0", "libfoo-unknown.so.3"]
    debian = report(missing, "debian")
    assert "    sudo apt-get install libxcb-cursor0\n" in debian
    assert "dnf" not in debian and "    apt-file search libfoo-unknown.so.3\n" in debian
    every = report(missing, None)
    for command in (
        "sudo apt-get install libxcb-cursor0",
        "sudo dnf install xcb-util-cursor",
        "sudo pacman -S --needed xcb-util-cursor",
    ):
        assert command in every


def test_preflight_prints_the_command_and_fails(tmp_path):
    printed: list[str] = []
    plugin = tmp_path / "libqxcb.so"
    code = preflight(
        env={"DISPLAY": ":0"},
        plugin=plugin,
        finder=lambda lib: ["libxcb-cursor.so.0", "libxcb-icccm.so.4"] if lib == plugin else [],
        os_release=UBUNTU,
        out=printed.append,
    )
    assert code == 1
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in printed[0]


def test_preflight_is_quiet_when_nothing_is_missing_or_it_does_not_apply(tmp_path):
    def fail(_lib):
        raise AssertionError("must not look")

    printed: list[str] = []
    plugin = tmp_path / "libqxcb.so"
    assert preflight(env={"DISPLAY": ":0"}, plugin=plugin, finder=lambda lib: [], out=printed.append) is None
    assert (
        preflight(env={"QT_QPA_PLATFORM": "offscreen"}, plugin=plugin, finder=fail, out=printed.append)
        is None
    )
    assert printed == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux only")
def test_the_real_plugin_is_found_and_every_library_it_needs_is_known():
    plugin = xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, check=True).stdout
    # Every system library in the plugin's tree (not Qt's own, not glibc's) has packages in the table,
    # so a missing one always comes with an install command.
    system_libs = {
        line.split()[0]
        for line in out.splitlines()
        if "=>" in line and "/PySide6/" not in line and "libQt6" not in line
    }
    glibc = {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "libpthread.so.0",
        "librt.so.1",
        "libgcc_s.so.1",
        "libstdc++.so.6",
    }
    unknown = {
        s
        for s in system_libs - glibc
        if s.startswith(
            ("libxcb", "libX", "libxkb", "libGL", "libEGL", "libOpenGL", "libfontconfig", "libfreetype")
        )
    }
    assert unknown <= set(system_check.PACKAGES), unknown - set(system_check.PACKAGES)
