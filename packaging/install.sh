#!/bin/sh
# Puts this unpacked Almanac in the current user's application menu: a launcher and the icon under
# ~/.local/share, and the `almanac` command in ~/.local/bin. Run it from anywhere; run it again after moving
# the folder. Nothing outside the user's home is touched.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
internal="$here/_internal"
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/scalable/apps" "$HOME/.local/bin"
sed "s|^Exec=almanac |Exec=\"$here/almanac\" |" "$internal/almanac.desktop" > "$data/applications/almanac.desktop"
cp "$internal/almanac.svg" "$data/icons/hicolor/scalable/apps/almanac.svg"
ln -sf "$here/almanac" "$HOME/.local/bin/almanac"
echo "Almanac is in the application menu; \`almanac\` is in $HOME/.local/bin."
