"""A site's Flower SuperNode key: created once with safe permissions, kept, its public
file restored, and its fingerprint the one ``ssh-keygen -l`` shows the coordinator's
operator; a key file the SuperLink cannot take is named."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from coordinator.training.supernodes import read_public_key
from node.training.supernode_keys import supernode_key
from schemas.errors import FedpsyError


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    first = supernode_key(tmp_path)
    assert first.created and first.private.stat().st_mode & 0o777 == 0o600
    assert first.line.startswith("ecdsa-sha2-nistp384 ")
    first.public.unlink()
    again = supernode_key(tmp_path)
    assert not again.created and again.line == first.line
    assert again.public.read_text().strip() == first.line  # written again from the private
    assert read_public_key(again.public) == first.line


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_the_fingerprint_is_the_one_ssh_keygen_shows(tmp_path: Path) -> None:
    key = supernode_key(tmp_path)
    shown = subprocess.run(
        ["ssh-keygen", "-lf", str(key.public)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown[1] == key.fingerprint


def test_a_damaged_private_key_is_named(tmp_path: Path) -> None:
    key = supernode_key(tmp_path)
    key.private.write_text("not a key\n")
    with pytest.raises(FedpsyError, match=r"supernode\.key is not an unencrypted OpenSSH"):
        supernode_key(tmp_path)
