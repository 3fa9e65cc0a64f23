"""Ward PCs install reproducibly and offline: hashed locks, an offline bundle, and the real installer run
in a throwaway mount namespace with no network (its /etc, /opt and /var/lib are copies)."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
from support import ROOT

LOCKS = ROOT / "requirements"


def _pins(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, flags=re.M))
    return {name.lower().replace("_", "-"): version for name, version in pins.items()}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.parametrize(("lock", "extras"), [("agent", []), ("center", ["center", "postgres"]), ("dev", ["dev"])])
def test_every_dependency_is_pinned_with_hashes(lock: str, extras: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]] + [r for e in extras for r in project["optional-dependencies"][e]]
    pins = _pins(LOCKS / f"{lock}.lock")
    missing = [r for r in wanted if _name(r) not in pins]
    assert not missing, f"requirements/{lock}.lock lacks {missing}: regenerate it (see README, 'Locks')"
    assert "setuptools" in pins  # camwatch's own build backend: installs need nothing unpinned
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (LOCKS / f"{lock}.lock").read_text().split("\n\n", 1)[-1])
    for block in blocks:
        if "==" in block.split("\n", 1)[0]:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]


def _namespaces_work() -> bool:
    if os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "-mn", "true"], check=False, capture_output=True).returncode == 0


INSTALL = """set -euo pipefail
bundle=$1; scratch=$2
mkdir -p "$scratch/etc" "$scratch/opt" "$scratch/varlib"
cp -a /etc/. "$scratch/etc/"
mount --bind "$scratch/etc" /etc
mount --bind "$scratch/opt" /opt
mount --bind "$scratch/varlib" /var/lib
"$bundle/deploy/install-agent.sh"
stat -c 'MODE %n %a %U:%G' /etc/camwatch /etc/camwatch/ward.toml /etc/camwatch/agent.env \\
  /etc/camwatch/credentials /etc/camwatch/credentials/mqtt-password /var/lib/camwatch \\
  /etc/systemd/system/camwatch-agent.service
set -a; . /etc/camwatch/agent.env; set +a
/opt/camwatch/.venv/bin/camwatch check-config /etc/camwatch/ward.toml
/opt/camwatch/.venv/bin/python -c 'import av, cv2, onnxruntime, paho.mqtt, pydantic; print("IMPORTS OK")'
ls /opt/camwatch/models
# The center's PC, from the same bundle (here on the same system: its lock adds to the agent's).
"$bundle/deploy/install-center.sh"
stat -c 'MODE %n %a %U:%G' /etc/camwatch/center.toml /etc/camwatch/center.env \
  /etc/camwatch/credentials/center-mqtt-password /etc/systemd/system/camwatch-center.service
/opt/camwatch/.venv/bin/camwatch check-config /etc/camwatch/center.toml
/opt/camwatch/.venv/bin/python -c 'import fastapi, uvicorn, psycopg, jinja2; print("CENTER IMPORTS OK")'
"""


def test_a_ward_pc_and_a_center_install_from_the_bundle_without_network(workdir: Path) -> None:
    if not _namespaces_work():
        pytest.skip("needs root and mount/network namespaces (unshare -mn) to install into a throwaway system")
    made = subprocess.run(
        [str(ROOT / "deploy" / "make-bundle.sh"), str(workdir / "out")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    (bundle_file,) = (workdir / "out").glob("camwatch-*.tar.gz")
    with tarfile.open(bundle_file) as tar:
        tar.extractall(workdir / "unpacked", filter="data")
    (bundle,) = (workdir / "unpacked").iterdir()
    assert any(bundle.glob("wheels/camwatch-*.whl")) and any(bundle.glob("wheels/onnxruntime-*.whl"))
    script = workdir / "install.sh"
    script.write_text(INSTALL)
    done = subprocess.run(
        ["unshare", "-mn", "--propagation", "private", "bash", str(script), str(bundle), str(workdir / "scratch")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    modes = dict(line.split()[1:3:1] for line in out.splitlines() if line.startswith("MODE "))
    owners = {line.split()[1]: line.split()[3] for line in out.splitlines() if line.startswith("MODE ")}
    assert modes["/etc/camwatch/ward.toml"] == "640" and owners["/etc/camwatch/ward.toml"] == "root:camwatch"
    assert modes["/etc/camwatch/agent.env"] == "600" and owners["/etc/camwatch/agent.env"] == "root:root"
    assert modes["/etc/camwatch/credentials"] == "700"
    assert modes["/etc/camwatch/credentials/mqtt-password"] == "600"
    assert owners["/var/lib/camwatch"] == "camwatch:camwatch"
    assert "is valid" in out or "OK" in out, out[-2000:]
    assert "IMPORTS OK" in out
    assert "CENTER IMPORTS OK" in out
    assert modes["/etc/camwatch/center.toml"] == "640" and owners["/etc/camwatch/center.toml"] == "root:camwatch"
    assert modes["/etc/camwatch/center.env"] == "600" and owners["/etc/camwatch/center.env"] == "root:root"
    assert modes["/etc/camwatch/credentials/center-mqtt-password"] == "600"
    assert "yolox_nano_dynamic.onnx" in out or not (ROOT.parent / "shared/models/yolox_nano_dynamic.onnx").exists()
