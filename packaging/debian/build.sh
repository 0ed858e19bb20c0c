#!/bin/sh
# Builds jitsi-auth-sidecar_<version>_<arch>.deb from this source tree (make deb).
#
#   packaging/debian/build.sh [--version VERSION] [--output DIRECTORY]
#
# A staged tree and dpkg-deb, no debhelper: the daemon and the Python libraries
# it needs are installed with pip into /opt/jitsi-auth-sidecar/lib (the
# system's python3-* packages are too old on Debian 12), next to a launcher
# that runs them with the system's interpreter and nothing else on sys.path.
# The extension modules (bonsai against the system's libldap, aiohttp, ...)
# are built for the interpreter of the system that builds the package, so the
# package is for that system: build on Debian 12 for Debian 12 (Python 3.11),
# on Ubuntu 24.04 for Ubuntu 24.04 (Python 3.12).
#
# VERSION defaults to the latest entry of packaging/debian/changelog; another
# one (a local rebuild) gets an entry of its own at the top of the package's
# changelog. PyPI is asked for what is not in pip's cache yet.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_tree=$(cd "$here/../.." && pwd)
version=""
output=$source_tree
while [ $# -gt 0 ]; do
    case "$1" in
        --version) version=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        *) echo "usage: $0 [--version VERSION] [--output DIRECTORY]" >&2; exit 2 ;;
    esac
done

package=jitsi-auth-sidecar
prefix=/opt/$package
changelog_version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
version=${version:-$changelog_version}
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$source_tree/pyproject.toml")
case "$changelog_version" in
    "$upstream"-*) ;;
    *) echo "$0: packaging/debian/changelog ($changelog_version) is not for version $upstream (pyproject.toml)" >&2
       exit 1 ;;
esac
arch=$(dpkg --print-architecture)
# The versioned interpreter: the extension modules are built for it alone.
python_version=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python=/usr/bin/python$python_version

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
lib=$root$prefix/lib

# The files a clean clone has (no .venv, no build leftovers) when this is a git
# checkout; pip builds the wheel in that copy, not in the source tree.
mkdir "$work/source"
if git -C "$source_tree" rev-parse --git-dir >/dev/null 2>&1; then
    # (a tracked file deleted in the work tree is left out, as a commit would)
    git -C "$source_tree" ls-files -z --cached --others --exclude-standard \
        | (cd "$source_tree" && xargs -0 sh -c \
            'for name; do if [ -f "$name" ]; then cp --parents -t "$0" "$name"; fi; done' \
            "$work/source")
else
    cp -a "$source_tree/." "$work/source"
fi

"$python" -m venv "$work/builder"
pip="$work/builder/bin/pip --disable-pip-version-check --quiet"
# The wheels of this build's interpreter (bonsai built here, against the
# system's libldap), kept between builds: a rebuild needs no network. Delete
# the folder to take newer releases of the libraries.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/$package-deb/python$python_version
wheels=$cache/wheels
export PIP_CACHE_DIR="$cache/pip"
offline="--no-index --find-links $wheels"
if ! $pip wheel $offline --no-deps --wheel-dir "$work/dist" "$work/source" 2>/dev/null; then
    "$python" -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"], sep="\n")' \
        "$source_tree/pyproject.toml" > "$work/build-requires.txt"
    $pip wheel --wheel-dir "$wheels" -r "$work/build-requires.txt"
    $pip wheel $offline --no-deps --wheel-dir "$work/dist" "$work/source"
