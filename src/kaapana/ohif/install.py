"""Fetch a prebuilt ``@ohif/app`` release with npm and switch to it atomically.

Layout of the OHIF folder::

    <ohif_dir>/current -> 3.13.2-1a2b3c4d     the release being served (a symlink)
    <ohif_dir>/3.13.2-1a2b3c4d/dist/          the package's prebuilt dist, index.html rewritten
    <ohif_dir>/3.13.2-1a2b3c4d/install.json   version, integrity, time

A release is unpacked into a hidden temporary folder of the OHIF folder and only then renamed
and pointed at by a freshly made symlink that replaces ``current`` in one ``rename``: a failed
download, a wrong checksum or a full disk leave the release being served untouched, and a running
server picks up the new release with its next request.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kaapana.errors import InvalidInput, KaapanaError
from kaapana.ohif.mount import rewrite_index, rewrite_public_path, rewrite_stylesheet

PACKAGE = "@ohif/app"
DEFAULT_VERSION = "3.13.2"
CURRENT = "current"
MANIFEST = "install.json"
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
_DIST = "package/dist/"
_NPM_TIMEOUT_SECONDS = 900


class OhifInstallError(KaapanaError):
    """npm is missing, the registry cannot be reached or the package is not what was expected."""

    status = 502
    code = "ohif_install_failed"


@dataclass(frozen=True, slots=True)
class OhifRelease:
    version: str
    integrity: str
    installed_at: str
    path: Path

    @property
    def dist(self) -> Path:
        return self.path / "dist"


def installed(ohif_dir: Path) -> OhifRelease | None:
    """The release ``current`` points at, or None when OHIF is not installed."""
    link = ohif_dir / CURRENT
    try:
        target = ohif_dir / os.readlink(link)
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return OhifRelease(
        version=str(manifest["version"]),
        integrity=str(manifest["integrity"]),
        installed_at=str(manifest["installed_at"]),
        path=target,
    )


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise InvalidInput(f"an OHIF version is a semantic version such as 3.13.2, got {version!r}")
    return version


def install(
    ohif_dir: Path,
    version: str = DEFAULT_VERSION,
    *,
    npm: str = "npm",
    force: bool = False,
    report: Callable[[str], None] = lambda _step: None,
) -> OhifRelease:
    """Download, verify, unpack and rewrite ``@ohif/app@version``, then make it ``current``.

    The version being served is kept as it is unless ``force``: installing twice changes nothing.
    """
    check_version(version)
    present = installed(ohif_dir)
    if present is not None and present.version == version and not force:
        report(f"{PACKAGE}@{version} is already installed")
        return present
    npm_path = shutil.which(npm)
    if npm_path is None:
        raise OhifInstallError(
            f"npm ({npm!r}) was not found on PATH; install Node.js with npm (e.g. apt-get install "
            "npm) and run this again"
        )
    ohif_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=ohif_dir))
    try:
        report(f"downloading {PACKAGE}@{version} from the npm registry")
        tarball, integrity = _pack(npm_path, version, staging)
        report(f"verifying {tarball.name} ({tarball.stat().st_size / 1e6:.1f} MB)")
        _verify(tarball, integrity)
        report("unpacking the prebuilt viewer")
        release = staging / "release"
        _extract_dist(tarball, release / "dist")
        tarball.unlink()
        report("rewriting index.html, the webpack runtimes and the stylesheets for /ohif/")
        _rewrite(release / "dist")
        manifest = {
            "package": PACKAGE,
            "version": version,
            "integrity": integrity,
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (release / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        name = f"{version}-{secrets.token_hex(4)}"
        release.rename(ohif_dir / name)
        _point_current(ohif_dir, name)
    except (OSError, tarfile.TarError) as exc:  # a full disk, a damaged archive
        raise OhifInstallError(f"installing {PACKAGE}@{version} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report("removing earlier releases")
    _remove_other_releases(ohif_dir, keep=name)
    found = installed(ohif_dir)
    assert found is not None
    return found


def remove(ohif_dir: Path) -> OhifRelease | None:
    """Stop serving OHIF and delete its files; returns what was installed."""
    release = installed(ohif_dir)
    (ohif_dir / CURRENT).unlink(missing_ok=True)
    if ohif_dir.is_dir():
        _remove_other_releases(ohif_dir, keep=None)
    return release


def _pack(npm: str, version: str, folder: Path) -> tuple[Path, str]:
    spec = f"{PACKAGE}@{version}"
    try:
        done = subprocess.run(
            [npm, "pack", spec, "--json", "--pack-destination", str(folder)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=_NPM_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OhifInstallError(f"npm pack {spec} did not finish in {exc.timeout:.0f} s") from exc
    if done.returncode != 0:
        raise OhifInstallError(_npm_failure(spec, done.stderr + done.stdout))
    try:
        (entry,) = json.loads(done.stdout)
        return folder / entry["filename"], str(entry["integrity"])
    except (ValueError, KeyError, TypeError) as exc:
        raise OhifInstallError(f"npm pack {spec} answered something unexpected") from exc


def _npm_failure(spec: str, output: str) -> str:
    if "E404" in output or "ETARGET" in output or "No matching version" in output:
        return f"the npm registry has no {spec}; see `npm view {PACKAGE} versions`"
    if re.search(r"ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ECONNRESET|network", output):
        return f"the npm registry could not be reached for {spec}; check the network or npm's proxy"
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
    return f"npm pack {spec} failed: {last[:300]}"


def _verify(tarball: Path, integrity: str) -> None:
    """The file on disk must be the one the registry's integrity (SRI, sha512) describes."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise OhifInstallError(f"unexpected integrity {integrity[:40]!r} from npm")
    digest = hashlib.sha512()
    with tarball.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    if base64.b64encode(digest.digest()).decode() != expected:
        raise OhifInstallError(f"{tarball.name} does not match its registry integrity {integrity}")


