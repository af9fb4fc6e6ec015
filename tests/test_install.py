"""tools/install_debian_deps.sh: without root or apt it stops and names what to install."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_missing_packages_without_apt_are_named_with_the_install_command(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with the script's tools but no apt-get
    bin_dir.mkdir()
    for tool in ("bash", "grep", "id"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    fake = bin_dir / "dpkg-query"  # every package reads as not installed
    fake.write_text("#!/bin/bash\nexit 1\n")
    fake.chmod(0o755)
    res = subprocess.run([str(bin_dir / "bash"), str(REPO / "tools" / "install_debian_deps.sh")],
                         capture_output=True, text=True, env={"PATH": str(bin_dir)})
    assert res.returncode == 1
    assert "Missing Debian packages: asterisk-core-sounds-en" in res.stderr
    assert "Install them as root: apt-get install -y asterisk-core-sounds-en" in res.stderr and "espeak-ng sox" in res.stderr