fi
# --no-compile: the byte code is written by postinst (and removed by prerm), so
# that no file the package does not own is left behind.
install_libraries() {
    $pip install $offline --no-compile --no-warn-script-location --target "$lib" "$work/dist"/*.whl
}
if ! install_libraries 2>/dev/null; then
    rm -rf "$lib"
    $pip wheel --wheel-dir "$wheels" "$work/dist"/*.whl
    rm -f "$wheels"/jitsi_auth_sidecar-*.whl
    install_libraries
fi
# pip's console scripts name the builder's interpreter; the launcher replaces them.
rm -rf "$lib/bin"
find "$lib" -name '*.so' -exec strip --strip-unneeded --remove-section=.comment \
    --remove-section=.note {} +

install -d "$root$prefix/bin" "$root/usr/bin"
sed "s|@PYTHON@|$python|" "$here/launcher" > "$root$prefix/bin/$package"
chmod 0755 "$root$prefix/bin/$package"
ln -s "$prefix/bin/$package" "$root/usr/bin/$package"

install -D -m 0644 "$source_tree/systemd/$package.service" "$root/lib/systemd/system/$package.service"
install -D -m 0644 "$source_tree/systemd/$package.socket" "$root/lib/systemd/system/$package.socket"
install -D -m 0644 "$source_tree/nginx/$package.conf" "$root/etc/nginx/snippets/$package.conf"
install -D -m 0644 "$source_tree/nginx/$package-log.conf" "$root/etc/nginx/conf.d/$package-log.conf"
install -D -m 0644 "$source_tree/nginx/$package-upstream.conf" "$root/etc/nginx/conf.d/$package-upstream.conf"

# The configuration: the example, without the *_file keys of the secrets that
# the unit passes in as credentials (its dynamic user cannot read those files).
install -d -m 0755 "$root/etc/$package"
sed -f "$here/config.sed" "$source_tree/config.example.toml" > "$root/etc/$package/config.toml"
for key in app_secret_file bind_password_file keys_file; do
    if grep -q "^$key = \"/etc/$package/" "$root/etc/$package/config.toml"; then
        echo "$0: config.sed left $key in the configuration" >&2
        exit 1
    fi
done

doc=$root/usr/share/doc/$package
install -D -m 0644 "$here/copyright" "$doc/copyright"
install -m 0644 "$source_tree/README.md" "$source_tree/config.example.toml" "$doc/"
# The README links the admin guide's pages under docs/.
install -d -m 0755 "$doc/docs"
install -m 0644 "$source_tree"/docs/*.md "$doc/docs/"
{
    if [ "$version" != "$changelog_version" ]; then
        printf '%s (%s) unstable; urgency=medium\n\n  * Local build of %s.\n\n -- %s  %s\n\n' \
            "$package" "$version" "$changelog_version" \
            "$(dpkg-parsechangelog -l "$here/changelog" -S Maintainer)" "$(date -R)"
    fi
    cat "$here/changelog"
} | gzip -9n > "$doc/changelog.Debian.gz"
install -D -m 0644 "$here/$package.8" "$root/usr/share/man/man8/$package.8"
gzip -9n "$root/usr/share/man/man8/$package.8"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/$package"

control=$root/DEBIAN
install -d "$control"
for script in postinst prerm postrm; do
    sed "s|@PYTHON_COMMAND@|python$python_version|" "$here/$script" > "$control/$script"
    chmod 0755 "$control/$script"
done
install -m 0644 "$here/conffiles" "$control/conffiles"

# Shared libraries the extension modules link against, as Debian packages
# (libldap and libsasl2 for bonsai, libc): dpkg-shlibdeps wants a control file.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" \
    > "$work/shlibs/debian/control"
shlib_depends=$(cd "$work/shlibs" && find "$lib" -name '*.so' -print0 \
    | xargs -0 dpkg-shlibdeps -O -e 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

find "$root" -path "$control" -prune -o -type d -exec chmod 0755 {} +
find "$root" -path "$control" -prune -o -type f ! -perm -u+x -exec chmod 0644 {} +
# A few libraries ship executable modules; none is run as a program.
find "$lib" -type f -exec chmod 0644 {} +
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@INSTALLED_SIZE@|$installed_size|" \
    -e "s|@PYTHON_PACKAGE@|python$python_version|" -e "s|@SHLIBS@|$shlib_depends|" \
    "$here/control" > "$control/control"

mkdir -p "$output"
deb=$output/${package}_${version}_$arch.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
