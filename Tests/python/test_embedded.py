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


@pytest.mark.parametrize("target", ["x86_64-unknown-linux-gnu", "aarch64-none-none-elf"])
def test_sieve_run_compiles_as_embedded_swift(tmp_path, target):
    """The device program: SieveCore, then the SieveRun loop, then sieve-run's main, each a module
    compiled in Embedded mode for a Linux target (the board build links them with the C kernels)."""
    include = os.path.join(ROOT, "Sources/CSieveKernels/include")
    common = ["swiftc", "-target", target, "-enable-experimental-feature", "Embedded", "-wmo", "-Osize",
              "-Xcc", "-fPIC", "-I", include, "-I", str(tmp_path)]
    steps = [("SieveCore", ["-parse-as-library"]), ("SieveRun", ["-parse-as-library"]), ("sieve_run", [])]
    for module, extra in steps:
        folder = "sieve-run" if module == "sieve_run" else module
        sources = sorted(glob.glob(os.path.join(ROOT, "Sources", folder, "*.swift")))
        assert sources, folder
        emit = ["-emit-module", "-emit-module-path", str(tmp_path / f"{module}.swiftmodule")] if extra else []
        cmd = common + extra + ["-module-name", module, *emit, "-c", *sources, "-o", str(tmp_path / f"{module}.o")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, f"{module}: " + result.stderr[-4000:]
        assert (tmp_path / f"{module}.o").stat().st_size > 0


def test_sources_import_no_foundation():
    for path in glob.glob(os.path.join(ROOT, "Sources/**/*.swift"), recursive=True):
        with open(path) as f:
            for line in f:
                word = line.strip().split(" ")
                if word[0] == "import":
                    assert word[1] not in ("Foundation", "FoundationEssentials", "Glibc", "Darwin"), f"{path}: {line.strip()}"
