#!/usr/bin/env bash
# Build a small Debian Python base image without any image hub, and import it into the local engine:
# debootstrap (minbase + python3 + python3-venv + libgomp1), trimmed of docs, locales, caches and apt lists.
# libgomp1 is the OpenMP runtime that LightGBM's wheels need from the system (scikit-learn and xgboost-cpu
# vendor their own copy).
# Usage: scripts/ci/base-image.sh [TAG]   (default modelops-base/python:3.11-bookworm-omp; kept when present)
set -euo pipefail
tag=${1:-modelops-base/python:3.11-bookworm-omp}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,libgomp1 bookworm "$rootfs" >&2
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log \
  "$rootfs"/usr/lib/python3/dist-packages/*/__pycache__
find "$rootfs"/usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "$tag"
