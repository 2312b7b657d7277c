"""torchvision's classifiers, without its C extension.

PyPI's torchvision wheel is built against PyPI's CUDA torch; beside the CPU torch its C extension
does not load, and `import torchvision` then fails while registering meta kernels for that
extension's detection ops (nms, roi_align). Classifiers need none of them, so this module stubs
that one registration module out before importing torchvision (installed with --no-deps, see
Tools/requirements-nodeps.txt)."""
import sys
import types

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
import torch  # noqa: E402
import torchvision  # noqa: E402


def build(name, classes=10, seed=0):
    """torchvision.models.<name>(num_classes=classes), weights initialised from `seed`, eval mode."""
    torch.manual_seed(seed)
    return getattr(torchvision.models, name)(num_classes=classes).eval()
