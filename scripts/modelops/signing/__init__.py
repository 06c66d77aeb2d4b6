"""Signed artifacts (OpenSSF model signing): who may sign, what must be signed, signing and verifying.

`policy` reads `[tool.modelops.signing]`; `verify` checks a version's signature against the trusted signers
(offline for keys); `sign` writes one. The model-signing library is imported only where a signature is made or
checked, so commands and runner images that never verify do not need it.
"""

# What model-signing's dependencies require but verifying never imports (sigstore's terminal output, 14 MB):
# images that verify uninstall them, as they do a flavor's UNUSED_DEPENDENCIES.
UNUSED_DEPENDENCIES = ("rich", "pygments", "markdown-it-py", "mdurl")