def _extract_dist(tarball: Path, target: Path) -> None:
    """Only the prebuilt ``dist``; the ``data`` filter refuses links and paths out of ``target``."""
    target.mkdir(parents=True)
    count = 0
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if not member.name.startswith(_DIST) or not (member.isfile() or member.isdir()):
                continue
            member.name = member.name.removeprefix(_DIST)
            if not member.name:
                continue
            archive.extract(member, target, filter="data")
            count += member.isfile()
    if not (target / "index.html").is_file():
        raise OhifInstallError(f"{tarball.name} has no prebuilt dist/index.html ({count} files)")


def _rewrite(dist: Path) -> None:
    index = dist / "index.html"
    try:
        page, scripts = rewrite_index(index.read_text())
    except ValueError as exc:
        raise OhifInstallError(str(exc)) from exc
    runtimes = 0
    for bundle in dist.glob("*.js"):
        script, changed = rewrite_public_path(bundle.read_text())
        if changed:
            bundle.write_text(script)
            runtimes += changed
    for stylesheet in dist.glob("*.css"):
        stylesheet.write_text(rewrite_stylesheet(stylesheet.read_text()))
    if not runtimes:
        raise OhifInstallError("no webpack runtime with public path '/' found; unknown OHIF build")
    for name, body in scripts.items():
        (dist / name).write_text(body)
    index.write_text(page)


def _point_current(ohif_dir: Path, name: str) -> None:
    temporary = ohif_dir / f".{CURRENT}-{secrets.token_hex(4)}"
    temporary.symlink_to(name)
    os.replace(temporary, ohif_dir / CURRENT)


def _remove_other_releases(ohif_dir: Path, *, keep: str | None) -> None:
    for entry in ohif_dir.iterdir():
        if entry.name != keep and entry.name != CURRENT and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


__all__ = [
    "DEFAULT_VERSION",
    "PACKAGE",
    "OhifInstallError",
    "OhifRelease",
    "check_version",
    "install",
    "installed",
    "remove",
]
