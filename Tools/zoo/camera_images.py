"""The zoo's images: Fashion-MNIST drawn as colour camera pictures (Tools/train/camera.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train"))
from camera import draw, load  # noqa: E402,F401
