"""Train the routers' tier classifier on the labelled set and write the model shipped in the
package: `python scripts/train_router.py` (deterministic: the same set gives the same file,
which tests/routing/smart/test_classifier.py checks)."""

from __future__ import annotations

import hashlib

from gatewayz.routing.smart import evaluate
from gatewayz.routing.smart.classifier import MODEL_FILE, TierModel


def main() -> None:
    rows = evaluate.load_prompts()
    model = TierModel.train(evaluate.examples(rows))
    digest = hashlib.sha256(evaluate.PROMPTS_FILE.read_bytes()).hexdigest()
    model.meta = {"prompts": len(rows), "prompts_sha256": digest}
    model.save()
    print(f"{MODEL_FILE}: trained on {len(rows)} prompts")


if __name__ == "__main__":
    main()
