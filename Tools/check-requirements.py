"""Exits 0 when every requirement in the given pip requirements file is installed, else 1 (naming
the first one missing). Used by Tools/install-test-deps.sh to skip pip when nothing is missing."""
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    from packaging.requirements import Requirement
except ImportError:  # a bare Python: pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    requirement = Requirement(line)
    try:
        if not requirement.specifier.contains(version(requirement.name), prereleases=True):
            raise PackageNotFoundError(requirement.name)
    except PackageNotFoundError:
        print(f"missing: {line}", file=sys.stderr)
        sys.exit(1)
