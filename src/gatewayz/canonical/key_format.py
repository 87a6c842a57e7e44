"""The shape of a Gatewayz API key: `gw_{env}_{secret}`, env one of live|test|staging|dev, the
secret URL-safe base64 (43 characters for the 32 random bytes we generate).

Known below every layer because two of them need it: key handling (`security/keys.py`) and the
masking of credentials in provider text (`providers/redact.py`, which masks our own keys
wherever a provider repeats one).
"""

from __future__ import annotations

import re

ENVS: tuple[str, ...] = ("live", "test", "staging", "dev")
# token_urlsafe(32) is 43 characters; the upper bound only keeps garbage away from the hasher.
KEY_RE = re.compile(rf"gw_({'|'.join(ENVS)})_[A-Za-z0-9_-]{{43,256}}")
