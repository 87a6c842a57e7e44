"""Vertex AI for the simulator: Gemini's bodies (`formats/gemini/`) under
`/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent` (and
`:streamGenerateContent`; `:predict` for embedding and Imagen models: `gemini/media.py`) with a
Bearer token, Google's publisher model list, and `POST /token`:
a fake OAuth token endpoint for service-account JWT grants (`gemini.state(sim).token_calls`
counts its calls; only the tokens it issued are accepted). Pairs with the family
`gatewayz.providers.vertex`."""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from ..protocol import Reply, Request, response
from .gemini import GENERATE, MODELS, error_reply, generate, json_reply, media, state

if TYPE_CHECKING:
    from ..server import Simulator

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def bearer_problem(sim: Simulator, req: Request) -> Reply | None:
    if sim.api_key is None:
        return None
    auth = req.headers.get("authorization", "")
    st = state(sim)
    with st.lock:
        ok = auth.startswith("Bearer ") and auth[7:] in st.tokens
    if not ok:
        msg = "Request had invalid authentication credentials. Expected OAuth 2 access token."
        return error_reply(req, 401, msg)
    return None


def _token(sim: Simulator, req: Request, _parsed: Any, _m: re.Match[str]) -> Reply:
    form = parse_qs(req.body.decode("utf-8", "replace"))
    assertion = (form.get("assertion") or [""])[0]
    claims: Any = None
    if assertion.count(".") == 2:
        payload = assertion.split(".")[1]
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            claims = None
    grant_ok = (form.get("grant_type") or [""])[0] == JWT_GRANT
    if not grant_ok or not isinstance(claims, dict) or not claims.get("iss"):
        body = {"error": "invalid_grant", "error_description": "Invalid JWT assertion."}
        return Reply(response(400, orjson.dumps(body), req.keep_alive), keep_alive=req.keep_alive)
    st = state(sim)
    with st.lock:
        st.token_calls += 1
        token = f"ya29.sim-{st.token_calls}-{os.urandom(8).hex()}"
        st.tokens.add(token)
        expires = st.expires_in
    return json_reply(req, {"access_token": token, "expires_in": expires, "token_type": "Bearer"})


def _vertex_models(sim: Simulator, req: Request, _parsed: Any, _m: re.Match[str]) -> Reply:
    problem = bearer_problem(sim, req)
    if problem is not None:
        return problem
    return json_reply(
        req, {"publisherModels": [{"name": f"publishers/google/models/{m}"} for m in MODELS]}
    )


def _generate(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return generate(sim, req, parsed, m, bearer_problem, "v1")


def _predict(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return media.predict(sim, req, parsed, m, bearer_problem, "v1", embeddings=True)


MODEL_PATH = r"/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/google/models/"
ROUTES = [
    ("POST", MODEL_PATH + GENERATE, _generate),
    ("POST", MODEL_PATH + media.PREDICT, _predict),
    ("GET", r"/v1beta1/publishers/google/models", _vertex_models),
    ("POST", r"/token", _token),
]
