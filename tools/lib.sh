# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# tools/lib.sh - shell functions shared by tools/run and tools/test (sourced, not executed):
# finding the repository root and installing the Debian packages the build needs, but only
# those that are missing, so a machine that has everything is never touched.

# The Debian packages the build, the tests and (later) the filesystem need.
FR_DEB_PACKAGES=(cmake pkg-config gcc make liblz4-dev libxxhash-dev libcmocka-dev libfuse3-dev
	fuse3)

# Prints the repository root (the parent of tools/).
fr_repo_root() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
	dirname "$here"
}

# Prints, one per line, the packages of FR_DEB_PACKAGES that dpkg does not list as installed.
fr_missing_packages() {
	local pkg status
	for pkg in "${FR_DEB_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
		if [[ $status != "install ok installed" ]]; then
			printf '%s\n' "$pkg"
		fi
	done
}

# Installs the missing packages: apt-get update once, then apt-get install. Uses sudo when not
# root. Does nothing when everything is present. On a system without dpkg it only warns.
fr_install_missing() {
	local -a missing sudo=()
	if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
		echo "note: no dpkg/apt-get here; make sure these (or equivalents) are installed:" >&2
		echo "      ${FR_DEB_PACKAGES[*]}" >&2
		return 0
	fi
	mapfile -t missing < <(fr_missing_packages)
	if ((${#missing[@]} == 0)); then
		echo "packages: everything needed is installed"
		return 0
	fi
	echo "packages: installing what is missing: ${missing[*]}"
	if ((EUID != 0)); then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "error: need root or sudo to install: ${missing[*]}" >&2
			return 1
		fi
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update || return 1
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" ||
		return 1
}

# The number of parallel build jobs: FR_JOBS, or the number of processors.
fr_jobs() {
	echo "${FR_JOBS:-$(nproc 2>/dev/null || echo 2)}"
}
