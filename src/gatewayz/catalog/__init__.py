"""The model catalog (SPEC §9): every model the served providers offer, with pricing,
capabilities, health and the providers offering it; synced in the background from each
provider's model list API, merged with the pricing data, stored in the database and served
through in-process caches (`service.Catalog`)."""
