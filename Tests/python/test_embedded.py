"""SieveCore must stay Embedded Swift (the board build): no Foundation, typed throws, no existentials.

Compiles Sources/SieveCore as Embedded Swift for the host and for aarch64-none-none-elf with the
flags in ARCHITECTURE.md, so anything un-embeddable fails here, not on the board build.
"""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("target", ["x86_64-unknown-linux-gnu", "aarch64-none-none-elf"])
def test_sievecore_compiles_as_embedded_swift(tmp_path, target):
    sources = sorted(glob.glob(os.path.join(ROOT, "Sources/SieveCore/*.swift")))
    assert sources
    cmd = ["swiftc", "-target", target, "-enable-experimental-feature", "Embedded", "-wmo",
           "-parse-as-library", "-Osize", "-Xcc", "-fPIC",
           "-I", os.path.join(ROOT, "Sources/CSieveKernels/include"), "-module-name", "SieveCore",
           "-emit-module", "-emit-module-path", str(tmp_path / "SieveCore.swiftmodule"),
           "-c", *sources, "-o", str(tmp_path / "SieveCore.o")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "SieveCore.o").stat().st_size > 0


def test_sources_import_no_foundation():
    for path in glob.glob(os.path.join(ROOT, "Sources/**/*.swift"), recursive=True):
        with open(path) as f:
            for line in f:
                word = line.strip().split(" ")
                if word[0] == "import":
                    assert word[1] not in ("Foundation", "FoundationEssentials", "Glibc", "Darwin"), f"{path}: {line.strip()}"
