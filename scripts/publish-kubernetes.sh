#!/usr/bin/env bash
# Render the Kubernetes tree and commit it to the deployment branch that Argo CD or Flux watches, with the
# Docker Compose tree in its compose/ folder (compose/<env>/compose.yaml, for a Docker host to pull).
#   usage: scripts/publish-kubernetes.sh [render options for both trees, e.g. --images images.json]
# Settings (environment): MODELOPS_GITOPS_BRANCH (default deploy), MODELOPS_GITOPS_REMOTE (default origin).
# Idempotent: when the rendered tree equals the branch, nothing is committed or pushed.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
branch="${MODELOPS_GITOPS_BRANCH:-deploy}"
remote="${MODELOPS_GITOPS_REMOTE:-origin}"
modelops="${MODELOPS:-modelops}"
source_commit="$(git rev-parse --short HEAD)"

work="$(mktemp -d)"
cleanup() { git worktree remove --force "$work" >/dev/null 2>&1 || rm -rf "$work"; }
trap cleanup EXIT

if git fetch --quiet "$remote" "refs/heads/$branch" 2>/dev/null; then
    git worktree add --quiet --detach "$work" FETCH_HEAD
else  # first publication: an empty branch with no history of the source tree
    git worktree add --quiet --detach "$work" HEAD
    git -C "$work" checkout --quiet --orphan "$branch"
    git -C "$work" rm -rfq .
fi

"$modelops" render --target kubernetes --out "$work" "$@"
"$modelops" render "$@" --target compose --out "$work/compose"

git -C "$work" add -A
if git -C "$work" diff --cached --quiet; then
    echo "$branch is up to date with the manifests at $source_commit"
    exit 0
fi
git -C "$work" -c user.name="${GIT_AUTHOR_NAME:-modelops}" -c user.email="${GIT_AUTHOR_EMAIL:-modelops@localhost}" \
    commit --quiet -m "Deploy the models at $source_commit"
git -C "$work" push --quiet "$remote" "HEAD:refs/heads/$branch"
echo "pushed $(git -C "$work" rev-parse --short HEAD) to $remote $branch"
