"""Customer webhooks: the gateway telling a customer's server that something happened. Sending
one is `signing.py` (the `X-Gatewayz-Signature` header a receiver checks) and `send.py` (one
POST to the customer's URL, never aimed at an address inside: checked and resolved at each
call, connected to the checked address itself); the outbox and the dispatcher that retries
deliveries live in modules of their own beside them."""
