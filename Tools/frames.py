#!/usr/bin/env python3
"""Raw camera-like frames from Fashion-MNIST images, for trying sieve-run without a camera: each
28x28 image enlarged 16x (to 448x448) and placed at (96, 16) on a black 640x480 GRAY8 frame,
written to stdout. Convert with ffmpeg to any format sieve-run reads, and crop with
--crop 96,16,448,448:

    python3 Tools/frames.py --count 1000 | ffmpeg -v error -f rawvideo -pix_fmt gray -s 640x480 -i - \\
        -f rawvideo -pix_fmt yuv420p - | sieve-run MODEL.sieve --format i420 --size 640x480 --crop 96,16,448,448

With --pictures, RGB camera pictures (uint8 .npy, N x S x S x 3, e.g. 96x96 from Tools/train/camera.py)
become 640x480 I420 frames directly: each picture enlarged by the largest even factor that fits
(4 for 96x96, to 384x384) on a black frame at even coordinates, so every 2x2 chroma block lies
inside one picture pixel and sieve-run's area shrink gives back one value per picture pixel. The
crop to pass is printed on stderr; --seen writes the pictures as sieve-run will see them (after the
BT.601 round trip, docs/FRAMES.md), to compare with `sieve eval` on the same pixels:

    python3 Tools/frames.py --pictures test.npy --seen seen.npy | sieve-run MODEL.sieve --format i420 \
        --size 640x480 --crop 128,48,384,384
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "train"))
import fmnist  # noqa: E402

WIDTH, HEIGHT, SCALE, X0, Y0 = 640, 480, 16, 96, 16
CROP = f"{X0},{Y0},{28 * SCALE},{28 * SCALE}"


def gray_frame(image):
    """One 640x480 GRAY8 frame (bytes) showing a 28x28 image enlarged 16x at (96, 16)."""
    frame = np.zeros((HEIGHT, WIDTH), np.uint8)
    frame[Y0:Y0 + 28 * SCALE, X0:X0 + 28 * SCALE] = np.kron(image, np.ones((SCALE, SCALE), np.uint8))
    return frame.tobytes()


def picture_layout(size):
    """(scale, x0, y0) of a size x size picture on the 640x480 frame: even scale, even origin, centred."""
    scale = (HEIGHT // size) // 2 * 2
    if scale < 2:
        raise ValueError(f"pictures of {size}x{size} do not fit a {WIDTH}x{HEIGHT} frame at 2x")
    side = size * scale
    return scale, (WIDTH - side) // 4 * 2, (HEIGHT - side) // 4 * 2


def rgb_to_yuv(picture):
    """uint8 [..., 3] RGB -> uint8 Y, U, V arrays, BT.601 limited range (as cameras and ffmpeg give)."""
    r, g, b = (picture[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return tuple(np.clip(np.rint(c), 0, 255).astype(np.uint8) for c in (y, u, v))


def yuv_to_rgb_like_sieve(y, u, v):
    """sieve's limited-range YUV -> RGB (docs/FRAMES.md, "Colour"), integer arithmetic to the bit."""
    y, u, v = (c.astype(np.int64) for c in (y, u, v))
    luma = 76309 * (y - 16) + 32768
    r = (luma + 104597 * (v - 128)) >> 16
    g = (luma - 25675 * (u - 128) - 53279 * (v - 128)) >> 16
    b = (luma + 132201 * (u - 128)) >> 16
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def seen_picture(picture):
    """What sieve-run's preprocessing gives for picture_frame(picture) with picture_layout's crop: each
    scale x scale block is one Y, U, V, so the area shrink returns the block's colour exactly."""
    return yuv_to_rgb_like_sieve(*rgb_to_yuv(picture))


def picture_frame(picture):
    """One 640x480 I420 frame (bytes) showing an RGB picture enlarged by picture_layout's scale."""
    size = picture.shape[0]
    scale, x0, y0 = picture_layout(size)
    y, u, v = rgb_to_yuv(picture)
    plane_y = np.full((HEIGHT, WIDTH), 16, np.uint8)
    plane_u = np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8)
    plane_v = plane_u.copy()
    side, half = size * scale, scale // 2
    plane_y[y0:y0 + side, x0:x0 + side] = np.kron(y, np.ones((scale, scale), np.uint8))
    plane_u[y0 // 2:(y0 + side) // 2, x0 // 2:(x0 + side) // 2] = np.kron(u, np.ones((half, half), np.uint8))
    plane_v[y0 // 2:(y0 + side) // 2, x0 // 2:(x0 + side) // 2] = np.kron(v, np.ones((half, half), np.uint8))
    return plane_y.tobytes() + plane_u.tobytes() + plane_v.tobytes()


def load_pictures(path):
    pictures = np.load(path)
    if pictures.dtype != np.uint8 or pictures.ndim != 4 or pictures.shape[3] != 3 or pictures.shape[1] != pictures.shape[2]:
        raise SystemExit(f"error: {path}: expected uint8 pictures N x S x S x 3, got {pictures.dtype} {pictures.shape}")
    return pictures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                           "fashion-mnist-test-1000-images-idx3-ubyte.gz")
    parser.add_argument("--images", default=default, help="IDX images (default: the 1000 bundled test images)")
    parser.add_argument("--count", type=int, help="frames to write, the images repeating (default: 1000; with --pictures, one per picture)")
    parser.add_argument("--pictures", help="RGB pictures (.npy, N x S x S x 3 uint8): write I420 frames of them instead")
    parser.add_argument("--seen", help="with --pictures: write the pictures as sieve-run sees them to this .npy")
    args = parser.parse_args()
    if args.pictures:
        pictures = load_pictures(args.pictures)
        try:
            scale, x0, y0 = picture_layout(pictures.shape[1])
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        side = pictures.shape[1] * scale
        print(f"frames.py: {WIDTH}x{HEIGHT} i420, pass --crop {x0},{y0},{side},{side}", file=sys.stderr)
        if args.seen:
            np.save(args.seen, seen_picture(pictures))
        images, make = pictures, picture_frame
    else:
        images, make = fmnist.read_idx(args.images), gray_frame
    count = args.count if args.count is not None else (len(images) if args.pictures else 1000)
    out = sys.stdout.buffer
    try:
        for i in range(count):
            out.write(make(images[i % len(images)]))
        out.flush()
    except BrokenPipeError:
        sys.stderr.close()


if __name__ == "__main__":
    main()
